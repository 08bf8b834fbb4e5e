"""Reading and acknowledging in-app notifications. Writing them is ``models.notification.notify``'s job only.

A notification whose actor is now blocked either way is left out of the list and the unread count: a block
hides everything, including the trace of earlier interactions. Push-only kinds (chat messages: the chat keeps
its own unread counts) are never listed or counted.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update

from domain.algorithms.push_plan import PUSH_ONLY_KINDS
from domain.notifications.outbox import serialize as serialize_item
from domain.pagination import decode_cursor, encode_cursor
from domain.visibility import not_blocked_with
from models import Notification, User, db, utcnow
from models.notification import REFS


def _shown_to(viewer: User) -> ColumnElement[bool]:
    return and_(Notification.user_id == viewer.id, Notification.kind.not_in(PUSH_ONLY_KINDS),
                or_(Notification.actor_id.is_(None), not_blocked_with(viewer.id, Notification.actor_id)))


def unread_count(viewer: User) -> int:
    return int(db.session.scalar(
        select(func.count()).select_from(Notification).where(_shown_to(viewer), Notification.read_at.is_(None))
    ) or 0)


def serialize(notification: Notification, actor: User | None) -> dict[str, Any]:
    """The same item the ``notification`` socket frame carries (models.notification.serialize)."""
    return serialize_item(notification.id, notification.kind, actor,
                          {ref: getattr(notification, ref) for ref in REFS}, notification.payload or {},
                          read=notification.read_at is not None, created_at=notification.created_at)


def list_notifications(viewer: User, cursor: str | None, limit: int) -> dict[str, Any]:
    """Newest first; keyset on the id, which the (user_id, id) index serves directly."""
    query = (select(Notification, User).outerjoin(User, User.id == Notification.actor_id)
             .where(_shown_to(viewer)))
    after = decode_cursor(cursor, 1)
    if after is not None:
        query = query.where(Notification.id < int(after[0]))
    rows = db.session.execute(query.order_by(Notification.id.desc()).limit(limit + 1)).all()
    return {
        "items": [serialize(n, actor) for n, actor in rows[:limit]],
        "next_cursor": encode_cursor(rows[limit - 1][0].id) if len(rows) > limit else None,
        "unread_count": unread_count(viewer),
    }


def mark_read(viewer: User, ids: list[int] | None) -> int:
    """Mark the given notifications (None: all of them) read; returns the new unread count.

    Ids that aren't the viewer's are ignored rather than reported, so nobody learns which ids exist.
    """
    stmt = update(Notification).where(Notification.user_id == viewer.id, Notification.read_at.is_(None),
                                      Notification.kind.not_in(PUSH_ONLY_KINDS))
    if ids is not None:
        stmt = stmt.where(Notification.id.in_(ids))
    db.session.execute(stmt.values(read_at=utcnow()))
    db.session.commit()
    return unread_count(viewer)
