"""Per-athlete request budget on writes, so one misbehaving client can't flood the pipeline.

A fixed one-minute window in Redis (INCR + EXPIRE). If Redis is unreachable the request goes through:
the limiter protects capacity, it must not turn a cache outage into an API outage.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, request
from flask_smorest import abort

from models.ratelimit import over_budget

log = logging.getLogger(__name__)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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
