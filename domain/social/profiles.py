"""Profile rules: what the athlete may change and what others may see."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import and_, func, or_, select

from domain import board_rebuilds, jobs, visibility
from domain.feed import fanout as feed
from domain.insights import summaries
from domain.pagination import decode_cursor, encode_cursor
from domain.privacy import public_view
from domain.privacy.settings import bump_privacy_version
from models import Follow, SegmentEffort, Upload, User, db, social
from models.storage import storage


def own_profile(user: User) -> dict[str, Any]:
    followers, following = social.counts(user.id)
    prefs = user.preferences
    return {
        "id": user.id, "email": user.email, "display_name": user.display_name, "bio": user.bio,
        "avatar_url": user.avatar_url, "sex": user.sex, "birth_year": user.birth_year,
        "weight_kg": user.weight_kg, "is_private": user.is_private, "created_at": user.created_at,
        "follower_count": followers, "following_count": following,
        "preferences": {
            "units": prefs.units, "language": prefs.language, "timezone": prefs.timezone,
            "default_visibility": prefs.default_visibility, "notifications": prefs.notifications,
            "hide_start_end_m": prefs.hide_start_end_m, "hide_from_leaderboards": prefs.hide_from_leaderboards,
            "quiet_hours_start": prefs.quiet_hours_start, "quiet_hours_end": prefs.quiet_hours_end,
        },
    }


def update_profile(user: User, changes: dict[str, Any]) -> User:
    prefs_changes = changes.pop("preferences", None) or {}
    # Both decide whether the athlete's efforts appear on public leaderboards.
    boards_changed = (changes.get("is_private", user.is_private) != user.is_private or prefs_changes.get(
        "hide_from_leaderboards", user.preferences.hide_from_leaderboards) != user.preferences.hide_from_leaderboards)
    new_followers: list[int] = []
    if user.is_private and changes.get("is_private") is False:
        new_followers = social.accept_all_pending(user.id)  # a public account has no requests waiting
    for key, value in changes.items():
        setattr(user, key, value)
    prefs = user.preferences
    if "notifications" in prefs_changes:
        # Merge so a client can flip one category without resending the others.
        prefs.notifications = {**prefs.notifications, **prefs_changes.pop("notifications")}
    privacy_changed = prefs_changes.get("hide_start_end_m", prefs.hide_start_end_m) != prefs.hide_start_end_m
    if privacy_changed:
        bump_privacy_version(user)
    timezone_changed = prefs_changes.get("timezone", prefs.timezone) != prefs.timezone
    for key, value in prefs_changes.items():
        setattr(prefs, key, value)
    if timezone_changed:  # the weekly summary's local slot is another instant now
        summaries.reschedule(user)
    if boards_changed:
        board_rebuilds.rebuild_later(db.session.scalars(
            select(SegmentEffort.segment_id).where(SegmentEffort.user_id == user.id).distinct()))
    db.session.commit()
    if privacy_changed:
        public_view.enqueue_refresh(user.id)
    for follower_id in new_followers:
        feed.enqueue_follow(follower_id, user.id)
    return user


def get_visible_user(viewer: User, user_id: int) -> User:
    """The user, or 404 when absent or when either one blocked the other (a block hides the account)."""
    return visibility.get_athlete(viewer, user_id)


def can_see_details(viewer: User, user: User) -> bool:
    """A profile's details (and follow lists) are shared like an item seen by everyone: the shared rule."""
    return visibility.can_see(viewer.id, user.id, user.is_private, "everyone")


def public_profile(viewer: User, user: User) -> dict[str, Any]:
    followers, following = social.counts(user.id)
    visible = can_see_details(viewer, user)
    return {
        "id": user.id, "display_name": user.display_name, "avatar_url": user.avatar_url,
        "is_private": user.is_private, "follower_count": followers, "following_count": following,
        "bio": user.bio if visible else None, "sex": user.sex if visible else None,
        "follow_status": social.follow_status(viewer.id, user.id) if viewer.id != user.id else None,
        "follows_you": social.is_follower(user.id, viewer.id), "details_visible": visible,
    }


def search(viewer: User, q: str, cursor: str | None, limit: int) -> dict[str, Any]:
    """Athletes whose display name contains ``q`` (case-insensitive), by name: to find friends to follow.

    Blocks hide an account both ways, as everywhere. A private account is found (so it can be asked to be
    followed) but shows only its name and avatar, like its public profile does to non-followers."""
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    query = select(User).where(User.display_name.ilike(pattern, escape="\\"), User.id != viewer.id,
                               visibility.not_blocked_with(viewer.id, User.id))
    after = decode_cursor(cursor, 2)
    if after is not None:
        name, last_id = str(after[0]), int(after[1])
        query = query.where(or_(func.lower(User.display_name) > name,
                                and_(func.lower(User.display_name) == name, User.id > last_id)))
    rows = list(db.session.scalars(query.order_by(func.lower(User.display_name), User.id).limit(limit + 1)))
    page = rows[:limit]
    statuses = dict(db.session.execute(select(Follow.followee_id, Follow.status).where(
        Follow.follower_id == viewer.id, Follow.followee_id.in_([u.id for u in page]))).all()) if page else {}
    next_cursor = (encode_cursor(page[-1].display_name.lower(), page[-1].id) if len(rows) > limit else None)
    return {"items": [{"id": u.id, "display_name": u.display_name, "avatar_url": u.avatar_url,
                       "is_private": u.is_private, "follow_status": statuses.get(u.id)} for u in page],
            "next_cursor": next_cursor}


def delete_account(user: User) -> int:
    """Remove the athlete and everything derived from them; raw files are removed after the commit."""
    keys = list(db.session.scalars(select(Upload.storage_key).where(Upload.user_id == user.id)))
    db.session.delete(user)
    db.session.commit()
    jobs.send(jobs.MEDIA_PURGE)  # every photo and video of theirs (the database recorded the objects)
    for key in keys:
        try:
            storage.delete(key)
        except Exception:  # the rows are gone; an orphaned object is swept later, never a failed delete
            current_app.logger.warning("could not delete stored object %s", key, exc_info=True)
    return len(keys)
