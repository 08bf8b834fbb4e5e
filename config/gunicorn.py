"""Gunicorn settings for the web processes: ``gunicorn -c config/gunicorn.py 'webapp:create_app()'``.

Default model: ``WEB_WORKER_CLASS=gevent`` with ``WEB_CONCURRENCY=2`` processes (one per core). A WebSocket
holds its request for its whole life (plus a reader and a writer); under gevent those are three greenlets of a
few KB each, so one process holds thousands of sockets while REST requests interleave with them. psycopg2 is
made cooperative (psycogreen) so a query waits without blocking the other greenlets.

Fallback: ``WEB_WORKER_CLASS=gthread`` (plain OS threads, no monkey-patching). Each open socket then pins one of
the ``WEB_THREADS`` request threads of its process (and two more threads of its own), so a process holds at
most ``WEB_THREADS`` sockets at once: fine for debugging, not for 2,000 sockets. See docs/realtime.md.

Never combine gevent with ``--preload``: the app (and its thread-locals) must be imported after gevent patched
the process, which the gevent worker does in each child before loading the app.
"""

from __future__ import annotations

import gc
import os
from typing import Any

bind = f"{os.environ.get('WEB_BIND_HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = os.environ.get("WEB_WORKER_CLASS", "gevent")
# gevent: concurrent clients (sockets + HTTP requests) per process before accept() pauses.
worker_connections = int(os.environ.get("WEB_WORKER_CONNECTIONS", "5000"))
threads = int(os.environ.get("WEB_THREADS", "64"))  # gthread only
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "10"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
keepalive = 5
accesslog = os.environ.get("WEB_ACCESS_LOG", "-") or None


def _gevent() -> bool:
    return "gevent" in worker_class


def post_fork(server: Any, worker: Any) -> None:
    if _gevent():
        # psycopg2 is a C extension that gevent can't patch: give it a wait callback that yields to the hub.
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
    # Pools a --preload master built before forking are reset in the child by models.reset_after_fork (an
    # os.register_at_fork hook), so nothing else is needed here.


def post_worker_init(worker: Any) -> None:
    # The app is loaded now. Its import-time objects (Flask, SQLAlchemy, numpy, scipy, firebase-admin: a few hundred
    # thousand) live as long as the process, yet every full collection would walk them again — pauses of 100 ms and
    # more with a thousand sockets open. Freezing moves them out of the collector's sight; objects made later (the
    # sockets') are still collected as usual.
    gc.collect()
    gc.freeze()
