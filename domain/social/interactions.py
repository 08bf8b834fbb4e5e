"""Kudos and comments on activities and posts.

Both follow the object's visibility: whoever may not see the activity or post (blocks included) gets 404
for every kudos and comment path on it. Counters (``kudos_count``, ``comment_count``) are kept by database
triggers and only ever read here. "One kudos per athlete" is the database's unique index, so a double tap
or a retried request is a no-op. The owner hears about kudos and comments through ``notify`` in the same
transaction as the action, so a notification exists exactly when the action committed.

Unkudos deletes the kudos notification too: a notification about kudos that no longer exist would point
at nothing (a later kudos notifies again).
Comments list oldest first (a conversation reads top to bottom); kudos list newest first.
Kudos and comments by athletes the viewer blocked, or who blocked the viewer, are left out of the lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, delete, exists, or_, select
from sqlalchemy.dialects.postgresql import insert

from domain import visibility
from domain.errors import refuse
from domain.notifications.outbox import notify
from domain.pagination import decode_cursor, encode_cursor
from domain.social import posts
from domain.visibility import not_blocked_with
from models import Activity, Comment, Kudos, Notification, Post, User, db, social
from models.db import rowcount

Kind = Literal["activity", "post"]
TITLE_CHARS = 80
EXCERPT_CHARS = 140


@dataclass(frozen=True)
class Target:
    """The activity or post being kudoed or commented on, once the viewer is known to see it."""

    kind: Kind
    id: int
    owner_id: int
    title: str

    @property
    def refs(self) -> dict[str, int]:
        return {f"{self.kind}_id": self.id}

    @property
    def model(self) -> type[Activity] | type[Post]:
        return Activity if self.kind == "activity" else Post

    def column(self, model: type[Kudos] | type[Comment]) -> Any:
        return model.activity_id if self.kind == "activity" else model.post_id


def resolve_target(viewer: User, kind: Kind, target_id: int) -> Target:
    """The target as this viewer may see it, or 404 (also across a block either way)."""
    if kind == "activity":
        activity, owner = visibility.get_visible(viewer, target_id)
        return Target("activity", activity.id, owner.id, activity.name)
    post, author = posts.get_visible_post(viewer, target_id)
    return Target("post", post.id, author.id, post.text[:TITLE_CHARS])


def kudos_key(target: Target, actor_id: int) -> str:
    return f"kudos:{target.kind}:{target.id}:{actor_id}"


def _kudos_state(viewer: User, target: Target) -> dict[str, Any]:
    # Read back from the row the trigger maintains: never an in-memory count that a concurrent request beat.
    count = db.session.scalar(select(target.model.kudos_count).where(target.model.id == target.id))
    given = db.session.scalar(select(exists().where(target.column(Kudos) == target.id, Kudos.user_id == viewer.id)))
    # Kudos by athletes in a block with the viewer are left out of the list, so out of the count too.
    hidden = visibility.unseen_counts(viewer.id, target.kind, [target.id]).get(target.id, (0, 0))[0]
    return {"kudos_count": int(count or 0) - hidden, "has_kudoed": bool(given)}


def give_kudos(viewer: User, kind: Kind, target_id: int) -> tuple[dict[str, Any], bool]:
    """Give kudos once; returns the state and whether this request created it (a repeat is a no-op)."""
    target = resolve_target(viewer, kind, target_id)
    if target.owner_id == viewer.id:
        refuse(422, f"You can't give kudos to your own {kind}.")
    stmt = insert(Kudos).values(user_id=viewer.id, **target.refs).on_conflict_do_nothing().returning(Kudos.id)
    created = db.session.scalar(stmt) is not None
    if created:
        notify(target.owner_id, "kudos", kudos_key(target, viewer.id), actor_id=viewer.id,
               payload={"display_name": viewer.display_name, "title": target.title}, **target.refs)
    db.session.commit()
    return _kudos_state(viewer, target), created


def remove_kudos(viewer: User, kind: Kind, target_id: int) -> dict[str, Any]:
    """Take kudos back (idempotent), with the notification it caused."""
    target = resolve_target(viewer, kind, target_id)
    removed = rowcount(db.session.execute(
        delete(Kudos).where(target.column(Kudos) == target.id, Kudos.user_id == viewer.id)))
    if removed:
        db.session.execute(delete(Notification).where(
            Notification.user_id == target.owner_id, Notification.dedupe_key == kudos_key(target, viewer.id)))
    db.session.commit()
    return _kudos_state(viewer, target)


def list_kudos(viewer: User, kind: Kind, target_id: int, cursor: str | None, limit: int) -> dict[str, Any]:
    """Athletes who gave kudos, newest first; keyset on the kudos id (unique and increasing)."""
    target = resolve_target(viewer, kind, target_id)
    query = (select(Kudos.id, Kudos.created_at, User).join(User, User.id == Kudos.user_id)
             .where(target.column(Kudos) == target.id, not_blocked_with(viewer.id, Kudos.user_id)))
    after = decode_cursor(cursor, 1)
    if after is not None:
        query = query.where(Kudos.id < int(after[0]))
    rows = db.session.execute(query.order_by(Kudos.id.desc()).limit(limit + 1)).all()
    items = [{"id": u.id, "display_name": u.display_name, "avatar_url": u.avatar_url, "given_at": at}
             for _, at, u in rows[:limit]]
    return {"items": items, "next_cursor": encode_cursor(rows[limit - 1][0]) if len(rows) > limit else None}


def serialize_comment(viewer: User, comment: Comment, author: User, owner_id: int) -> dict[str, Any]:
    return {
        "id": comment.id,
        "athlete": {"id": author.id, "display_name": author.display_name, "avatar_url": author.avatar_url},
        "text": comment.text, "activity_id": comment.activity_id, "post_id": comment.post_id,
        "can_delete": viewer.id in (comment.user_id, owner_id), "created_at": comment.created_at,
    }


def list_comments(viewer: User, kind: Kind, target_id: int, cursor: str | None, limit: int) -> dict[str, Any]:
    """Oldest first, keyset on (created_at, id): the order of the (target, created_at, id) index."""
    target = resolve_target(viewer, kind, target_id)
    query = (select(Comment, User).join(User, User.id == Comment.user_id)
             .where(target.column(Comment) == target.id, not_blocked_with(viewer.id, Comment.user_id)))
    after = decode_cursor(cursor, 2)
    if after is not None:
        ts, last_id = datetime.fromisoformat(after[0]), int(after[1])
        query = query.where(or_(Comment.created_at > ts, and_(Comment.created_at == ts, Comment.id > last_id)))
    rows = db.session.execute(query.order_by(Comment.created_at, Comment.id).limit(limit + 1)).all()
    items = [serialize_comment(viewer, c, u, target.owner_id) for c, u in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1][0]
        next_cursor = encode_cursor(last.created_at.isoformat(), last.id)
    return {"items": items, "next_cursor": next_cursor}


def add_comment(viewer: User, kind: Kind, target_id: int, text: str) -> dict[str, Any]:
    target = resolve_target(viewer, kind, target_id)
    comment = Comment(user_id=viewer.id, text=text, **target.refs)
    db.session.add(comment)
    db.session.flush()  # the id is the notification's dedupe key
    notify(target.owner_id, "comment", f"comment:{comment.id}", actor_id=viewer.id,
           payload={"display_name": viewer.display_name, "title": target.title, "text": text[:EXCERPT_CHARS]},
           comment_id=comment.id, **target.refs)
    db.session.commit()
    return serialize_comment(viewer, comment, viewer, target.owner_id)


def _owner_of(comment: Comment) -> int | None:
    model: type[Activity] | type[Post] = Activity if comment.activity_id is not None else Post
    target_id = comment.activity_id if comment.activity_id is not None else comment.post_id
    return db.session.scalar(select(model.user_id).where(model.id == target_id))


def delete_comment(viewer: User, comment_id: int) -> None:
    """The comment's author or the object's owner may delete it; its notification goes with it (cascade).

    The author may always remove their own words, even from an object they can no longer see.
    """
    comment = db.session.get(Comment, comment_id)
    if comment is None:
        refuse(404, "Comment not found.")
    if viewer.id not in (comment.user_id, _owner_of(comment)):
        kind: Kind = "activity" if comment.activity_id is not None else "post"
        resolve_target(viewer, kind, comment.activity_id or comment.post_id or 0)  # 404 when hidden from them
        if social.is_blocked_either_way(viewer.id, comment.user_id):  # the lists hide it from them too
            refuse(404, "Comment not found.")
        refuse(403, "Only the comment's author or the owner of what it is on can delete it.")
    db.session.delete(comment)
    db.session.commit()
