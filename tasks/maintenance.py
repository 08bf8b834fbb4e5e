"""Periodic jobs run by beat (config/beat.py)."""

from __future__ import annotations

import time

from celery import shared_task

from models.redis_store import redis_store
from tasks.locks import single_run

HEARTBEAT_KEY = "beat:heartbeat"


@shared_task(name="maintenance.heartbeat", ignore_result=True)
@single_run("heartbeat", ttl_s=50)
def heartbeat() -> float:
    """Proves beat → broker → worker → Redis works end to end; operators alert on a stale value."""
    now = time.time()
    redis_store.client.set(HEARTBEAT_KEY, now, ex=3600)
    return now
