"""Who may see what: the one visibility rule, as a Python predicate and as its SQL twin.

The owner sees everything; nobody else sees ``only_me``, or anything across a block (either way); ``followers``,
and every item of a private account, need an accepted follow; ``everyone`` is everyone. Anything a viewer may
not see is "not found" (404), never "forbidden": a 403 would confirm that it exists.

``allows`` (facts at hand), ``can_see`` (looks the facts up) and ``visible_sql`` (a WHERE clause for lists,
feeds, boards and counts) are the only statements of the rule; a test checks them equal on every combination of
viewer, owner, visibility, private account, block and follow state.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_, true

from domain.errors import refuse
from models import Activity, Block, Follow, User, db, social
from models.social import ACCEPTED

VISIBILITIES = ("everyone", "followers", "only_me")


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


def not_blocked_with(viewer_id: int, user_col: Any) -> ColumnElement[bool]:
    """SQL: no block between the viewer and the athlete in ``user_col``, in either direction."""
    return ~exists().where(or_(
        and_(Block.blocker_id == viewer_id, Block.blocked_id == user_col),
        and_(Block.blocker_id == user_col, Block.blocked_id == viewer_id),
    ))


def follows_sql(viewer_id: int, owner_col: Any) -> ColumnElement[bool]:
    """SQL: the viewer's follow of the athlete in ``owner_col`` is accepted."""
    return exists().where(Follow.follower_id == viewer_id, Follow.followee_id == owner_col,
                          Follow.status == ACCEPTED)


def visible_sql(viewer_id: int | None, owner_col: Any, visibility_col: Any,
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


def _not(flag: Any) -> ColumnElement[bool]:
    if isinstance(flag, bool):
        return false() if flag else true()
    return flag.is_(False)


# --- activities ---------------------------------------------------------------------------------------------

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
