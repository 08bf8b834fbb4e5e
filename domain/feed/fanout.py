"""The home feed: fan-out on write into Redis sorted sets, with a hybrid path for very large accounts.

Interface used by the rest of the code base:
- ``fan_out_activity(activity_id)`` — the chain's feed stage.
- ``enqueue_follow(follower_id, followee_id)`` — an accepted follow: backfill the followee's recent items.
- ``enqueue_unfollow(follower_id, followee_id)`` — unfollow or block: remove the author's items.
- ``enqueue_item_changed(kind, item_id)`` — visibility changed or a post was created: fan out or remove.
- ``enqueue_item_removed(kind, item_id, author_id)`` — the activity or post was deleted.
- ``rebuild_user_feed(user_id)`` — rebuild one feed from PostgreSQL (operators; reads do it when needed).

An item is written to its author's own feed whatever its visibility, and — when ``everyone`` or
``followers`` and not a group post — to every follower's feed. Authors with more followers than
``FEED_FANOUT_THRESHOLD`` are not copied into each follower's feed: their items go to one per-author set
that their followers' reads merge in, so a famous athlete's upload costs the same as anyone's. Reads merge
the sets of accounts above half the threshold (see :func:`merge_floor`), so crossing it back and forth
loses nothing.

Redis only ever holds a cache: the read path re-checks every item against PostgreSQL (webapp.feed.service),
and a feed whose marker is missing is rebuilt from PostgreSQL, so a lost message or a lost Redis only
delays or costs a rebuild, never shows something it should not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import current_app
from sqlalchemy import and_, bindparam, or_, select, text

from domain import jobs
from models import Activity, Post, User, db
from models.feed import (
    FANOUT_BATCH,
    FEED_SIZE,
    FeedStore,
    author_built_key,
    author_key,
    built_key,
    feed_key,
    member,
    parse_member,
    score_of,
)
from models.feed_items import accepted_followees
from models.redis_store import redis_store
from models.social import ACCEPTED, is_follower

log = logging.getLogger(__name__)

DEFAULT_FANOUT_THRESHOLD = 10_000
#: Visibilities that reach other people's feeds (``only_me`` stays in the author's own feed).
SHARED_VISIBILITIES = ("everyone", "followers")
#: How many of a newly followed athlete's items are copied into the follower's feed.
BACKFILL_SIZE = 200
KINDS = ("activity", "post")

_stores: dict[int, FeedStore] = {}


def store() -> FeedStore:
    """The feed store on the configured Redis client (its Lua script is registered once per client)."""
    client = redis_store.client
    cached = _stores.get(id(client))
    if cached is None or cached.r is not client:
        cached = _stores[id(client)] = FeedStore(client)
    return cached


def fanout_threshold() -> int:
    return int(current_app.config.get("FEED_FANOUT_THRESHOLD", DEFAULT_FANOUT_THRESHOLD))


def is_large(follower_count: int) -> bool:
    """Accounts above the threshold are not fanned out: their items go to their shared set only."""
    return follower_count > fanout_threshold()


def merge_floor() -> int:
    """Followers above which an account's shared set is merged into its followers' reads.

    Half the fan-out threshold, on purpose: an account hovering around the threshold (followers come and
    go) still has the items it posted while above it merged in, so none of them vanish from its
    followers' feeds when it drops back below; meanwhile both paths deliver its items (reads de-duplicate).
    """
    return fanout_threshold() // 2


def is_merged(follower_count: int) -> bool:
    return follower_count > merge_floor()


# --- PostgreSQL reads ------------------------------------------------------------------------------------

def follower_batches(author_id: int) -> list[str]:
    """The author's accepted followers as comma-separated id strings of FANOUT_BATCH, joined by PostgreSQL:
    handing 10,000 ids through the driver and back out to Redis one by one would cost more than the
    fan-out itself."""
    return [row for row in db.session.scalars(text(
        "SELECT string_agg(follower_id::text, ',') FROM ("
        "  SELECT follower_id, (row_number() OVER ()) / :batch AS part FROM follows"
        "  WHERE followee_id = :author AND status = :accepted) f GROUP BY part"
    ), {"author": author_id, "batch": FANOUT_BATCH, "accepted": ACCEPTED}) if row]


def _follower_count(user_id: int) -> int | None:
    return db.session.scalar(_FOLLOWER_COUNT, {"user_id": user_id})


#: Every new activity's fan-out runs these: prepared once.
_FOLLOWER_COUNT = select(User.follower_count).where(User.id == bindparam("user_id"))
#: The activity and its author's follower count in one round trip.
_FAN_OUT_ROW = select(Activity.user_id, Activity.visibility, Activity.start_time, User.follower_count).join(
    User, User.id == Activity.user_id).where(Activity.id == bindparam("activity_id"))


def followees(user_id: int, *, merged: bool) -> list[int]:
    """Accepted followees of ``user_id`` whose shared sets are (``merged``) or are not merged in at read.
    Every feed page asks this first, so it is a prepared statement (planning cost more than running it)."""
    return accepted_followees(user_id, floor=merge_floor(), above=merged)


def recent_items(author_ids: Iterable[int], *, own_id: int | None = None,
                 limit: int = FEED_SIZE) -> list[tuple[str, float]]:
    """Newest feed entries by ``author_ids`` (shared visibilities only) and by ``own_id`` (any visibility);
    group posts never. Two index-backed queries, merged newest first."""
    authors = sorted(set(author_ids) - {own_id})
    act_cond = and_(Activity.user_id.in_(authors), Activity.visibility.in_(SHARED_VISIBILITIES))
    post_cond = and_(Post.user_id.in_(authors), Post.visibility.in_(SHARED_VISIBILITIES))
    if own_id is not None:
        act_cond = or_(act_cond, Activity.user_id == own_id)
        post_cond = or_(post_cond, Post.user_id == own_id)
    activities = db.session.execute(
        select(Activity.id, Activity.start_time).where(act_cond)
        .order_by(Activity.start_time.desc(), Activity.id.desc()).limit(limit))
    posts = db.session.execute(
        select(Post.id, Post.created_at).where(post_cond, Post.group_id.is_(None))
        .order_by(Post.created_at.desc(), Post.id.desc()).limit(limit))
    entries = [(member("activity", i), score_of(t)) for i, t in activities]
    entries += [(member("post", i), score_of(t)) for i, t in posts]
    entries.sort(key=lambda e: (e[1], e[0].encode()), reverse=True)
    return entries[:limit]


# --- writing ---------------------------------------------------------------------------------------------

def fan_out_activity(activity_id: int) -> int:
    """The chain's feed stage (and a visibility change): returns how many feeds were written."""
    row = db.session.execute(_FAN_OUT_ROW, {"activity_id": activity_id}).first()
    if row is None:
        return 0
    return _fan_out(row.user_id, member("activity", activity_id), score_of(row.start_time),
                    shared=row.visibility in SHARED_VISIBILITIES, follower_count=row.follower_count)


def fan_out_post(post_id: int) -> int:
    """A created or edited post: fanned out like an activity, except that group posts never are."""
    row = db.session.execute(
        select(Post.user_id, Post.visibility, Post.group_id, Post.created_at).where(Post.id == post_id)
    ).first()
    if row is None:
        return 0
    m = member("post", post_id)
    if row.group_id is not None:  # read by the group's audience, never part of home feeds
        _retract(row.user_id, m, keep_own=False)
        return 0
    return _fan_out(row.user_id, m, score_of(row.created_at), shared=row.visibility in SHARED_VISIBILITIES,
                    follower_count=_follower_count(row.user_id))


def _fan_out(author_id: int, m: str, score: float, *, shared: bool, follower_count: int | None) -> int:
    fs = store()
    written = fs.add_to_feeds([author_id], m, score)
    if not shared:
        _retract(author_id, m, keep_own=True)
        return written
    # Written only once built (by a read that merges it: the account is above the merge floor), and then
    # kept up to date below the threshold too, so crossing it never leaves a gap.
    fs.add_to_author(author_id, m, score)
    if is_large(follower_count or 0):
        return written
    return written + fs.add_to_feed_batches(follower_batches(author_id), m, score)


def _retract(author_id: int, m: str, *, keep_own: bool) -> None:
    """Take an item out of other people's feeds (and the author's, unless ``keep_own``).

    A large account's followers never got a copy (reads also drop anything invisible), so only the shared
    set is touched for them.
    """
    fs = store()
    fs.remove_from_author(author_id, [m])
    if not keep_own:
        fs.remove_from_feeds([author_id], [m])
    if not is_large(_follower_count(author_id) or 0):
        fs.remove_from_feed_batches(follower_batches(author_id), [m])


def item_changed(kind: str, item_id: int) -> int:
    _check_kind(kind)
    return fan_out_activity(item_id) if kind == "activity" else fan_out_post(item_id)


def item_removed(kind: str, item_id: int, author_id: int) -> None:
    _check_kind(kind)
    _retract(author_id, member(kind, item_id), keep_own=False)


def backfill_follow(follower_id: int, followee_id: int) -> int:
    """Copy the followee's recent shared items into the follower's feed; returns how many were copied.

    Nothing to do when the feed is not built (the rebuild on read includes them), the follow is gone again
    (a quick unfollow), or the followee's shared set is merged in at read time.
    """
    fs = store()
    if not fs.is_built(follower_id) or not is_follower(follower_id, followee_id):
        return 0
    if is_merged(_follower_count(followee_id) or 0):
        return 0
    return fs.merge(feed_key(follower_id), recent_items([followee_id], limit=BACKFILL_SIZE))


def remove_author(follower_id: int, author_id: int) -> int:
    """Drop the author's items from the follower's feed (after an unfollow or a block).

    Skipped while a follow exists again (unfollow and follow racing through the queue). The feed holds at
    most FEED_SIZE members, so finding the author's among them is two primary-key queries.
    """
    if is_follower(follower_id, author_id):
        return 0
    fs = store()
    ids: dict[str, list[int]] = {"activity": [], "post": []}
    for raw in fs.members(follower_id):
        kind, item_id = parse_member(raw)
        ids[kind].append(item_id)
    mine = [member("activity", i) for i in db.session.scalars(
        select(Activity.id).where(Activity.id.in_(ids["activity"]), Activity.user_id == author_id))]
    mine += [member("post", i) for i in db.session.scalars(
        select(Post.id).where(Post.id.in_(ids["post"]), Post.user_id == author_id))]
    fs.remove_from_feeds([follower_id], mine)
    return len(mine)


def rebuild_user_feed(user_id: int, *, clear: bool = True) -> int:
    """Rebuild one home feed from PostgreSQL: the user's own items and the shared items of the followees
    whose sets are not merged in at read time, newest FEED_SIZE.

    ``clear=False`` (the lazy rebuild on read) keeps what fan-outs wrote since the marker went missing.
    Returns the number of entries read from PostgreSQL.
    """
    fs = store()
    fs.begin_build(feed_key(user_id), built_key(user_id), clear=clear)
    entries = recent_items(followees(user_id, merged=False), own_id=user_id)
    return fs.merge(feed_key(user_id), entries)


def rebuild_author_set(author_id: int) -> int:
    """Rebuild an account's shared set from PostgreSQL (missing on first read, or after Redis loss)."""
    fs = store()
    fs.begin_build(author_key(author_id), author_built_key(author_id), clear=False)
    return fs.merge(author_key(author_id), recent_items([author_id]))


def ensure_built(user_id: int, merged_authors: list[int]) -> None:
    """Rebuild (keeping what is there) the user's feed and the merged authors' sets that are not built."""
    feed_built, authors_built = store().markers(user_id, merged_authors)
    if not feed_built:
        rebuild_user_feed(user_id, clear=False)
    for author_id, built in zip(merged_authors, authors_built, strict=True):
        if not built:
            rebuild_author_set(author_id)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown feed item kind {kind!r}")


# --- background work (sent after the commit of the change that needs it) ------------------------------------
# Each send never raises: reads re-check every item and rebuild missing feeds, so a lost message only leaves a
# feed behind until then.

def enqueue_follow(follower_id: int, followee_id: int) -> None:
    jobs.send(jobs.FEED_BACKFILL, follower_id, followee_id)


def enqueue_unfollow(follower_id: int, followee_id: int) -> None:
    jobs.send(jobs.FEED_REMOVE_AUTHOR, follower_id, followee_id)


def enqueue_item_changed(kind: str, item_id: int) -> None:
    _check_kind(kind)
    jobs.send(jobs.FEED_ITEM_CHANGED, kind, item_id)


def enqueue_item_removed(kind: str, item_id: int, author_id: int) -> None:
    _check_kind(kind)
    jobs.send(jobs.FEED_ITEM_REMOVED, kind, item_id, author_id)
