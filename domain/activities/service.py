"""Activity reads and writes, with visibility and privacy enforced on every path.

Who sees what: the owner sees everything. Anyone else needs the activity's visibility to allow them
(``everyone``; ``followers`` and any activity of a private account need an accepted follow; ``only_me``
nobody), no block between them, and then gets the privacy-filtered geometry only. Everyone else gets 404,
never 403, so hidden activities can't be probed for.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import and_, exists, or_, select

from domain import board_rebuilds, gear
from domain.activities import removal
from domain.activities.ingest import default_name
from domain.algorithms.metrics import derived_streams, resample_indices
from domain.algorithms.privacy import apply_privacy
from domain.algorithms.streams import decode_track
from domain.algorithms.timezones import local_start, resolve_timezone
from domain.algorithms.track import Track
from domain.errors import refuse
from domain.feed import fanout as feed
from domain.insights import loads
from domain.pagination import decode_cursor, encode_cursor
from domain.privacy.public_view import current_public, shown_totals
from domain.privacy.settings import hidden_points
from domain.segments.efforts import segments_touched_by
from domain.segments.service import activity_achievements
from domain.visibility import get_athlete, get_own, get_visible, seen_counts, unseen_counts, visible_sql
from models import Activity, ActivityStream, Kudos, Upload, User, db
from models.storage import storage


def _latlng(lat: float | None, lng: float | None) -> list[float] | None:
    return [lat, lng] if lat is not None and lng is not None else None


def serialize(viewer: User, activity: Activity, owner: User, *, kudoed: bool | None = None,
              unseen: dict[int, tuple[int, int]] | None = None, summary: bool = False) -> dict[str, Any]:
    """The activity as ``viewer`` may see it; ``kudoed`` and ``unseen`` (:func:`unseen_counts`) spare the
    queries when a list already knows them. ``summary``: for a list, without the achievements (a query each)."""
    is_owner = viewer.id == owner.id
    details = activity.details or {}
    out: dict[str, Any] = {
        c: getattr(activity, c) for c in (
            "id", "name", "description", "sport_type", "visibility", "manual", "device", "distance_m",
            "elapsed_time_s", "moving_time_s", "elevation_gain_m", "elevation_loss_m", "avg_speed_mps",
            "max_speed_mps", "avg_hr", "max_hr", "avg_cadence", "avg_power", "max_power", "avg_temp",
            "perceived_exertion", "has_gps", "external_id", "timezone", "start_date_local", "trainer", "commute",
            "created_at", "updated_at")
    }
    out.update(seen_counts(viewer.id, "activity", activity, unseen))
    if kudoed is None:
        kudoed = bool(db.session.scalar(
            select(exists().where(Kudos.activity_id == activity.id, Kudos.user_id == viewer.id))))
    out["has_kudoed"] = kudoed
    out["athlete"] = {"id": owner.id, "display_name": owner.display_name, "avatar_url": owner.avatar_url}
    out["start_date"] = activity.start_time
    local = activity.start_date_local
    out["start_date_local"] = local.isoformat(timespec="seconds") if local is not None else None
    out["notes"] = activity.notes if is_owner else None
    out["upload_id"] = activity.upload_id if is_owner else None
    out["gear_id"] = activity.gear_id if is_owner else None
    for key in ("splits_metric", "splits_standard", "laps", "best_efforts"):
        out[key] = details.get(key) or []
    out["achievements"] = [] if summary else activity_achievements(activity.id, include_hidden=is_owner)
    # Training load and heart-rate zones are the athlete's own (derived from heart rate: health data); lists
    # leave them out (a query each).
    load = loads.load_of(activity.id) if is_owner and not summary else None
    out["training_load"] = load.load if load else None
    out["load_method"] = load.method if load else None
    out["trimp"] = load.trimp if load else None
    out["hr_zones"] = load.hr_zones if load else None
    out["energy_kcal"] = load.energy_kcal if load else None
    if is_owner:
        out["start_latlng"] = _latlng(activity.start_lat, activity.start_lng)
        out["end_latlng"] = _latlng(activity.end_lat, activity.end_lng)
        out["bounds"] = ([activity.min_lat, activity.min_lng, activity.max_lat, activity.max_lng]
                         if activity.min_lat is not None else None)
        out["map"] = ({"polyline": activity.polyline, "summary_polyline": activity.summary_polyline,
                       "polylines": [activity.polyline]} if activity.polyline else None)
    else:
        public = current_public(activity, owner) or {}
        out["start_latlng"] = public.get("start_latlng")
        out["end_latlng"] = public.get("end_latlng")
        out["bounds"] = public.get("bounds")
        out["map"] = public.get("map")
        hidden_part = shown_totals(public)
        if hidden_part:
            # Whole-track figures, splits, laps and best-effort indices would measure the hidden start and end:
            # others get the visible stretch's figures, and no per-kilometre breakdown of the whole.
            out.update(hidden_part)
            for key in ("splits_metric", "splits_standard", "laps", "best_efforts"):
                out[key] = []
    return out


#: Edits that change an activity's training load (its time, duration, sport or perceived exertion).
LOAD_FIELDS = frozenset({"start_time", "elapsed_time_s", "moving_time_s", "sport_type", "perceived_exertion",
                         "avg_hr"})


def update(viewer: User, activity_id: int, changes: dict[str, Any]) -> Activity:
    activity = get_own(viewer, activity_id)
    if "gear_id" in changes:
        changes["gear_id"] = gear.check_choice(viewer, changes["gear_id"])
    visibility_changed = changes.get("visibility", activity.visibility) != activity.visibility
    for key, value in changes.items():
        setattr(activity, key, value)
    if LOAD_FIELDS & set(changes):
        loads.activity_stored(activity, viewer.preferences.timezone)
    if visibility_changed:  # boards show only efforts of `everyone` activities; feeds follow visibility too
        board_rebuilds.rebuild_later(segments_touched_by(activity.id))
    db.session.commit()
    if visibility_changed:
        feed.enqueue_item_changed("activity", activity.id)
    return activity


def delete_activity(viewer: User, activity_id: int) -> None:
    """Remove the activity, its streams, and the uploads (and stored files) it came from."""
    activity = get_own(viewer, activity_id)
    removed = removal.remove(activity, viewer.preferences.timezone)
    db.session.commit()
    removal.after_commit(removed)


def create_manual(viewer: User, data: dict[str, Any]) -> Activity:
    start: datetime = data["start_date"].astimezone(UTC)
    if start > datetime.now(UTC) + timedelta(days=1):
        refuse(422, "The start date is in the future.", errors={"json": {"start_date": ["In the future."]}})
    elapsed = float(data["elapsed_time_s"])
    distance = float(data.get("distance_m") or 0.0)
    tz_name = resolve_timezone(None, None, viewer.preferences.timezone)  # no position: the profile's zone
    activity = Activity(
        user_id=viewer.id, manual=True, sport_type=data["sport_type"], start_time=start,
        timezone=tz_name, start_date_local=local_start(start, tz_name),
        name=data.get("name") or default_name(data["sport_type"], start, tz_name),
        description=data.get("description") or "",
        visibility=data.get("visibility") or viewer.preferences.default_visibility,
        distance_m=distance, elapsed_time_s=elapsed, moving_time_s=elapsed,
        avg_speed_mps=distance / elapsed if distance else None,
        elevation_gain_m=data.get("elevation_gain_m"), avg_hr=data.get("avg_hr"),
        perceived_exertion=data.get("perceived_exertion"), notes=data.get("notes"),
        details={}, has_gps=False, point_count=0, privacy_version=viewer.privacy_version,
        gear_id=(gear.check_choice(viewer, data["gear_id"]) if data.get("gear_id") is not None
                 else gear.default_for(viewer.id, data["sport_type"])),
    )
    db.session.add(activity)
    db.session.flush()
    loads.activity_stored(activity, viewer.preferences.timezone)
    db.session.commit()
    return activity


def list_for_user(viewer: User, user_id: int, args: dict[str, Any]) -> dict[str, Any]:
    owner = get_athlete(viewer, user_id)
    query = select(Activity).where(Activity.user_id == owner.id,
                                   visible_sql(viewer.id, Activity.user_id, Activity.visibility, owner.is_private))
    if args.get("sport_type"):
        query = query.where(Activity.sport_type == args["sport_type"])
    if args.get("after"):
        query = query.where(Activity.start_time > args["after"])
    if args.get("before"):
        query = query.where(Activity.start_time < args["before"])
    after = decode_cursor(args.get("cursor"), 2)
    if after is not None:
        ts, last_id = datetime.fromisoformat(after[0]), int(after[1])
        query = query.where(or_(Activity.start_time < ts, and_(Activity.start_time == ts, Activity.id < last_id)))
    limit = args["limit"]
    rows = list(db.session.scalars(query.order_by(Activity.start_time.desc(), Activity.id.desc()).limit(limit + 1)))
    next_cursor = (encode_cursor(rows[limit - 1].start_time.isoformat(), rows[limit - 1].id)
                   if len(rows) > limit else None)
    return {"items": _serialize_page(viewer, owner, rows[:limit]), "next_cursor": next_cursor}


def _serialize_page(viewer: User, owner: User, page: list[Activity], *, summary: bool = True,
                    ) -> list[dict[str, Any]]:
    kudoed = set(db.session.scalars(select(Kudos.activity_id).where(
        Kudos.user_id == viewer.id, Kudos.activity_id.in_([a.id for a in page])))) if page else set()
    unseen = unseen_counts(viewer.id, "activity", [a.id for a in page])
    return [serialize(viewer, a, owner, kudoed=a.id in kudoed, unseen=unseen, summary=summary) for a in page]


def numbered_page(viewer: User, user_id: int, *, after: datetime | None, before: datetime | None, page: int,
                  per_page: int) -> list[dict[str, Any]]:
    """Page ``page`` (from 1) of the athlete's activities visible to the viewer, as numbered pages (Strava's API
    pages this way). Newest first; oldest first when only ``after`` is given, as Strava does, so that a client
    syncing "everything after my last sync" walks forward."""
    owner = get_athlete(viewer, user_id)
    query = select(Activity).where(Activity.user_id == owner.id,
                                   visible_sql(viewer.id, Activity.user_id, Activity.visibility, owner.is_private))
    if after is not None:
        query = query.where(Activity.start_time > after)
    if before is not None:
        query = query.where(Activity.start_time < before)
    order = ((Activity.start_time.asc(), Activity.id.asc()) if after is not None and before is None
             else (Activity.start_time.desc(), Activity.id.desc()))
    rows = list(db.session.scalars(query.order_by(*order).offset((page - 1) * per_page).limit(per_page)))
    return _serialize_page(viewer, owner, rows, summary=False)


def _clean(values: np.ndarray, digits: int) -> list[float | None]:
    return [None if math.isnan(v) else round(v, digits) for v in values.tolist()]


def visible_track(viewer: User, activity: Activity, owner: User, track: Track) -> Track:
    """The points this viewer may see: all for the owner, the privacy-filtered ones for anyone else."""
    if viewer.id == owner.id:
        return track
    return public_track(activity, owner, track)


def public_track(activity: Activity, owner: User, track: Track) -> Track:
    """The points anyone but the owner may see (a stranger, a follower, a public share page)."""
    if not track.has_gps:
        return track
    return apply_privacy(track, hidden_points(activity, owner, track))


def streams(viewer: User, activity_id: int, keys: list[str], resolution: str) -> dict[str, Any]:
    activity, owner = get_visible(viewer, activity_id)
    stream = db.session.get(ActivityStream, activity.id)
    if stream is None:
        return {}
    track = visible_track(viewer, activity, owner, decode_track(stream.data))
    n = len(track)
    if n == 0:
        return {}
    idx = resample_indices(n, resolution)
    derived = derived_streams(track, activity.sport_type) if {
        "distance", "velocity_smooth", "grade_smooth", "moving"} & set(keys) else {}
    # Times (and distances) start at 0 at the first point the viewer sees: a non-owner can't tell how long
    # the hidden start was.
    columns: dict[str, Any] = {
        "time": lambda: _clean(track.time[idx] - track.time[0], 1),
        "latlng": lambda: [[round(a, 6), round(b, 6)] if not (math.isnan(a) or math.isnan(b)) else None
                           for a, b in zip(track.lat[idx].tolist(), track.lon[idx].tolist(), strict=True)],
        "distance": lambda: _clean(derived["distance"][idx] - derived["distance"][0], 1),
        "altitude": lambda: _clean(track.ele[idx], 1),
        "heartrate": lambda: _clean(track.hr[idx], 0),
        "cadence": lambda: _clean(track.cadence[idx], 0),
        "watts": lambda: _clean(track.power[idx], 0),
        "temp": lambda: _clean(track.temp[idx], 1),
        "velocity_smooth": lambda: _clean(derived["velocity_smooth"][idx], 2),
        "grade_smooth": lambda: _clean(derived["grade_smooth"][idx], 1),
        "moving": lambda: [bool(v) for v in derived["moving"][idx].tolist()],
    }
    out = {}
    for key in keys:
        data = columns[key]()
        if key in ("time", "latlng", "distance", "moving") or any(v is not None for v in data):
            out[key] = {"data": data, "original_size": n, "resolution": resolution, "series_type": "time"}
    return out


def original_file(viewer: User, activity_id: int) -> tuple[bytes, str]:
    activity = get_own(viewer, activity_id)
    upload = db.session.get(Upload, activity.upload_id) if activity.upload_id else None
    if upload is None or not upload.storage_key:
        refuse(404, "This activity has no original file (it was entered manually).")
    try:
        data = storage.get(upload.storage_key)
    except KeyError:
        refuse(404, "The original file is no longer stored.")
    name = upload.filename or f"activity-{activity.id}.{upload.data_type}"
    return data, name
