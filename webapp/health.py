"""Liveness and readiness for load balancers and orchestrators (outside /api/v1, no auth)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app
from sqlalchemy import text

from domain import operations
from models import db
from models.redis_store import redis_store
from webapp.metrics import QUEUES, broker_client

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive (no dependency checked: restarting it would not fix a database outage)."""
    return {"status": "ok"}


@blp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    """PostgreSQL and Redis both answer; otherwise 503 so traffic goes elsewhere.

    The broker and the queue backlog are reported too, as ``degraded`` rather than unready: with the broker
    down or the workers behind, this process still accepts uploads (committed first, sent when the broker is
    back), and taking it out of rotation would turn a delay into refused requests."""
    checks: dict[str, Any] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["postgres"] = "ok"
    except Exception as exc:
        db.session.rollback()
        checks["postgres"] = f"error: {type(exc).__name__}"
    finally:
        db.session.remove()
    try:
        redis_store.client.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    ok = checks["postgres"] == "ok" and checks["redis"] == "ok"
    degraded = False
    try:
        depths = operations.queue_depths(broker_client(current_app), QUEUES)
        checks["broker"] = "ok"
        limit = current_app.config["READY_QUEUE_BACKLOG_MAX"]
        backlog = {queue: depths[queue] for queue in QUEUES}
        checks["queues"] = {"waiting": backlog, "unacked": depths[operations.UNACKED_KEY], "max": limit,
                            "status": "ok" if max(backlog.values()) <= limit else "backlog"}
        degraded = checks["queues"]["status"] != "ok"
    except Exception as exc:
        checks["broker"] = f"error: {type(exc).__name__}"
        degraded = True
    status = "unavailable" if not ok else "degraded" if degraded else "ok"
    return {"status": status, "checks": checks}, 200 if ok else 503
