"""Segments: creation rules, starring, exploring, efforts and leaderboards as the viewer may see them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, delete, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert

from domain.algorithms import polylines
from domain.algorithms.privacy import hidden_mask
from domain.algorithms.segment_geometry import segment_stats, simplify_indices, validate_segment
from domain.algorithms.streams import decode_track
from domain.errors import Refusal, refuse
from domain.pagination import decode_cursor, encode_cursor
from domain.privacy.settings import hidden_points, privacy_seed, privacy_settings
from domain.segments import efforts as engine
from domain.segments import rematch
from domain.visibility import allows, blocked_ids_sql, get_athlete, get_own, get_visible, visible_sql
from models import Achievement, Activity, ActivityStream, Segment, SegmentEffort, SegmentStar, User, db
from models.db import rowcount
from models.segment import SEGMENT_BOX
from models.social import ACCEPTED

#: Vertices closer to the straight line than this are dropped before storing (GPS noise is larger).
STORE_TOLERANCE_M = 2.0


def _hidden_in_drawn_line(user: User, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """A drawn line has no start or end to hide; the creator's zones still apply."""
    zones, _ = privacy_settings(user)
    return hidden_mask(lat, lon, zones, hide_start_end_m=0.0, seed=privacy_seed(user.id, "points"))


def create(user: User, data: dict[str, Any]) -> Segment:
    activity = None
    if "activity_id" in data:
        activity = get_own(user, data["activity_id"])
        # A segment is public (its line, start and creator are shown to everyone), so it is made only from an
        # activity that anybody may already see: one kept to the athlete or their followers would be published.
        if not allows(activity.visibility, is_owner=False, blocked=False, follower=False,
                      owner_private=user.is_private):
            refuse(422, "Segments are public: make one from an activity visible to everyone, or draw it.",
                   errors={"json": {"activity_id": ["The activity is not visible to everyone."]}})
        stream = db.session.get(ActivityStream, activity.id)
        if stream is None or not activity.has_gps:
            refuse(422, "This activity has no GPS track to make a segment from.")
        track = decode_track(stream.data)
        start, end = data["start_index"], data["end_index"]
        if end >= len(track):
            refuse(422, f"end_index must be below {len(track)} (the activity's point count).",
                  errors={"json": {"end_index": ["Out of range."]}})
        hidden = hidden_points(activity, user, track)[start:end + 1]
        lat, lon, ele = track.lat[start:end + 1], track.lon[start:end + 1], track.ele[start:end + 1]
        ok = np.isfinite(lat) & np.isfinite(lon)
        lat, lon, ele, hidden = lat[ok], lon[ok], ele[ok], hidden[ok]
        sport = data.get("sport_type") or activity.sport_type
    else:
        pts = np.asarray([p[:2] for p in data["points"]], dtype=np.float64)
        lat, lon = pts[:, 0], pts[:, 1]
        ele = np.asarray([p[2] if len(p) > 2 else np.nan for p in data["points"]], dtype=np.float64)
        hidden = _hidden_in_drawn_line(user, lat, lon) if np.isfinite(pts).all() else np.zeros(len(lat), bool)
        sport = data["sport_type"]
    if hidden.any():
        refuse(422, "Part of this segment lies in one of your privacy zones or your hidden start/end; "
                           "choose a stretch outside them.")
    try:
        validate_segment(lat, lon)
    except ValueError as exc:
        refuse(422, str(exc))
    keep = simplify_indices(lat, lon, STORE_TOLERANCE_M)
    lat, lon, ele = lat[keep], lon[keep], ele[keep]
    stats = segment_stats(lat, lon, ele if np.isfinite(ele).sum() >= 2 else None)
    path = engine.encode_path(lat, lon)
    segment = Segment(
        creator_id=user.id, source_activity_id=activity.id if activity else None, name=data["name"],
        sport_type=sport, distance_m=stats.distance_m, elevation_gain_m=stats.elevation_gain_m,
        avg_grade_pct=stats.avg_grade_pct, max_grade_pct=stats.max_grade_pct, climb_category=stats.climb_category,
        min_lat=stats.bounds[0], min_lng=stats.bounds[1], max_lat=stats.bounds[2], max_lng=stats.bounds[3],
        start_lat=stats.start_latlng[0], start_lng=stats.start_latlng[1],
        end_lat=stats.end_latlng[0], end_lng=stats.end_latlng[1],
        polyline=polylines.encode(lat, lon), path=path, prepared=engine.pack_path(path),
        elevation=ele.astype("<f4").tobytes() if np.isfinite(ele).any() else None,
    )
    db.session.add(segment)
    db.session.commit()
    rematch.enqueue_rematch(segment.id)
    return segment


def get(segment_id: int) -> Segment:
    segment = db.session.get(Segment, segment_id)
    if segment is None:
        refuse(404, "Segment not found.")
    return segment


def serialize(viewer: User, segment: Segment, *, starred: bool | None = None) -> dict[str, Any]:
    if starred is None:
        starred = db.session.get(SegmentStar, (viewer.id, segment.id)) is not None
    pr = db.session.execute(
        select(SegmentEffort.id, SegmentEffort.elapsed_time_s, SegmentEffort.activity_id, SegmentEffort.start_time)
        .where(SegmentEffort.segment_id == segment.id, SegmentEffort.user_id == viewer.id)
        .order_by(SegmentEffort.elapsed_time_s, SegmentEffort.start_time).limit(1)).first()
    creator = db.session.get(User, segment.creator_id) if segment.creator_id else None
    effort_count, athlete_count = engine.public_counts(viewer.id, segment)
    return {
        **{c: getattr(segment, c) for c in (
            "id", "name", "sport_type", "distance_m", "elevation_gain_m", "avg_grade_pct", "max_grade_pct",
            "climb_category", "polyline", "star_count", "created_at")},
        "effort_count": effort_count, "athlete_count": athlete_count,
        "bounds": [segment.min_lat, segment.min_lng, segment.max_lat, segment.max_lng],
        "start_latlng": [segment.start_lat, segment.start_lng], "end_latlng": [segment.end_lat, segment.end_lng],
        "starred": starred,
        "athlete_pr": {"effort_id": pr.id, "elapsed_time_s": pr.elapsed_time_s, "activity_id": pr.activity_id,
                       "start_date": pr.start_time.isoformat()} if pr else None,
        "creator": {"id": creator.id, "display_name": creator.display_name} if creator else None,
    }


def star(viewer: User, segment_id: int, on: bool) -> Segment:
    segment = get(segment_id)
    if on:
        added = rowcount(db.session.execute(insert(SegmentStar).values(user_id=viewer.id, segment_id=segment.id)
                                            .on_conflict_do_nothing()))
    else:
        added = -rowcount(db.session.execute(delete(SegmentStar).where(
            SegmentStar.user_id == viewer.id, SegmentStar.segment_id == segment.id)))
    if added:
        db.session.execute(update(Segment).where(Segment.id == segment.id)
                           .values(star_count=Segment.star_count + added))
    db.session.commit()
    db.session.refresh(segment)
    return segment


def starred(viewer: User, cursor: str | None, limit: int) -> dict[str, Any]:
    query = select(Segment, SegmentStar.created_at).join(SegmentStar, SegmentStar.segment_id == Segment.id).where(
        SegmentStar.user_id == viewer.id)
    after = decode_cursor(cursor, 2)
    if after is not None:
        ts, last = datetime.fromisoformat(after[0]), int(after[1])
        query = query.where(or_(SegmentStar.created_at < ts, and_(SegmentStar.created_at == ts, Segment.id < last)))
    rows = db.session.execute(query.order_by(SegmentStar.created_at.desc(), Segment.id.desc()).limit(limit + 1)).all()
    next_cursor = encode_cursor(rows[limit - 1][1].isoformat(), rows[limit - 1][0].id) if len(rows) > limit else None
    return {"items": [serialize(viewer, s, starred=True) for s, _ in rows[:limit]], "next_cursor": next_cursor}


def explore(viewer: User, bounds: str, sport_type: str | None, limit: int) -> list[dict[str, Any]]:
    sw_lat, sw_lng, ne_lat, ne_lng = (float(v) for v in bounds.split(","))
    query = select(Segment).where(text(f"{SEGMENT_BOX} && box(point(:a, :b), point(:c, :d))").bindparams(
        a=sw_lng, b=sw_lat, c=ne_lng, d=ne_lat))
    if sport_type:
        query = query.where(Segment.sport_type.in_(engine.sport_families(sport_type)))
    rows = db.session.scalars(query.order_by(Segment.athlete_count.desc(), Segment.effort_count.desc(),
                                             Segment.id).limit(limit))
    return [serialize(viewer, s) for s in rows]


def _visible_index(activity: Activity, owner: User) -> np.ndarray | None:
    """Map from the owner's stream indices to the indices of the stream a non-owner gets (None: identity)."""
    zones, hide_m = privacy_settings(owner)
    if not zones and hide_m <= 0:
        return None
    stream = db.session.get(ActivityStream, activity.id)
    if stream is None:
        return None
    track = decode_track(stream.data)
    mask = hidden_points(activity, owner, track)
    return np.cumsum(~mask) - 1


def _effort_dict(e: SegmentEffort, seg: Segment, index_map: np.ndarray | None = None) -> dict[str, Any]:
    start, end = e.start_index, e.end_index
    if index_map is not None:
        start, end = int(index_map[start]), int(index_map[end])
    return {"id": e.id, "segment": {"id": seg.id, "name": seg.name, "distance_m": seg.distance_m,
                                    "climb_category": seg.climb_category},
            "activity_id": e.activity_id, "athlete_id": e.user_id, "start_date": e.start_time,
            "elapsed_time_s": e.elapsed_time_s, "moving_time_s": e.moving_time_s, "start_index": start,
            "end_index": end, "pr_rank": e.pr_rank, "kom_rank": e.kom_rank}


def activity_efforts(viewer: User, activity_id: int) -> list[dict[str, Any]]:
    activity, owner = get_visible(viewer, activity_id)
    query = (select(SegmentEffort, Segment).join(Segment, Segment.id == SegmentEffort.segment_id)
             .where(SegmentEffort.activity_id == activity.id).order_by(SegmentEffort.start_time))
    is_owner = viewer.id == owner.id
    if not is_owner:
        # An effort that starts or ends in a hidden part would reveal it (Strava's rule too).
        query = query.where(SegmentEffort.hidden_by_privacy.is_(False))
    rows = db.session.execute(query).all()
    index_map = None if is_owner or not rows else _visible_index(activity, owner)
    return [_effort_dict(e, s, index_map) for e, s in rows]


def effort(viewer: User, effort_id: int) -> dict[str, Any]:
    """One segment effort, if the viewer may see its activity (and, for a non-owner, if it touches no hidden part:
    the same rule as :func:`activity_efforts`), with indices into the stream that viewer gets."""
    e = db.session.get(SegmentEffort, effort_id)
    try:
        if e is None:
            raise Refusal(404, "Segment effort not found.")
        activity, owner = get_visible(viewer, e.activity_id)
    except Refusal:
        refuse(404, "Segment effort not found.")
    is_owner = viewer.id == owner.id
    if not is_owner and e.hidden_by_privacy:
        refuse(404, "Segment effort not found.")
    segment = get(e.segment_id)
    return _effort_dict(e, segment, None if is_owner else _visible_index(activity, owner))


def my_efforts(viewer: User, segment_id: int, cursor: str | None, limit: int) -> dict[str, Any]:
    segment = get(segment_id)
    query = select(SegmentEffort).where(SegmentEffort.segment_id == segment.id, SegmentEffort.user_id == viewer.id)
    after = decode_cursor(cursor, 2)
    if after is not None:
        ts, last = datetime.fromisoformat(after[0]), int(after[1])
        query = query.where(or_(SegmentEffort.start_time < ts,
                                and_(SegmentEffort.start_time == ts, SegmentEffort.id < last)))
    rows = list(db.session.scalars(query.order_by(SegmentEffort.start_time.desc(), SegmentEffort.id.desc())
                                   .limit(limit + 1)))
    next_cursor = (encode_cursor(rows[limit - 1].start_time.isoformat(), rows[limit - 1].id)
                   if len(rows) > limit else None)
    return {"items": [_effort_dict(e, segment) for e in rows[:limit]], "next_cursor": next_cursor}


#: What a leaderboard read needs from PostgreSQL before Redis, in one round trip: that the segment exists
#: (no row: 404) and (for the following filter) whom the viewer follows.
_LEADERBOARD_CONTEXT_SQL = text("""
    SELECT s.id, s.boards_stale_since IS NOT NULL AS stale,
           CASE WHEN :following THEN ARRAY(SELECT f.followee_id FROM follows f
                                           WHERE f.follower_id = :v AND f.status = :accepted) END AS followees
    FROM segments s WHERE s.id = :s""")


def leaderboard(viewer: User, segment_id: int, args: dict[str, Any]) -> dict[str, Any]:
    following = args["filter"] == "following"
    context = db.session.execute(_LEADERBOARD_CONTEXT_SQL, {
        "s": segment_id, "v": viewer.id, "following": following, "accepted": ACCEPTED}).first()
    if context is None:
        refuse(404, "Segment not found.")
    if context.stale:
        rematch.rebuild_if_stale(segment_id)
    engine.ensure_ready(segment_id)
    boards = engine.leaderboards()
    board = boards.board_key(segment_id, gender=args["gender"], age=args["age_group"], date_range=args["date_range"])
    limit = args["limit"]
    if following:
        ranked = boards.subset(board, [viewer.id, *context.followees])
        mine = next((e for e in ranked if e.user_id == viewer.id), None)
        if args["around_me"] and mine is not None:
            lo = max(0, mine.rank - 1 - limit // 2)
            page = ranked[lo:lo + limit]
        else:
            page = ranked[:limit]
        count = len(ranked)
    else:
        # Athletes in a block with the viewer are left off every page, so they don't count either.
        blocked = list(db.session.scalars(blocked_ids_sql(viewer.id)))
        count = boards.count(board) - len(boards.subset(board, blocked))
        my_rank = boards.rank_of(board, viewer.id)
        lo = max(0, my_rank - limit // 2) if args["around_me"] and my_rank is not None else 0
        page = boards.top(board, lo, lo + limit - 1)
        mine = boards.top(board, my_rank, my_rank)[0] if my_rank is not None else None
    rows = _shown_efforts(viewer, {e.effort_id for e in [*page, *([mine] if mine else [])]})
    entries = [_entry(e, rows[e.effort_id]) for e in page if e.effort_id in rows]
    my_entry = _entry(mine, rows[mine.effort_id]) if mine and mine.effort_id in rows else None
    return {"entries": entries, "entry_count": count, "my_entry": my_entry}


def _shown_efforts(viewer: User, effort_ids: set[int]) -> dict[int, Any]:
    """The board efforts among these that PostgreSQL says this viewer may see now, by id.

    Boards are a Redis cache that jobs correct after a change; until they have run (or if one was lost), a
    page could show an effort of an activity made ``only_me``, an account made private, an athlete who left
    the boards, or someone across a block. So every page is checked against the truth at read time: the
    board's own eligibility and the shared visibility rule for this viewer.
    """
    if not effort_ids:
        return {}
    query = (engine.board_efforts_query().add_columns(SegmentEffort.activity_id, User.display_name)
             .where(SegmentEffort.id.in_(effort_ids), engine.on_boards_sql(),
                    visible_sql(viewer.id, Activity.user_id, Activity.visibility, User.is_private)))
    return {r.id: r for r in db.session.execute(query)}


def _entry(e: Any, row: Any) -> dict[str, Any]:
    return {"rank": e.rank, "athlete": {"id": e.user_id, "display_name": row.display_name},
            "elapsed_time_s": e.elapsed_time_s, "effort_id": e.effort_id, "activity_id": row.activity_id,
            "start_date": row.start_time}


def achievements_for(viewer: User, user_id: int, cursor: str | None, limit: int) -> dict[str, Any]:
    """The athlete's achievements on activities the viewer may see, newest first. Others never get one on an
    effort hidden by the owner's privacy zones or hidden start: with its segment it would place them."""
    owner = get_athlete(viewer, user_id)
    query = select(Achievement).where(Achievement.user_id == owner.id)
    if owner.id != viewer.id:
        query = (query.outerjoin(Activity, Activity.id == Achievement.activity_id)
                 .outerjoin(SegmentEffort, SegmentEffort.id == Achievement.effort_id)
                 .where(or_(Activity.id.is_(None),
                            visible_sql(viewer.id, Activity.user_id, Activity.visibility, owner.is_private)),
                        or_(SegmentEffort.id.is_(None), SegmentEffort.hidden_by_privacy.is_(False))))
    after = decode_cursor(cursor, 1)
    if after is not None:
        query = query.where(Achievement.id < int(after[0]))
    rows = list(db.session.scalars(query.order_by(Achievement.id.desc()).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return {"items": rows[:limit], "next_cursor": next_cursor}


def activity_achievements(activity_id: int, include_hidden: bool) -> list[dict[str, Any]]:
    query = select(Achievement).where(Achievement.activity_id == activity_id).order_by(Achievement.id)
    if not include_hidden:
        query = query.outerjoin(SegmentEffort, SegmentEffort.id == Achievement.effort_id).where(
            or_(SegmentEffort.id.is_(None), SegmentEffort.hidden_by_privacy.is_(False)))
    return [{"id": a.id, "kind": a.kind, "rank": a.rank, "value": a.value, "effort_id": a.effort_id,
             "segment_id": a.segment_id, "details": a.details} for a in db.session.scalars(query)]
