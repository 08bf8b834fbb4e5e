"""Who may see what: the one visibility rule, as a Python predicate and as its SQL twin.

The owner sees everything; nobody else sees ``only_me``, or anything across a block (either way); ``followers``,
and every item of a private account, need an accepted follow; ``everyone`` is everyone. Anything a viewer may
not see is "not found" (404), never "forbidden": a 403 would confirm that it exists.

``allows`` (facts at hand), ``can_see`` (looks the facts up) and ``visible_sql`` (a WHERE clause for lists,
feeds, boards and counts) are the only statements of the rule; a test checks them equal on every combination of
viewer, owner, visibility, private account, block and follow state.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import (
    ClauseElement,
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import aliased

from domain.errors import refuse
from models import Activity, Block, Comment, Follow, Kudos, User, db, social
from models.social import ACCEPTED


def allows(visibility: str, *, is_owner: bool, blocked: bool, follower: bool, owner_private: bool) -> bool:
    """The one visibility rule of activities and posts, on facts the caller has at hand.

    The owner sees everything; nobody else sees ``only_me``, or anything across a block; ``followers``, and
    every item of a private account, need an accepted follow; ``everyone`` is everyone.
    """
    if is_owner:
        return True
    if visibility == "only_me" or blocked:
        return False
    if visibility == "followers" or owner_private:
        return follower
    return True


def can_see(viewer_id: int, owner_id: int, owner_private: bool, visibility: str) -> bool:
    """:func:`allows`, looking up the block and follow state (lazily: most items need neither)."""
    if viewer_id == owner_id:
        return True
    if visibility == "only_me" or social.is_blocked_either_way(viewer_id, owner_id):
        return False
    follower = (visibility == "followers" or owner_private) and social.is_follower(viewer_id, owner_id)
    return allows(visibility, is_owner=False, blocked=False, follower=follower, owner_private=owner_private)


#: A viewer in SQL: an id, or an expression such as a prepared statement's parameter (the feed page).
Viewer = int | ColumnElement[Any]


def not_blocked_with(viewer_id: Viewer, user_col: Any) -> ColumnElement[bool]:
    """SQL: no block between the viewer and the athlete in ``user_col``, in either direction."""
    # An alias of its own, so the subquery never correlates with a Block the outer query happens to join.
    block = aliased(Block)
    return ~exists().where(or_(
        and_(block.blocker_id == viewer_id, block.blocked_id == user_col),
        and_(block.blocker_id == user_col, block.blocked_id == viewer_id),
    ))


def blocked_ids_sql(viewer_id: Viewer) -> Select[Any]:
    """SQL: the athletes in a block with the viewer (either way): the set form of :func:`not_blocked_with`."""
    block = aliased(Block)
    return select(case((block.blocker_id == viewer_id, block.blocked_id), else_=block.blocker_id)).where(
        or_(block.blocker_id == viewer_id, block.blocked_id == viewer_id))


def follows_sql(viewer_id: Viewer, owner_col: Any) -> ColumnElement[bool]:
    """SQL: the viewer's follow of the athlete in ``owner_col`` is accepted."""
    follow = aliased(Follow)  # as for blocks: never correlated with a Follow of the outer query
    return exists().where(follow.follower_id == viewer_id, follow.followee_id == owner_col,
                          follow.status == ACCEPTED)


def visible_sql(viewer_id: Viewer | None, owner_col: Any, visibility_col: Any,
                owner_private_col: Any) -> ColumnElement[bool]:
    """SQL twin of :func:`allows` for rows whose owner, visibility and owner's private flag are these columns
    (or literal values). ``viewer_id`` None is nobody in particular: only public items of public accounts."""
    if viewer_id is None:
        return and_(visibility_col == "everyone", _not(owner_private_col))
    return or_(
        owner_col == viewer_id,
        and_(visibility_col != "only_me", not_blocked_with(viewer_id, owner_col),
             or_(and_(visibility_col == "everyone", _not(owner_private_col)), follows_sql(viewer_id, owner_col))),
    )


def as_sql_text(clause: ClauseElement) -> str:
    """The rule's SQL as PostgreSQL text, literals inlined, for hand-written (prepared or ``text``) statements:
    pass columns and parameters as ``literal_column("t.col")`` / ``literal_column(":name")``."""
    return str(clause.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def _not(flag: Any) -> ColumnElement[bool]:
    if isinstance(flag, bool):
        return false() if flag else true()
    return flag.is_(False)


# --- counts ---------------------------------------------------------------------------------------------------

def unseen_counts(viewer_id: int, kind: str, ids: Collection[int]) -> dict[int, tuple[int, int]]:
    """(kudos, comments) on each of these activities or posts (``kind``) by athletes in a block with the viewer.

    The kudos and comment lists leave those athletes out, so the counts the viewer reads must too (the stored
    counters count everyone). Targets with none are absent; one query, driven by the viewer's few blocks.
    """
    if not ids:
        return {}
    blocked = blocked_ids_sql(viewer_id)
    kudos_on = Kudos.activity_id if kind == "activity" else Kudos.post_id
    comment_on = Comment.activity_id if kind == "activity" else Comment.post_id
    both = union_all(
        select(kudos_on.label("target"), literal(1).label("k"), literal(0).label("c"))
        .where(kudos_on.in_(ids), Kudos.user_id.in_(blocked)),
        select(comment_on.label("target"), literal(0), literal(1))
        .where(comment_on.in_(ids), Comment.user_id.in_(blocked)),
    ).subquery()
    rows = db.session.execute(select(both.c.target, func.sum(both.c.k), func.sum(both.c.c)).group_by(both.c.target))
    return {target: (int(k), int(c)) for target, k, c in rows}


def seen_counts(viewer_id: int, kind: str, item: Any, unseen: dict[int, tuple[int, int]] | None = None,
                ) -> dict[str, int]:
    """``kudos_count`` and ``comment_count`` of an activity or post as this viewer may count them."""
    k, c = (unseen if unseen is not None else unseen_counts(viewer_id, kind, [item.id])).get(item.id, (0, 0))
    return {"kudos_count": item.kudos_count - k, "comment_count": item.comment_count - c}


# --- athletes and activities ---------------------------------------------------------------------------------

def get_athlete(viewer: User, user_id: int) -> User:
    """The athlete, or 404 when absent or when either one blocked the other (a block hides the account)."""
    user = db.session.get(User, user_id)
    if user is None or (user.id != viewer.id and social.is_blocked_either_way(viewer.id, user.id)):
        refuse(404, "Athlete not found.")
    return user


def can_view(viewer: User, activity: Activity, owner: User) -> bool:
    return can_see(viewer.id, owner.id, owner.is_private, activity.visibility)


def get_visible(viewer: User, activity_id: int) -> tuple[Activity, User]:
    """The activity and its owner, or 404 when it does not exist or the viewer may not see it."""
    activity = db.session.get(Activity, activity_id)
    owner = db.session.get(User, activity.user_id) if activity else None
    if activity is None or owner is None or not can_view(viewer, activity, owner):
        refuse(404, "Activity not found.")
    return activity, owner


def get_own(viewer: User, activity_id: int) -> Activity:
    """The viewer's own activity, or 404 (someone else's is "not found" too)."""
    activity = db.session.get(Activity, activity_id)
    if activity is None or activity.user_id != viewer.id:
        refuse(404, "Activity not found.")
    return activity
