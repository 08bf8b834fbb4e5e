"""In-app notifications, written through one outbox table that the push-delivery stage reads.

``notify`` (one recipient) and ``notify_many`` (one event for many recipients, one INSERT … SELECT: a chat
message to a group) are the only writers: they honour the recipient's notification preferences (a category
switched off writes nothing), never notify someone about their own action or across a block, and deduplicate
with a per-recipient key, so a stage that runs twice notifies once.

Every row written also, once the caller's transaction commits (never before, nothing on rollback):
- goes out live as a ``notification`` socket frame to the recipient (except push-only kinds: chat messages
  reach the socket as ``chat.message`` frames already);
- schedules a push delivery for the recipient: one ``push.deliver_user`` run per recipient per collapse
  window (a Redis ``SET NX`` window key), sent a little after the window so a burst becomes one run. The
  window keys of all the recipients a commit touched are set in one Redis round trip, and the commit sends
  one task whatever their number (``push.deliver_users`` fans out to ``push.deliver_user`` in the worker):
  publishing a Celery task costs ~1 ms of CPU, which a web process should not pay per group member. A
  task lost on the way (broker down) is made up for by the ``push.sweep`` beat job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.db import Base, db, on_commit, staged
from models.pubsub import publish_on_commit
from models.redis_store import redis_store
from models.user import User

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
#: One task for several users whose windows opened in the same commit; the worker fans it out to PUSH_TASK.
PUSH_MANY_TASK = "push.deliver_users"
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


def category_on(kind: str, settings: dict[str, Any] | None) -> bool:
    """Whether the recipient's notification settings let ``kind`` through (a missing key means on)."""
    category = CATEGORY.get(kind)
    return category is None or bool((settings or {}).get(category, True))


def notify(user_id: int, kind: str, dedupe_key: str, *, actor_id: int | None = None,
           payload: dict[str, Any] | None = None, **refs: int | None) -> int | None:
    """Record a notification (in the caller's transaction); returns its id, or None when not written."""
    return notify_many([user_id], kind, dedupe_key, actor_id=actor_id, payload=payload, **refs).get(user_id)


# The rules of a notification, in one statement: not the actor, no block either way, the category not switched off
# (``category_on``: a missing settings row or key means on, and a stored value counts as Python truthiness would
# count it), deduplicated by (user, key). Built once: a text statement costs next to nothing to execute again.
_NOTIFY_MANY = text(f"""
INSERT INTO notifications (user_id, kind, actor_id, dedupe_key, payload, {", ".join(REFS)})
SELECT r.user_id, :kind, :actor_id, :dedupe_key, CAST(:payload AS jsonb), {", ".join(f":{ref}" for ref in REFS)}
FROM (SELECT DISTINCT unnest(CAST(:user_ids AS bigint[])) AS user_id) AS r
LEFT JOIN user_preferences p ON p.user_id = r.user_id
WHERE (CAST(:actor_id AS bigint) IS NULL OR (
        r.user_id <> :actor_id
        AND NOT EXISTS (SELECT 1 FROM blocks b
                        WHERE (b.blocker_id = :actor_id AND b.blocked_id = r.user_id)
                           OR (b.blocker_id = r.user_id AND b.blocked_id = :actor_id))))
  AND (CAST(:category AS text) IS NULL
       OR COALESCE(p.notifications -> CAST(:category AS text), 'true'::jsonb)
          NOT IN ('false'::jsonb, 'null'::jsonb, '0'::jsonb, '""'::jsonb, '[]'::jsonb, '{{}}'::jsonb))
ORDER BY r.user_id
ON CONFLICT DO NOTHING
RETURNING id, user_id, created_at
""")


def notify_many(user_ids: Iterable[int], kind: str, dedupe_key: str, *, actor_id: int | None = None,
                payload: dict[str, Any] | None = None, **refs: int | None) -> dict[int, int]:
    """Record one event for many recipients, in one INSERT … SELECT (the caller's transaction), and stage its
    after-commit effects: a ``notification`` frame to each recipient's sockets and their push delivery. Returns
    {recipient id: notification id} for the rows written (recipients filtered out or already notified under
    ``dedupe_key`` are absent)."""
    unknown = set(refs) - set(REFS)
    if unknown:
        raise TypeError(f"unknown notification refs: {sorted(unknown)}")
    ids = sorted({int(u) for u in user_ids})
    if not ids:
        return {}
    rows = db.session.execute(_NOTIFY_MANY, {
        "user_ids": ids, "kind": kind, "actor_id": actor_id, "dedupe_key": dedupe_key,
        "payload": json.dumps(payload or {}), "category": CATEGORY.get(kind),
        **{ref: refs.get(ref) for ref in REFS}}).all()
    if not rows:
        return {}
    session = db.session()
    if kind not in PUSH_ONLY_KINDS:
        actor = db.session.get(User, actor_id) if actor_id is not None else None
        ref_values = {ref: refs.get(ref) for ref in REFS}
        for row in rows:
            item = serialize(row.id, kind, actor, ref_values, payload or {}, read=False, created_at=row.created_at)
            publish_on_commit(session, [row.user_id], {"type": "notification", "notification": as_json(item)})
    schedule_push_on_commit(session, [row.user_id for row in rows])
    return {int(row.user_id): int(row.id) for row in rows}


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

def schedule_push_on_commit(session: Session, user_ids: Iterable[int]) -> None:
    staged(session, "push", set).update(user_ids)


def push_window_s() -> float:
    from flask import current_app, has_app_context

    if has_app_context():
        return float(current_app.config.get("PUSH_COLLAPSE_WINDOW_S", DEFAULT_PUSH_WINDOW_S))
    return DEFAULT_PUSH_WINDOW_S


def window_key(user_id: int) -> str:
    return f"push:window:{user_id}"


def enqueue_push(user_ids: set[int] | list[int], window_s: float | None = None) -> int:
    """One delivery run per user per window; returns how many users were scheduled. The window keys are set in
    one pipelined round trip and at most one task is sent (``push.deliver_users`` for several users). Never
    raises: the rows are committed and the sweeper re-sends users whose rows stay undelivered."""
    from celery import current_app as celery_app

    ids = sorted(set(user_ids))
    if not ids:
        return 0
    window = push_window_s() if window_s is None else window_s
    try:
        pipe = redis_store.client.pipeline(transaction=False)
        for user_id in ids:
            # The key lives a little less than the countdown: a row committed while it exists is visible to
            # the task that the key stands for.
            pipe.set(window_key(user_id), 1, nx=True, px=max(1, int(window * 1000)))
        opened = [user_id for user_id, was_set in zip(ids, pipe.execute(), strict=True) if was_set]
        if len(opened) == 1:
            celery_app.send_task(PUSH_TASK, args=[opened[0]], countdown=window + PUSH_WINDOW_MARGIN_S,
                                 retry=True, retry_policy=PUSH_PUBLISH_RETRY)
        elif opened:
            celery_app.send_task(PUSH_MANY_TASK, args=[opened], countdown=window + PUSH_WINDOW_MARGIN_S,
                                 retry=True, retry_policy=PUSH_PUBLISH_RETRY)
    except Exception:
        log.warning("could not schedule push delivery for users %s; the sweeper will", ids, exc_info=True)
        return 0
    return len(opened)


on_commit("push", enqueue_push)
