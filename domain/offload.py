"""CPU-heavy work of a web request, run off the gevent event loop.

Under gunicorn's gevent worker one OS thread runs every greenlet of the process: the requests and all the
WebSockets. A request that hashes a 10 MB file, inflates a zip or recomputes a map on that thread stalls
every socket of the process until it is done. :func:`cpu` hands such work to gevent's native thread pool
instead: zlib, hashlib, expat and numpy release the GIL while they work, and pure Python code there is
preempted every few milliseconds (the interpreter's switch interval), so the loop keeps answering.

Only self-contained work may be offloaded: no database session, no Redis client, no Flask context (those
are bound to the greenlet that owns the request). Outside a gevent-patched process (Celery workers, the
threaded development server, tests) the function simply runs in the calling thread.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def on_event_loop() -> bool:
    """True in a process whose threads gevent patched (the gunicorn gevent worker)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("threading"))


def cpu(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)``, on a native thread when the caller is a greenlet of the event loop.

    Exceptions raised by ``func`` propagate to the caller unchanged.
    """
    if not on_event_loop():
        return func(*args, **kwargs)
    import gevent

    return gevent.get_hub().threadpool.apply(func, args, kwargs)
