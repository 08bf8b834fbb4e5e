"""Periodic jobs run by beat (config/beat.py) and background upkeep."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from flask import current_app

from domain import jobs, schedule
from domain.privacy import public_view
from domain.uploads import lifecycle
from models.errors import TRANSIENT_ERRORS
from models.redis_store import redis_store
from tasks.app import AppTask, provide
from tasks.locks import single_run

log = logging.getLogger(__name__)
HEARTBEAT_KEY = "beat:heartbeat"


@shared_task(name="maintenance.heartbeat", ignore_result=True)
@single_run("heartbeat", ttl_s=50)
def heartbeat() -> float:
    """Proves beat → broker → worker → Redis works end to end; operators alert on a stale value."""
    now = time.time()
    redis_store.client.set(HEARTBEAT_KEY, now, ex=3600)
    schedule.prune_runs()
    return now


@shared_task(name="maintenance.sweep_uploads", ignore_result=True)
@single_run("sweep-uploads", ttl_s=300)
def sweep_uploads() -> int:
    """Re-send uploads that were committed but never picked up, or whose worker died mid-stage."""
    cfg = current_app.config
    return lifecycle.sweep_stuck(cfg["UPLOAD_SWEEP_AFTER_S"], cfg["UPLOAD_STALE_PROCESSING_S"])


@shared_task(name="maintenance.sweep_privacy", ignore_result=True)
@single_run("sweep-privacy", ttl_s=600)
def sweep_privacy() -> int:
    """Re-send the privacy refresh for athletes whose stored non-owner views are still stale."""
    return public_view.sweep_stale()


@shared_task(name=jobs.PRIVACY_REFRESH, base=AppTask, ignore_result=True, acks_late=True,
             autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, retry_jitter=True, max_retries=5)
def refresh_privacy(user_id: int) -> int:
    """Recompute the public view of every activity stored under older privacy settings (idempotent)."""
    return public_view.refresh_stale(user_id)


provide(refresh_privacy)
