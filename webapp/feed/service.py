"""The home feed's read path: Redis says which items, PostgreSQL says whether the viewer may see them.

Every page re-checks each item against the current rules (the same as ``activities.service.can_view`` and
``posts.service.can_view_post``, evaluated in bulk), so a stale Redis entry — an item made private, a
deleted activity, an unfollowed or blocked author whose removal task has not run — is never shown; such
entries are dropped from the viewer's feed on the way. A feed whose marker is missing (never built, or Redis
lost it) is rebuilt from PostgreSQL first. Large accounts' items come from their shared sets, merged here.

A page costs a fixed number of queries whatever its length: users (with follow and block state), activities,
posts, kudos.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_smorest import abort
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import load_only

from models import Activity, Block, Follow, Kudos, Post, User, db, social
from models.feed import Entry, author_key, feed_key
from models.social import ACCEPTED
from tasks import feed as feed_tasks
from webapp.activities.service import current_public
from webapp.pagination import decode_cursor, encode_cursor

#: Each round fetches what is still missing; invisible entries are dropped, so a round can come up short.
MAX_ROUNDS = 4
_ACTIVITY_COLUMNS = (
    Activity.id, Activity.user_id, Activity.name, Activity.sport_type, Activity.visibility, Activity.start_time,
    Activity.distance_m, Activity.moving_time_s, Activity.elapsed_time_s, Activity.elevation_gain_m,
    Activity.avg_speed_mps, Activity.has_gps, Activity.summary_polyline, Activity.public,
    Activity.privacy_version, Activity.kudos_count, Activity.comment_count,
)


@dataclass
class Author:
    user: User
    followed: bool  # the viewer's follow is accepted
    blocked: bool  # a block either way


@dataclass
class Page:
    """Everything one batch of entries needs, loaded in bulk."""

    activities: dict[int, Activity]
    posts: dict[int, Post]
    authors: dict[int, Author]
    kudoed_activities: set[int]
    kudoed_posts: set[int]


def feed_page(viewer: User, cursor: str | None, limit: int) -> dict[str, Any]:
    after = _decode(cursor)
    fs = feed_tasks.store()
    large = feed_tasks.followees(viewer.id, merged=True)
    feed_tasks.ensure_built(viewer.id, large)
    own_key = feed_key(viewer.id)
    keys = [own_key, *(author_key(a) for a in large)]

    items: list[dict[str, Any]] = []
    position, more = after, False
    for _ in range(MAX_ROUNDS):
        need = limit - len(items)
        batch = fs.window(keys, position, need + 1)
        taken = batch[:need]
        if taken:
            shown, stale, gone = _hydrate(viewer, taken)
            items += shown
            fs.remove_from_keys([own_key], stale)  # not for this viewer (any more): heal the cache
            fs.remove_from_keys(keys[1:], gone)  # deleted for everyone
            position = taken[-1]
        more = len(batch) > need
        if not more or len(items) >= limit:
            break
    next_cursor = encode_cursor(position.score, position.member.decode()) if more and position else None
    return {"items": items, "next_cursor": next_cursor}


def _decode(cursor: str | None) -> Entry | None:
    values = decode_cursor(cursor, 2)
    if values is None:
        return None
    score, raw = values
    valid = isinstance(score, int | float) and isinstance(raw, str) and raw[:2] in ("a:", "p:") and raw[2:].isdigit()
    if not valid:
        abort(400, message="Invalid cursor: pass back the next_cursor of a previous page unchanged.")
    return Entry(float(score), raw.encode())


# --- loading ---------------------------------------------------------------------------------------------

def _load(viewer: User, entries: list[Entry]) -> Page:
    post_ids = [e.item_id for e in entries if e.kind == "post"]
    posts = {p.id: p for p in db.session.scalars(select(Post).where(Post.id.in_(post_ids)))} if post_ids else {}
    activity_ids = {e.item_id for e in entries if e.kind == "activity"}
    activity_ids |= {p.activity_id for p in posts.values() if p.activity_id is not None}
    activities = {a.id: a for a in db.session.scalars(
        select(Activity).options(load_only(*_ACTIVITY_COLUMNS)).where(Activity.id.in_(activity_ids)))
    } if activity_ids else {}
    user_ids = {a.user_id for a in activities.values()} | {p.user_id for p in posts.values()}
    return Page(activities, posts, _authors(viewer, user_ids), *_kudoed(viewer, activity_ids, set(posts)))


def _authors(viewer: User, user_ids: set[int]) -> dict[int, Author]:
    """The authors with the viewer's follow and block state, in one query."""
    if not user_ids:
        return {}
    followed = exists().where(Follow.follower_id == viewer.id, Follow.followee_id == User.id,
                              Follow.status == ACCEPTED)
    blocked = exists().where(or_(and_(Block.blocker_id == viewer.id, Block.blocked_id == User.id),
                                 and_(Block.blocker_id == User.id, Block.blocked_id == viewer.id)))
    rows = db.session.execute(select(User, followed.label("followed"), blocked.label("blocked"))
                              .where(User.id.in_(user_ids)))
    return {u.id: Author(u, bool(f), bool(b)) for u, f, b in rows.unique()}


def _kudoed(viewer: User, activity_ids: set[int], post_ids: set[int]) -> tuple[set[int], set[int]]:
    if not activity_ids and not post_ids:
        return set(), set()
    rows = db.session.execute(select(Kudos.activity_id, Kudos.post_id).where(
        Kudos.user_id == viewer.id, or_(Kudos.activity_id.in_(activity_ids), Kudos.post_id.in_(post_ids))))
    acts: set[int] = set()
    posts: set[int] = set()
    for activity_id, post_id in rows:
        if activity_id is not None:
            acts.add(activity_id)
        else:
            posts.add(post_id)
    return acts, posts


# --- rules -----------------------------------------------------------------------------------------------

def may_see(viewer: User, visibility: str, author: Author) -> bool:
    """The shared visibility rule with the follow and block state already loaded for the whole page."""
    return social.visibility_allows(visibility, is_owner=viewer.id == author.user.id, blocked=author.blocked,
                                    follower=author.followed, owner_private=author.user.is_private)


def in_home_feed(viewer: User, author: Author) -> bool:
    """Home feeds hold one's own items and those of accepted followees (an unfollow takes effect at once)."""
    return author.user.id == viewer.id or author.followed


def _hydrate(viewer: User, entries: list[Entry]) -> tuple[list[dict[str, Any]], list[bytes], list[bytes]]:
    """(items to show, entries to drop from the viewer's feed, entries whose object no longer exists)."""
    page = _load(viewer, entries)
    shown: list[dict[str, Any]] = []
    stale: list[bytes] = []
    gone: list[bytes] = []
    for entry in entries:
        obj: Activity | Post | None = (page.activities if entry.kind == "activity" else page.posts).get(entry.item_id)
        author = page.authors.get(obj.user_id) if obj is not None else None
        if obj is None or author is None:
            gone.append(entry.member)
            stale.append(entry.member)
            continue
        group_post = isinstance(obj, Post) and obj.group_id is not None
        if group_post or not in_home_feed(viewer, author) or not may_see(viewer, obj.visibility, author):
            stale.append(entry.member)
            continue
        if isinstance(obj, Activity):
            body = activity_body(viewer, obj, author.user, page)
            shown.append(_item("activity", obj.id, obj.start_time, author.user, body))
        else:
            shown.append(_item("post", obj.id, obj.created_at, author.user, post_body(viewer, obj, page)))
    return shown, stale, gone


# --- serialising -----------------------------------------------------------------------------------------

def _athlete(user: User) -> dict[str, Any]:
    return {"id": user.id, "display_name": user.display_name, "avatar_url": user.avatar_url}


def _item(kind: str, item_id: int, date: datetime, author: User, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "id": item_id, "date": date, "athlete": _athlete(author), kind: body}


def _map(viewer: User, activity: Activity, owner: User) -> dict[str, Any] | None:
    """The owner's own summary polyline, or for anyone else the privacy-filtered one (recomputed first when
    the owner's privacy settings changed since it was stored, exactly as the activity endpoint does)."""
    if viewer.id == owner.id:
        return {"summary_polyline": activity.summary_polyline} if activity.summary_polyline else None
    public_map = (current_public(activity, owner) or {}).get("map")
    return {"summary_polyline": public_map["summary_polyline"]} if public_map else None


def activity_body(viewer: User, activity: Activity, owner: User, page: Page) -> dict[str, Any]:
    return {
        "id": activity.id, "athlete": _athlete(owner), "name": activity.name, "sport_type": activity.sport_type,
        "visibility": activity.visibility, "start_date": activity.start_time, "distance_m": activity.distance_m,
        "moving_time_s": activity.moving_time_s, "elapsed_time_s": activity.elapsed_time_s,
        "elevation_gain_m": activity.elevation_gain_m, "avg_speed_mps": activity.avg_speed_mps,
        "has_gps": activity.has_gps, "map": _map(viewer, activity, owner),
        "kudos_count": activity.kudos_count, "comment_count": activity.comment_count,
        "has_kudoed": activity.id in page.kudoed_activities,
    }


def post_body(viewer: User, post: Post, page: Page) -> dict[str, Any]:
    shared = None
    activity = page.activities.get(post.activity_id) if post.activity_id is not None else None
    owner = page.authors.get(activity.user_id) if activity is not None else None
    # Sharing never widens an activity's audience: embedded only when the viewer may see the activity.
    if activity is not None and owner is not None and may_see(viewer, activity.visibility, owner):
        shared = activity_body(viewer, activity, owner.user, page)
    return {
        "id": post.id, "text": post.text, "visibility": post.visibility, "created_at": post.created_at,
        "activity": shared, "kudos_count": post.kudos_count, "comment_count": post.comment_count,
        "has_kudoed": post.id in page.kudoed_posts,
    }

