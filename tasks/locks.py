"""Beat jobs run once per period: a Redis lock keeps two runs from overlapping, and the PostgreSQL ledger
(domain.schedule) keeps a job from running twice in one period when beat restarts, two beats overlap, or Redis
lost its locks."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from celery import current_task
from flask import current_app

from domain import schedule
from models import metrics
from models.redis_store import redis_store

P = ParamSpec("P")
R = TypeVar("R")


def _min_gap_s() -> float:
    """Half the beat period of the task running now (0 outside beat's schedule: an operator's `celery call`)."""
    name = getattr(current_task, "name", None)
    entries = current_app.config["CELERY"].get("beat_schedule", {}).values()
    periods = [float(e["schedule"]) for e in entries
               if e.get("task") == name and isinstance(e.get("schedule"), int | float)]
    return min(periods) / 2 if periods else 0.0


def single_run(key: str, ttl_s: int) -> Callable[[Callable[P, R]], Callable[P, R | None]]:
    """Run the wrapped job only if no other run holds ``lock:<key>``; otherwise return None.

    The lock expires by itself (``ttl_s``) so a crashed run never blocks the schedule for good, and it is
    released with a compare-and-delete so a slow run can't release a lock that a later run took.
    """

    # Both series exist from the start (at 0), so an alert on "no run for 10 minutes" can fire before the first run.
    for outcome in ("ran", "skipped"):
        metrics.BEAT_RUNS.labels(key, outcome)

    def decorate(fn: Callable[P, R]) -> Callable[P, R | None]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
            lock = redis_store.client.lock(f"lock:{key}", timeout=ttl_s, blocking=False)
            if not lock.acquire(blocking=False):
                metrics.BEAT_RUNS.labels(key, "skipped").inc()
                return None
            try:
                if not schedule.claim_run(key, _min_gap_s()):
                    metrics.BEAT_RUNS.labels(key, "skipped").inc()
                    return None
                metrics.BEAT_RUNS.labels(key, "ran").inc()
                return fn(*args, **kwargs)
            finally:
                # Expired meanwhile: another run may hold it now, so leave it alone.
                with contextlib.suppress(Exception):
                    lock.release()

        return wrapper

    return decorate
