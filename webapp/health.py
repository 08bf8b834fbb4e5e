"""Liveness and readiness for load balancers and orchestrators (outside /api/v1, no auth)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from sqlalchemy import text

from models import db
from models.redis_store import redis_store

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive (no dependency checked: restarting it would not fix a database outage)."""
    return {"status": "ok"}


@blp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    """PostgreSQL and Redis both answer; otherwise 503 so traffic goes elsewhere."""
    checks: dict[str, str] = {}
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
    ok = all(v == "ok" for v in checks.values())
    return {"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503
