"""Segments: creation rules, starring, exploring, efforts and leaderboards as the viewer may see them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert

from domain.algorithms import polylines
from domain.algorithms.privacy import hidden_mask
from domain.algorithms.segment_geometry import segment_stats, simplify_indices, validate_segment
from domain.algorithms.streams import decode_track
from domain.errors import refuse
from domain.pagination import decode_cursor, encode_cursor
from domain.privacy.settings import hidden_points, privacy_seed, privacy_settings
from domain.segments import efforts as engine
from domain.segments import rematch
from domain.visibility import can_view, get_own, get_visible
from models import Achievement, Activity, ActivityStream, Segment, SegmentEffort, SegmentStar, User, db, social
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
    segment = Segment(
        creator_id=user.id, source_activity_id=activity.id if activity else None, name=data["name"],
        sport_type=sport, distance_m=stats.distance_m, elevation_gain_m=stats.elevation_gain_m,
        avg_grade_pct=stats.avg_grade_pct, max_grade_pct=stats.max_grade_pct, climb_category=stats.climb_category,
        min_lat=stats.bounds[0], min_lng=stats.bounds[1], max_lat=stats.bounds[2], max_lng=stats.bounds[3],
        start_lat=stats.start_latlng[0], start_lng=stats.start_latlng[1],
        end_lat=stats.end_latlng[0], end_lng=stats.end_latlng[1],
        polyline=polylines.encode(lat, lon), path=engine.encode_path(lat, lon),
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
    return {
        **{c: getattr(segment, c) for c in (
            "id", "name", "sport_type", "distance_m", "elevation_gain_m", "avg_grade_pct", "max_grade_pct",
            "climb_category", "polyline", "effort_count", "athlete_count", "star_count", "created_at")},
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
        added = db.session.execute(insert(SegmentStar).values(user_id=viewer.id, segment_id=segment.id)
                                   .on_conflict_do_nothing()).rowcount
    else:
        added = -db.session.execute(delete(SegmentStar).where(
            SegmentStar.user_id == viewer.id, SegmentStar.segment_id == segment.id)).rowcount
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
#: (no row: 404), the athletes blocked either way, and (for the following filter) whom the viewer follows.
_LEADERBOARD_CONTEXT_SQL = text("""
    SELECT s.id,
           ARRAY(SELECT CASE WHEN b.blocker_id = :v THEN b.blocked_id ELSE b.blocker_id END
                 FROM blocks b WHERE b.blocker_id = :v OR b.blocked_id = :v) AS blocked,
           CASE WHEN :following THEN ARRAY(SELECT f.followee_id FROM follows f
                                           WHERE f.follower_id = :v AND f.status = :accepted) END AS followees
    FROM segments s WHERE s.id = :s""")


def leaderboard(viewer: User, segment_id: int, args: dict[str, Any]) -> dict[str, Any]:
    following = args["filter"] == "following"
    context = db.session.execute(_LEADERBOARD_CONTEXT_SQL, {
        "s": segment_id, "v": viewer.id, "following": following, "accepted": ACCEPTED}).first()
    if context is None:
        refuse(404, "Segment not found.")
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
        count = boards.count(board)
        my_rank = boards.rank_of(board, viewer.id)
        lo = max(0, my_rank - limit // 2) if args["around_me"] and my_rank is not None else 0
        page = boards.top(board, lo, lo + limit - 1)
        mine = boards.top(board, my_rank, my_rank)[0] if my_rank is not None else None
    blocked = set(context.blocked)
    entries = _enrich([e for e in page if e.user_id not in blocked] + ([mine] if mine else []))
    my_entry = entries.pop() if mine else None
    return {"entries": entries, "entry_count": count, "my_entry": my_entry}


def _enrich(entries: list[Any]) -> list[dict[str, Any]]:
    ids = {e.effort_id for e in entries}
    rows = {r.id: r for r in db.session.execute(
        select(SegmentEffort.id, SegmentEffort.activity_id, SegmentEffort.start_time, User.id.label("uid"),
               User.display_name).join(User, User.id == SegmentEffort.user_id)
        .where(SegmentEffort.id.in_(ids)))} if ids else {}
    out = []
    for e in entries:
        row = rows.get(e.effort_id)
        out.append({"rank": e.rank, "athlete": {"id": e.user_id, "display_name": row.display_name if row else None},
                    "elapsed_time_s": e.elapsed_time_s, "effort_id": e.effort_id,
                    "activity_id": row.activity_id if row else None, "start_date": row.start_time if row else None})
    return out


def achievements_for(viewer: User, user_id: int, cursor: str | None, limit: int) -> dict[str, Any]:
    owner = db.session.get(User, user_id)
    if owner is None or (owner.id != viewer.id and _blocked(viewer, owner)):
        refuse(404, "Athlete not found.")
    query = select(Achievement, Activity).outerjoin(Activity, Activity.id == Achievement.activity_id).where(
        Achievement.user_id == owner.id)
    after = decode_cursor(cursor, 1)
    if after is not None:
        query = query.where(Achievement.id < int(after[0]))
    out: list[Achievement] = []
    last_id = None
    # Filter visibility in Python: an athlete has few achievements per page and the rule is the shared one.
    for ach, activity in db.session.execute(query.order_by(Achievement.id.desc()).limit(limit * 4 + 1)):
        last_id = ach.id
        if activity is None or can_view(viewer, activity, owner):
            out.append(ach)
        if len(out) == limit:
            break
    more = db.session.scalar(select(func.count()).where(
        Achievement.user_id == owner.id, Achievement.id < (last_id or 0))) if last_id else 0
    return {"items": out, "next_cursor": encode_cursor(last_id) if more else None}


def _blocked(viewer: User, owner: User) -> bool:
    return social.is_blocked_either_way(viewer.id, owner.id)


def activity_achievements(activity_id: int, include_hidden: bool) -> list[dict[str, Any]]:
    query = select(Achievement).where(Achievement.activity_id == activity_id).order_by(Achievement.id)
    if not include_hidden:
        query = query.outerjoin(SegmentEffort, SegmentEffort.id == Achievement.effort_id).where(
            or_(SegmentEffort.id.is_(None), SegmentEffort.hidden_by_privacy.is_(False)))
    return [{"id": a.id, "kind": a.kind, "rank": a.rank, "value": a.value, "effort_id": a.effort_id,
             "segment_id": a.segment_id, "details": a.details} for a in db.session.scalars(query)]
