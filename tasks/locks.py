"""Redis locks for beat jobs: two beats (a deploy overlap, a misconfigured replica) never double-run one."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from models import metrics
from models.redis_store import redis_store

P = ParamSpec("P")
R = TypeVar("R")


def single_run(key: str, ttl_s: int) -> Callable[[Callable[P, R]], Callable[P, R | None]]:
    """Run the wrapped job only if no other run holds ``lock:<key>``; otherwise return None.

    The lock expires by itself (``ttl_s``) so a crashed run never blocks the schedule for good, and it is
    released with a compare-and-delete so a slow run can't release a lock that a later run took.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R | None]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
            lock = redis_store.client.lock(f"lock:{key}", timeout=ttl_s, blocking=False)
            if not lock.acquire(blocking=False):
                metrics.BEAT_RUNS.labels(key, "skipped").inc()
                return None
            metrics.BEAT_RUNS.labels(key, "ran").inc()
            try:
                return fn(*args, **kwargs)
            finally:
                # Expired meanwhile: another run may hold it now, so leave it alone.
                with contextlib.suppress(Exception):
                    lock.release()

        return wrapper

    return decorate
