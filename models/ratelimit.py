"""A fixed-window counter in Redis: the one rate limiter for writes, chat sends and live points."""

from __future__ import annotations

import logging
import time

from models.redis_store import redis_store

log = logging.getLogger(__name__)


def over_budget(key: str, limit: int, window_s: int = 60) -> int | None:
    """Count one use of ``key`` in the current fixed window of ``window_s`` seconds; seconds until the next
    window when that makes more than ``limit``, else None. Fails open: the limiter protects capacity, and a
    Redis outage must not turn into refused writes."""
    now = time.time()
    window_key = f"{key}:{int(now // window_s)}"
    try:
        pipe = redis_store.client.pipeline()
        pipe.incr(window_key)
        pipe.expire(window_key, window_s * 2)
        count = int(pipe.execute()[0])
    except Exception:
        log.warning("rate limiter unavailable; letting %s through", key, exc_info=True)
        return None
    return max(1, int(window_s - now % window_s + 0.999)) if count > limit else None


def window_counts(key: str, windows_s: tuple[int, ...]) -> list[int] | None:
    """Count one use of ``key`` in the current fixed window of each length (aligned to the clock: a quarter hour
    starts at :00, :15…; a day at midnight UTC) and return the counts, or None when Redis is unreachable (the
    caller lets the request through, as :func:`over_budget` does)."""
    now = time.time()
    try:
        pipe = redis_store.client.pipeline()
        for window_s in windows_s:
            window_key = f"{key}:{window_s}:{int(now // window_s)}"
            pipe.incr(window_key)
            pipe.expire(window_key, window_s * 2)
        results = pipe.execute()
    except Exception:
        log.warning("rate limiter unavailable; letting %s through", key, exc_info=True)
        return None
    return [int(results[2 * i]) for i in range(len(windows_s))]
