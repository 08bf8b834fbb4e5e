"""Background work on segments: re-matching a new segment against existing activities, and rebuilding
leaderboards after edits (visibility, deletion, privacy or preference changes)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from celery import shared_task
from sqlalchemy import select, text

from models import Activity, ActivityStream, Segment, User, db
from tasks import segments as engine
from tasks.app import AppTask
from tasks.lib.matching import match_many_prepared, prepare_track
from tasks.lib.streams import decode_track

log = logging.getLogger(__name__)
REMATCH_BATCH = 200


@shared_task(name="segments.rematch", base=AppTask, acks_late=True, ignore_result=True)
def rematch(segment_id: int) -> int:
    """Fan a new segment out over the activities whose bounds overlap it, in batches."""
    segment = db.session.get(Segment, segment_id)
    if segment is None:
        return 0
    ids = list(db.session.scalars(
        select(Activity.id).where(
            text("min_lat IS NOT NULL"),
            text("box(point(min_lng, min_lat), point(max_lng, max_lat)) && "
                 "box(point(:a, :b), point(:c, :d))").bindparams(
                a=segment.min_lng, b=segment.min_lat, c=segment.max_lng, d=segment.max_lat),
            Activity.sport_type.in_(engine.sport_families(segment.sport_type)),
        ).order_by(Activity.id)))
    for i in range(0, len(ids), REMATCH_BATCH):
        rematch_batch.delay(segment_id, ids[i:i + REMATCH_BATCH])
    if not ids:
        engine.rebuild_segment(segment_id)
    return len(ids)


@shared_task(name="segments.rematch_batch", base=AppTask, acks_late=True, ignore_result=True,
             autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def rematch_batch(segment_id: int, activity_ids: list[int]) -> int:
    """Match one segment against a batch of activities; idempotent (efforts are unique per start).
    Each batch rebuilds the boards when done, so they are right whichever batch finishes last."""
    return rematch_activities(segment_id, activity_ids, rebuild=True)


def rematch_activities(segment_id: int, activity_ids: Iterable[int], *, rebuild: bool) -> int:
    segment = db.session.get(Segment, segment_id)
    if segment is None:
        return 0
    prepared = engine.prepared_segment(segment.id, segment.updated_at, segment.path)
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


@shared_task(name="segments.rebuild_boards", base=AppTask, acks_late=True, ignore_result=True)
def rebuild_boards(segment_ids: list[int]) -> int:
    for segment_id in segment_ids:
        engine.rebuild_segment(segment_id)
    return len(segment_ids)


@shared_task(name="segments.rebuild_all", base=AppTask, acks_late=True, ignore_result=True)
def rebuild_all() -> int:
    return rebuild_every_board()


def rebuild_every_board(batch: int = 500) -> int:
    """Rebuild all boards from PostgreSQL (after Redis lost its data, or on an operator's request)."""
    ids = list(db.session.scalars(select(Segment.id).order_by(Segment.id)))
    for segment_id in ids:
        engine.rebuild_segment(segment_id)
    return len(ids)


def enqueue_rematch(segment_id: int) -> None:
    try:
        rematch.delay(segment_id)
    except Exception:
        log.warning("could not enqueue re-matching of segment %s", segment_id, exc_info=True)


def enqueue_rebuild(segment_ids: Iterable[int]) -> None:
    ids = sorted(set(segment_ids))
    if not ids:
        return
    try:
        rebuild_boards.delay(ids)
    except Exception:  # boards self-heal on read only when missing, so log loudly
        log.error("could not enqueue a leaderboard rebuild for segments %s", ids, exc_info=True)

