"""In-app notifications, written through one outbox table that the push-delivery stage reads.

``notify`` is the only writer: it honours the recipient's notification preferences (a category switched
off writes nothing), never notifies someone about their own action or across a block, and deduplicates
with a per-recipient key, so a stage that runs twice notifies once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, func, select, text
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base, db
from models.user import Preferences

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
    return db.session.scalar(stmt.on_conflict_do_nothing().returning(Notification.id))
