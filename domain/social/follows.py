"""Follow, request, accept and block rules. The graph lives in PostgreSQL (models.social)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from domain.errors import refuse
from domain.feed import fanout as feed
from domain.live import service as live
from domain.notifications.outbox import notify
from domain.pagination import decode_cursor, encode_cursor
from domain.social.profiles import can_see_details, get_visible_user
from models import Block, Follow, User, db, social
from models.db import rowcount


def follow(viewer: User, target_id: int) -> str:
    if target_id == viewer.id:
        refuse(422, "You can't follow yourself.")
    target = get_visible_user(viewer, target_id)
    status = social.PENDING if target.is_private else social.ACCEPTED
    stmt = insert(Follow).values(follower_id=viewer.id, followee_id=target.id, status=status)
    # Following again is a no-op that keeps the existing state (an accepted follow never turns pending).
    created = rowcount(db.session.execute(stmt.on_conflict_do_nothing()))
    if created:
        kind = "follow_request" if status == social.PENDING else "follow"
        notify(target.id, kind, f"{kind}:{viewer.id}", actor_id=viewer.id,
               payload={"display_name": viewer.display_name})
    db.session.commit()
    if created and status == social.ACCEPTED:
        feed.enqueue_follow(viewer.id, target.id)
    return social.follow_status(viewer.id, target.id) or status


def unfollow(viewer: User, target_id: int) -> None:
    removed = rowcount(db.session.execute(
        delete(Follow).where(Follow.follower_id == viewer.id, Follow.followee_id == target_id)))
    db.session.commit()
    if removed:
        feed.enqueue_unfollow(viewer.id, target_id)
        live.revoke_watchers(target_id, viewer.id)


def answer_request(viewer: User, follower_id: int, *, accept: bool) -> None:
    where = and_(Follow.follower_id == follower_id, Follow.followee_id == viewer.id, Follow.status == social.PENDING)
    if accept:
        result = db.session.execute(update(Follow).where(where).values(status=social.ACCEPTED))
    else:
        result = db.session.execute(delete(Follow).where(where))
    if rowcount(result) == 0:
        db.session.rollback()
        refuse(404, "No pending follow request from this athlete.")
    if accept:
        notify(follower_id, "follow_accepted", f"follow_accepted:{viewer.id}", actor_id=viewer.id,
               payload={"display_name": viewer.display_name})
    db.session.commit()
    if accept:
        feed.enqueue_follow(follower_id, viewer.id)


def block(viewer: User, target_id: int) -> None:
    if target_id == viewer.id:
        refuse(422, "You can't block yourself.")
    if db.session.get(User, target_id) is None:
        refuse(404, "Athlete not found.")
    db.session.execute(insert(Block).values(blocker_id=viewer.id, blocked_id=target_id).on_conflict_do_nothing())
    # A block ends the relationship both ways, requests included.
    db.session.execute(delete(Follow).where(or_(
        and_(Follow.follower_id == viewer.id, Follow.followee_id == target_id),
        and_(Follow.follower_id == target_id, Follow.followee_id == viewer.id),
    )))
    db.session.commit()
    feed.enqueue_unfollow(viewer.id, target_id)
    feed.enqueue_unfollow(target_id, viewer.id)
    live.revoke_watchers(viewer.id, target_id)
    live.revoke_watchers(target_id, viewer.id)


def unblock(viewer: User, target_id: int) -> None:
    db.session.execute(delete(Block).where(Block.blocker_id == viewer.id, Block.blocked_id == target_id))
    db.session.commit()


def _page(query: Any, time_col: Any, id_col: Any, cursor: str | None, limit: int) -> dict[str, Any]:
    """Newest first, keyset on (time, id) so concurrent follows neither skip nor repeat entries."""
    after = decode_cursor(cursor, 2)
    if after is not None:
        ts, last_id = datetime.fromisoformat(after[0]), int(after[1])
        query = query.where(or_(time_col < ts, and_(time_col == ts, id_col < last_id)))
    rows = db.session.execute(query.order_by(time_col.desc(), id_col.desc()).limit(limit + 1)).all()
    items = [{"id": u.id, "display_name": u.display_name, "avatar_url": u.avatar_url,
              "is_private": u.is_private, "since": since} for u, since in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last_user, last_since = rows[limit - 1]
        next_cursor = encode_cursor(last_since.isoformat(), last_user.id)
    return {"items": items, "next_cursor": next_cursor}


def _require_graph_visible(viewer: User, user_id: int) -> User:
    user = get_visible_user(viewer, user_id)
    if not can_see_details(viewer, user):
        refuse(403, "This account is private: follow it to see its followers and following.")
    return user


def followers(viewer: User, user_id: int, cursor: str | None, limit: int) -> dict[str, Any]:
    user = _require_graph_visible(viewer, user_id)
    q = select(User, Follow.created_at).join(Follow, Follow.follower_id == User.id).where(
        Follow.followee_id == user.id, Follow.status == social.ACCEPTED)
    return _page(q, Follow.created_at, User.id, cursor, limit)


def following(viewer: User, user_id: int, cursor: str | None, limit: int) -> dict[str, Any]:
    user = _require_graph_visible(viewer, user_id)
    q = select(User, Follow.created_at).join(Follow, Follow.followee_id == User.id).where(
        Follow.follower_id == user.id, Follow.status == social.ACCEPTED)
    return _page(q, Follow.created_at, User.id, cursor, limit)


def pending_requests(viewer: User, cursor: str | None, limit: int) -> dict[str, Any]:
    q = select(User, Follow.created_at).join(Follow, Follow.follower_id == User.id).where(
        Follow.followee_id == viewer.id, Follow.status == social.PENDING)
    return _page(q, Follow.created_at, User.id, cursor, limit)


def blocked(viewer: User, cursor: str | None, limit: int) -> dict[str, Any]:
    q = select(User, Block.created_at).join(Block, Block.blocked_id == User.id).where(Block.blocker_id == viewer.id)
    return _page(q, Block.created_at, User.id, cursor, limit)
