"""Segments meeting activities after the fact: a new segment matched against the activities already in its
bounds, and leaderboards rebuilt from PostgreSQL after something changed (visibility, deletion, privacy or
preferences) or after Redis lost them."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select, text, update

from domain import jobs
from domain.algorithms.matching import match_many_prepared, prepare_track
from domain.algorithms.streams import decode_track
from domain.segments import efforts as engine
from models import Activity, ActivityStream, Segment, User, db
from models.redis_store import redis_store

REMATCH_BATCH = 200


def activities_in_bounds(segment_id: int) -> list[int]:
    """Ids of the activities of the segment's sport family whose bounds overlap the segment's."""
    segment = db.session.get(Segment, segment_id)
    if segment is None:
        return []
    return list(db.session.scalars(
        select(Activity.id).where(
            text("min_lat IS NOT NULL"),
            text("box(point(min_lng, min_lat), point(max_lng, max_lat)) && "
                 "box(point(:a, :b), point(:c, :d))").bindparams(
                a=segment.min_lng, b=segment.min_lat, c=segment.max_lng, d=segment.max_lat),
            Activity.sport_type.in_(engine.sport_families(segment.sport_type)),
        ).order_by(Activity.id)))


def fan_out_rematch(segment_id: int) -> int:
    """Send the re-matching of a new segment in batches (each rebuilds the boards when done, so they are right
    whichever batch finishes last); returns how many activities are to be matched."""
    ids = activities_in_bounds(segment_id)
    for i in range(0, len(ids), REMATCH_BATCH):
        jobs.send(jobs.SEGMENT_REMATCH_BATCH, segment_id, ids[i:i + REMATCH_BATCH])
    if not ids and db.session.get(Segment, segment_id) is not None:
        engine.rebuild_segment(segment_id)
    return len(ids)


def rematch_activities(segment_id: int, activity_ids: Iterable[int], *, rebuild: bool) -> int:
    """Match one segment against these activities and store what is found; idempotent (efforts are unique per
    start). Returns how many efforts were created."""
    segment = db.session.get(Segment, segment_id)
    if segment is None:
        return 0
    prepared = engine.prepared_segment(segment.id, engine.version_of(segment.updated_at), segment.path)
    ids = list(activity_ids)
    # The batch's activities, streams and owners in three queries rather than three per activity.
    activities = {a.id: a for a in db.session.scalars(select(Activity).where(Activity.id.in_(ids)))}
    streams = {s.activity_id: s for s in db.session.scalars(
        select(ActivityStream).where(ActivityStream.activity_id.in_(ids)))}
    owners = {u.id: u for u in db.session.scalars(
        select(User).where(User.id.in_({a.user_id for a in activities.values()})))}
    matched = []
    for activity_id in ids:
        activity, stream = activities.get(activity_id), streams.get(activity_id)
        if activity is None or stream is None:
            continue
        owner = owners.get(activity.user_id)
        assert owner is not None
        track = decode_track(stream.data)
        found = match_many_prepared(prepare_track(track.time, track.lat, track.lon), [prepared])
        if found:  # nothing to store otherwise
            matched.append((activity, owner, track, found))
    # One insert and one refresh for the whole batch: the same rows as storing activity by activity.
    created = len(engine.store_efforts_many(matched))
    db.session.commit()
    if rebuild:
        engine.rebuild_segment(segment_id)
    return created


def rebuild_boards(segment_ids: Iterable[int]) -> int:
    """Rebuild these segments' boards from PostgreSQL and clear their stale marks (a mark set again while the
    rebuild ran stays, so that change is rebuilt too)."""
    ids = list(segment_ids)
    for segment_id in ids:
        started = db.session.scalar(select(func.clock_timestamp()))
        engine.sync_on_boards(segment_id)
        engine.rebuild_segment(segment_id)
        db.session.execute(update(Segment).where(Segment.id == segment_id, Segment.boards_stale_since <= started)
                           .values(boards_stale_since=None))
        db.session.commit()
    return len(ids)


def rebuild_if_stale(segment_id: int) -> None:
    """Rebuild a segment's boards now when a change marked them stale and its rebuild has not run yet: a board
    read then counts (``entry_count``) and ranks from the truth, not from what the change took away."""
    lock = redis_store.client.lock(f"lock:lb-rebuild:{segment_id}", timeout=60, blocking_timeout=30)
    with lock:
        if db.session.scalar(select(Segment.boards_stale_since).where(Segment.id == segment_id)) is not None:
            rebuild_boards([segment_id])


def rebuild_every_board() -> int:
    """Rebuild all boards from PostgreSQL (after Redis lost its data, or on an operator's request)."""
    return rebuild_boards(db.session.scalars(select(Segment.id).order_by(Segment.id)))


def enqueue_rematch(segment_id: int) -> None:
    jobs.send(jobs.SEGMENT_REMATCH, segment_id)
