"""In-app notifications, written through one outbox table that the push-delivery stage reads.

``notify`` is the only writer: it honours the recipient's notification preferences (a category switched
off writes nothing), never notifies someone about their own action or across a block, and deduplicates
with a per-recipient key, so a stage that runs twice notifies once.

Every row written also, once the caller's transaction commits (never before, nothing on rollback):
- goes out live as a ``notification`` socket frame to the recipient (except push-only kinds: chat messages
  reach the socket as ``chat.message`` frames already);
- schedules a push delivery for the recipient: one ``push.deliver_user`` task per recipient per collapse
  window (a Redis ``SET NX`` window key), sent a little after the window so a burst becomes one run. A
  task lost on the way (broker down) is made up for by the ``push.sweep`` beat job.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, event, func, select, text
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from models.db import Base, db
from models.pubsub import publish_on_commit
from models.redis_store import redis_store
from models.user import Preferences, User

log = logging.getLogger(__name__)

#: Notification kind → the preference category that switches it on or off.
CATEGORY = {
    "kudos": "kudos",
    "comment": "comments",
    "follow": "follows",
    "follow_request": "follows",
    "follow_accepted": "follows",
    "group_join_request": "follows",
    "group_joined": "follows",
    "achievement": "achievements",
    "message": "chat",
}

#: Kinds that are delivered by push only: left out of the in-app list, the unread count and socket frames.
PUSH_ONLY_KINDS = ("message",)
REFS = ("activity_id", "post_id", "comment_id", "group_id", "achievement_id")

PUSH_TASK = "push.deliver_user"
DEFAULT_PUSH_WINDOW_S = 2.0
#: The task runs this long after its window key expired, so any row that saw the key (and therefore sent
#: no task of its own) was committed before the task reads.
PUSH_WINDOW_MARGIN_S = 0.25
#: Publishing a task from a commit hook: ride out a broker blip, never hold a request for long.
PUSH_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    achievement_id: Mapped[int | None] = mapped_column(ForeignKey("achievements.id", ondelete="CASCADE"))
    #: What the client shows without another request (names, titles, ranks).
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    dedupe_key: Mapped[str] = mapped_column(String(160))
    read_at: Mapped[datetime | None]
    #: Set by the push-delivery stage once it has handled (sent or skipped) this row.
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        Index("uq_notifications_user_dedupe", "user_id", "dedupe_key", unique=True),
        Index("ix_notifications_user_id", "user_id", "id"),
        Index("ix_notifications_unread", "user_id", postgresql_where=text("read_at IS NULL")),
        Index("ix_notifications_undelivered", "id", postgresql_where=text("delivered_at IS NULL")),
        Index("ix_notifications_undelivered_created_at", "created_at", postgresql_where=text("delivered_at IS NULL")),
    )


def wants(user_id: int, kind: str) -> bool:
    category = CATEGORY.get(kind)
    if category is None:
        return True
    settings = db.session.scalar(select(Preferences.notifications).where(Preferences.user_id == user_id))
    return bool((settings or {}).get(category, True))


def notify(user_id: int, kind: str, dedupe_key: str, *, actor_id: int | None = None,
           payload: dict[str, Any] | None = None, **refs: int | None) -> int | None:
    """Record a notification (in the caller's transaction); returns its id, or None when not written."""
    from models.social import is_blocked_either_way

    if actor_id is not None and (actor_id == user_id or is_blocked_either_way(actor_id, user_id)):
        return None
    if not wants(user_id, kind):
        return None
    stmt = insert(Notification).values(user_id=user_id, kind=kind, actor_id=actor_id, dedupe_key=dedupe_key,
                                       payload=payload or {}, **refs)
    row = db.session.execute(
        stmt.on_conflict_do_nothing().returning(Notification.id, Notification.created_at)).first()
    if row is None:
        return None
    if kind not in PUSH_ONLY_KINDS:
        actor = db.session.get(User, actor_id) if actor_id is not None else None
        item = serialize(row.id, kind, actor, {ref: refs.get(ref) for ref in REFS}, payload or {},
                         read=False, created_at=row.created_at)
        publish_on_commit(db.session(), [user_id], {"type": "notification", "notification": as_json(item)})
    schedule_push_on_commit(db.session(), user_id)
    return int(row.id)


# -- the JSON of one notification (GET /api/v1/notifications items and socket frames) -------------------------

def serialize(notification_id: int, kind: str, actor: User | None, refs: dict[str, int | None],
              payload: dict[str, Any], *, read: bool, created_at: datetime) -> dict[str, Any]:
    return {
        "id": notification_id, "kind": kind,
        "actor": ({"id": actor.id, "display_name": actor.display_name, "avatar_url": actor.avatar_url}
                  if actor is not None else None),
        "refs": refs, "payload": payload, "read": read, "created_at": created_at,
    }


def as_json(item: dict[str, Any]) -> dict[str, Any]:
    """The item as the REST schema dumps it (an ISO 8601 timestamp), for frames that bypass marshmallow."""
    return {**item, "created_at": item["created_at"].isoformat()}


# -- push scheduling after commit ------------------------------------------------------------------------------

_PUSH_PENDING = "push_pending_users"


def schedule_push_on_commit(session: Session, user_id: int) -> None:
    session.info.setdefault(_PUSH_PENDING, set()).add(user_id)


def push_window_s() -> float:
    from flask import current_app, has_app_context

    if has_app_context():
        return float(current_app.config.get("PUSH_COLLAPSE_WINDOW_S", DEFAULT_PUSH_WINDOW_S))
    return DEFAULT_PUSH_WINDOW_S


def window_key(user_id: int) -> str:
    return f"push:window:{user_id}"


def enqueue_push(user_ids: set[int] | list[int], window_s: float | None = None) -> int:
    """One delivery task per user per window; returns how many tasks were sent. Never raises: the rows are
    committed and the sweeper re-sends users whose rows stay undelivered."""
    from celery import current_app as celery_app

    window = push_window_s() if window_s is None else window_s
    sent = 0
    try:
        client = redis_store.client
        for user_id in sorted(user_ids):
            # The key lives a little less than the countdown: a row committed while it exists is visible to
            # the task that the key stands for.
            if not client.set(window_key(user_id), 1, nx=True, px=max(1, int(window * 1000))):
                continue
            celery_app.send_task(PUSH_TASK, args=[user_id], countdown=window + PUSH_WINDOW_MARGIN_S,
                                 retry=True, retry_policy=PUSH_PUBLISH_RETRY)
            sent += 1
    except Exception:
        log.warning("could not schedule push delivery for users %s; the sweeper will", sorted(user_ids),
                    exc_info=True)
    return sent


@event.listens_for(Session, "after_commit")
def _schedule_pending_pushes(session: Session) -> None:
    user_ids = session.info.pop(_PUSH_PENDING, None)
    if user_ids:
        enqueue_push(user_ids)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending_pushes(session: Session, previous_transaction: SessionTransaction) -> None:
    # As models.pubsub does: a savepoint's rollback leaves the outer transaction's pushes scheduled.
    if previous_transaction.parent is None:
        session.info.pop(_PUSH_PENDING, None)
