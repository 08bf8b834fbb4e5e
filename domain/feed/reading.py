"""The home feed's read path: Redis says which items, PostgreSQL says whether the viewer may see them.

Every page re-checks each item against the current rules (``domain.visibility.visible_sql``, evaluated in the
page's one statement), so a stale Redis entry — an item made private, a
deleted activity, an unfollowed or blocked author whose removal task has not run — is never shown; such
entries are dropped from the viewer's feed on the way. A feed whose marker is missing (never built, or Redis
lost it) is rebuilt from PostgreSQL first. Large accounts' items come from their shared sets, merged here.

A page costs a fixed number of round trips whatever its length: the viewer's merged accounts (PostgreSQL),
the markers and the window (one Redis pipeline), and the items with their authors, the viewer's follow,
block and kudos state and the live counts (one PostgreSQL query, :mod:`models.feed_items`). The page comes
out already in the response's JSON shape (:class:`webapp.feed.schemas.FeedPageSchema`'s dump: dates in ISO
8601), built directly rather than through marshmallow, which cost more than everything else together.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, Text, literal_column

from domain import visibility
from domain.algorithms.summary import PUBLIC_VIEW_VERSION
from domain.errors import refuse
from domain.feed import fanout as feed_tasks
from domain.pagination import decode_cursor, encode_cursor
from domain.privacy.public_view import current_public, shown_totals
from models import Activity, User, db
from models.feed import Entry, author_built_key, author_key, built_key, feed_key, parse_member
from models.feed_items import ItemRow, load_page_items, page_statement

#: Each round fetches what is still missing; invisible entries are dropped, so a round can come up short.
MAX_ROUNDS = 4


def feed_page(viewer: User, cursor: str | None, limit: int) -> dict[str, Any]:
    """One page of the viewer's home feed, as ``FeedPageSchema`` dumps it (JSON-ready)."""
    after = _decode(cursor)
    fs = feed_tasks.store()
    large = feed_tasks.followees(viewer.id, merged=True)
    own_key = feed_key(viewer.id)
    keys = [own_key, *(author_key(a) for a in large)]
    markers = [built_key(viewer.id), *(author_built_key(a) for a in large)]

    items: list[dict[str, Any]] = []
    position, more = after, False
    for round_ in range(MAX_ROUNDS):
        need = limit - len(items)
        if round_ == 0:
            # The markers ride along with the first window; a missing one (rare) means rebuild and look again.
            built, batch = fs.checked_window(keys, position, need + 1, markers=markers, trim=[own_key])
            if not all(built):
                feed_tasks.ensure_built(viewer.id, large)
                batch = fs.checked_window(keys, position, need + 1, trim=[own_key])[1]
        else:
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
        refuse(400, "Invalid cursor: pass back the next_cursor of a previous page unchanged.")
    return Entry(float(score), raw.encode())


# --- rules -----------------------------------------------------------------------------------------------

# The page is one prepared statement (models.feed_items), so the shared rule goes into it as SQL text: the
# same builder every other read path filters with, on the page's ``items`` and its ``:viewer`` parameter.
_VIEWER = literal_column(":viewer", BigInteger)
_AUTHOR = literal_column("items.user_id", BigInteger)
_PAGE = page_statement(
    followed=visibility.as_sql_text(visibility.follows_sql(_VIEWER, _AUTHOR)),
    visible=visibility.as_sql_text(visibility.visible_sql(_VIEWER, _AUTHOR, literal_column("items.visibility", Text),
                                             literal_column("items.is_private", Boolean))),
    blocked=visibility.as_sql_text(visibility.blocked_ids_sql(_VIEWER)),
    public_version=PUBLIC_VIEW_VERSION)


def may_see(viewer: User, row: ItemRow) -> bool:
    """Whether the viewer may see the row: the shared rule, evaluated by the page's statement."""
    return row.visible


def in_home_feed(viewer: User, row: ItemRow) -> bool:
    """Home feeds hold one's own items and those of accepted followees (an unfollow takes effect at once)."""
    return row.user_id == viewer.id or row.followed


def _hydrate(viewer: User, entries: list[Entry]) -> tuple[list[dict[str, Any]], list[bytes], list[bytes]]:
    """(items to show, entries to drop from the viewer's feed, entries whose object no longer exists)."""
    parsed = [(entry.member, *parse_member(entry.member)) for entry in entries]
    activity_ids = [item_id for _, kind, item_id in parsed if kind == "activity"]
    post_ids = [item_id for _, kind, item_id in parsed if kind == "post"]
    activities, posts = load_page_items(_PAGE, viewer.id, activity_ids, post_ids)
    shown: list[dict[str, Any]] = []
    stale: list[bytes] = []
    gone: list[bytes] = []
    for member, kind, item_id in parsed:
        is_activity = kind == "activity"
        row = (activities if is_activity else posts).get(item_id)
        if row is None:
            gone.append(member)
            stale.append(member)
            continue
        group_post = not is_activity and row.group_id is not None
        if group_post or not in_home_feed(viewer, row) or not may_see(viewer, row):
            stale.append(member)
            continue
        if is_activity:
            shown.append(_item("activity", row, activity_body(viewer, row)))
        else:
            shown.append(_item("post", row, post_body(viewer, row, activities)))
    return shown, stale, gone


# --- serialising (the shapes of webapp.feed.schemas, dumped) ---------------------------------------------

def _athlete(row: ItemRow) -> dict[str, Any]:
    return {"id": row.user_id, "display_name": row.display_name, "avatar_url": row.avatar_url}


def _item(kind: str, row: ItemRow, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "id": row.id, "date": row.date.isoformat(), "athlete": _athlete(row), kind: body}


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _public(row: ItemRow) -> dict[str, Any] | None:
    """The stored non-owner view of a row the statement reported stale, recomputed first exactly as the activity
    endpoint does (the owner's privacy settings changed since, or it predates the current shape)."""
    activity, owner = db.session.get(Activity, row.id), db.session.get(User, row.user_id)
    if activity is None or owner is None:
        return None
    return current_public(activity, owner)


def _map(row: ItemRow, public: dict[str, Any] | None) -> dict[str, Any] | None:
    """The owner's own summary polyline, or for anyone else the privacy-filtered one."""
    if row.stale_public:
        public_map = (public or {}).get("map")
        return {"summary_polyline": public_map["summary_polyline"]} if public_map else None
    return {"summary_polyline": row.summary_polyline} if row.has_map else None


def activity_body(viewer: User, row: ItemRow) -> dict[str, Any]:
    public = _public(row) if row.stale_public else None
    body = {
        "id": row.id, "athlete": _athlete(row), "name": row.title, "sport_type": row.sport_type,
        "visibility": row.visibility, "start_date": row.date.isoformat(), "distance_m": _float(row.distance_m),
        "moving_time_s": _float(row.moving_time_s), "elapsed_time_s": _float(row.elapsed_time_s),
        "elevation_gain_m": _float(row.elevation_gain_m), "avg_speed_mps": _float(row.avg_speed_mps),
        "has_gps": bool(row.has_gps), "map": _map(row, public),
        "kudos_count": row.kudos_count, "comment_count": row.comment_count, "has_kudoed": row.kudoed,
    }
    # The statement gave the visible stretch's figures already, unless the stored view had to be recomputed.
    body.update({name: _float(value) for name, value in shown_totals(public).items()})
    return body


def post_body(viewer: User, row: ItemRow, activities: dict[int, ItemRow]) -> dict[str, Any]:
    shared = None
    activity = activities.get(row.shared_activity_id) if row.shared_activity_id is not None else None
    # Sharing never widens an activity's audience: embedded only when the viewer may see the activity.
    if activity is not None and may_see(viewer, activity):
        shared = activity_body(viewer, activity)
    return {
        "id": row.id, "text": row.title, "visibility": row.visibility, "created_at": row.date.isoformat(),
        "activity": shared, "kudos_count": row.kudos_count, "comment_count": row.comment_count,
        "has_kudoed": row.kudoed,
    }
