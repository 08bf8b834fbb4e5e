"""Per-athlete request budget on writes, so one misbehaving client can't flood the pipeline.

A fixed one-minute window in Redis (INCR + EXPIRE). If Redis is unreachable the request goes through:
the limiter protects capacity, it must not turn a cache outage into an API outage.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, current_app, g, request
from flask_smorest import abort

from models.redis_store import redis_store

log = logging.getLogger(__name__)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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


def register_rate_limit(app: Flask) -> None:
    @app.before_request
    def _limit_writes() -> None:
        user = g.get("user")
        limit = current_app.config["RATE_LIMIT_WRITES_PER_MIN"]
        if user is None or request.method not in WRITE_METHODS or limit <= 0:
            return
        retry_after = over_budget(f"ratelimit:{user.id}", limit)
        if retry_after is not None:
            abort(429, message=f"Too many changes: at most {limit} per minute. Retry in {retry_after} s.",
                  headers={"Retry-After": str(retry_after)})
