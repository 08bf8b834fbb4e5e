"""Periodic jobs run by beat (config/beat.py) and background upkeep."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from celery import shared_task
from flask import current_app
from sqlalchemy import and_, or_, select, text, update

from models import Activity, Upload, User, db
from models.redis_store import redis_store
from tasks.locks import single_run

log = logging.getLogger(__name__)
HEARTBEAT_KEY = "beat:heartbeat"
SWEEP_BATCH = 500


@shared_task(name="maintenance.heartbeat", ignore_result=True)
@single_run("heartbeat", ttl_s=50)
def heartbeat() -> float:
    """Proves beat → broker → worker → Redis works end to end; operators alert on a stale value."""
    now = time.time()
    redis_store.client.set(HEARTBEAT_KEY, now, ex=3600)
    return now


@shared_task(name="maintenance.sweep_uploads", ignore_result=True)
@single_run("sweep-uploads", ttl_s=300)
def sweep_uploads() -> int:
    """Re-send uploads that were committed but never picked up (broker down at enqueue time, a message
    lost) or whose worker died mid-stage. Stages are idempotent, so a second run is harmless."""
    from tasks import pipeline
    from tasks.stages import MAX_ATTEMPTS

    now = datetime.now(UTC)
    cfg = current_app.config
    queued_before = now - timedelta(seconds=cfg["UPLOAD_SWEEP_AFTER_S"])
    processing_before = now - timedelta(seconds=cfg["UPLOAD_STALE_PROCESSING_S"])
    stuck = or_(and_(Upload.status == "queued", Upload.updated_at < queued_before),
                and_(Upload.status == "processing", Upload.updated_at < processing_before))
    rows = db.session.execute(select(Upload.id, Upload.attempts).where(stuck).order_by(Upload.id).limit(SWEEP_BATCH))
    resent = 0
    for upload_id, attempts in rows.all():
        if attempts >= MAX_ATTEMPTS:
            db.session.execute(update(Upload).where(Upload.id == upload_id).values(
                status="failed", stage=None,
                error="We couldn't process this file after several attempts. Please try again later."))
            continue
        # Touch first, so the next sweep doesn't resend it while this message is still in flight.
        db.session.execute(update(Upload).where(Upload.id == upload_id).values(
            status="queued", updated_at=text("now()")))
        db.session.commit()
        if pipeline.enqueue(upload_id):
            resent += 1
    db.session.commit()
    if resent:
        log.info("sweeper re-enqueued %d uploads", resent)
    return resent


@shared_task(name="maintenance.refresh_privacy", ignore_result=True, acks_late=True)
def refresh_privacy(user_id: int) -> int:
    """Recompute the public view of every activity stored under older privacy settings (idempotent)."""
    from tasks.ingest import refresh_public_view

    owner = db.session.get(User, user_id)
    if owner is None:
        return 0
    stale = select(Activity).where(Activity.user_id == user_id, Activity.privacy_version != owner.privacy_version)
    done = 0
    for activity in db.session.scalars(stale.limit(1000)):
        refresh_public_view(activity, owner)
        done += 1
        if done % 50 == 0:
            db.session.commit()
    db.session.commit()
    return done


def enqueue_privacy_refresh(user_id: int) -> None:
    try:
        refresh_privacy.delay(user_id)
    except Exception:  # reads recompute stale views themselves; the refresh is an optimisation
        log.warning("could not enqueue the privacy refresh of user %s", user_id, exc_info=True)
