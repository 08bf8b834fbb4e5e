"""Live tracking's session lifecycle shared by the web service and the workers, and the sweeper that ends
sessions whose athlete stopped sending points (a dead phone, a closed app)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from sqlalchemy import and_, or_, select

from models import db
from models.live import LiveSession
from models.pubsub import pubsub

log = logging.getLogger(__name__)


def elapsed_s(session: LiveSession) -> float:
    """From the first point (a phone may record a little before it reached the server) to the newest one."""
    if session.first_point_time is None or session.last_point_time is None:
        return 0.0
    return max(0.0, (session.last_point_time - session.first_point_time).total_seconds())


def publish(session_id: int, frame: dict[str, Any]) -> None:
    """Best effort, after the commit: followers who miss a frame recover with the REST GET."""
    try:
        pubsub.publish(pubsub.live_channel(session_id), frame)
    except (redis.RedisError, RuntimeError):
        log.warning("live publish failed for session %s", session_id, exc_info=True)


def end(session: LiveSession, reason: str) -> bool:
    """Mark a (locked) live session ended; the caller commits, then calls ``publish_ended``."""
    if session.status != "live":
        return False
    session.status, session.end_reason, session.ended_at = "ended", reason, datetime.now(UTC)
    return True


def publish_ended(session: LiveSession) -> None:
    publish(session.id, {"type": "live.ended", "session_id": session.id, "reason": session.end_reason,
                         "elapsed_s": elapsed_s(session)})


def sweep_abandoned(abandon_after_s: int, max_duration_s: int, batch: int = 500) -> int:
    """End live sessions with no point for ``abandon_after_s`` (or none since they started), or running longer
    than ``max_duration_s``. Each is locked, re-checked, committed, then announced."""
    now = datetime.now(UTC)
    idle_before = now - timedelta(seconds=abandon_after_s)
    started_before = now - timedelta(seconds=max_duration_s)
    idle = or_(LiveSession.last_point_at < idle_before,
               and_(LiveSession.last_point_at.is_(None), LiveSession.started_at < idle_before))
    candidates = list(db.session.scalars(
        select(LiveSession.id).where(LiveSession.status == "live", or_(idle, LiveSession.started_at < started_before))
        .order_by(LiveSession.id).limit(batch)))
    db.session.rollback()
    ended = 0
    for session_id in candidates:
        session = db.session.scalar(select(LiveSession).where(LiveSession.id == session_id)
                                    .with_for_update(skip_locked=True))
        if session is None or session.status != "live":
            db.session.rollback()
            continue
        last = session.last_point_at or session.started_at
        reason = ("max_duration" if session.started_at < started_before
                  else "abandoned" if last < idle_before else None)
        if reason is None:  # a batch arrived meanwhile
            db.session.rollback()
            continue
        end(session, reason)
        db.session.commit()
        publish_ended(session)
        ended += 1
    return ended
