"""The ingest stage's I/O around the pure pipeline: load the file, summarize, store — idempotently."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from domain import gear, jobs
from domain.activities import removal, same_workout
from domain.algorithms.metrics import rounded_figures
from domain.algorithms.parsing import normalize, parse_bytes, parse_health_workout, parse_health_workouts
from domain.algorithms.summary import ActivitySummary, summarize
from domain.algorithms.timezones import local_start, resolve_timezone
from domain.algorithms.track import ParseError, Track
from domain.insights import loads
from domain.privacy.settings import privacy_seed, privacy_settings
from domain.uploads import lifecycle
from models import Activity, ActivityStream, Upload, User, db
from models.activity import SPORTS
from models.db import returned_row, returning, table_of
from models.storage import storage

log = logging.getLogger(__name__)


def guess_sport(track: Track, avg_speed_mps: float | None) -> str:
    """When neither the file nor the athlete names the sport: a ride is fast, a walk is slow."""
    if track.sport:
        return track.sport
    if avg_speed_mps is None:
        return "other"
    if avg_speed_mps >= 5.5:
        return "cycling"
    return "running" if avg_speed_mps >= 1.9 else "walking"


def default_name(sport: str, start: datetime, tz_name: str) -> str:
    """"Morning Run", "Evening Ride"… by the wall-clock time where the activity started (``tz_name``)."""
    try:
        hour = start.astimezone(ZoneInfo(tz_name)).hour
    except Exception:
        hour = start.hour
    part = ("Night" if hour < 5 else "Morning" if hour < 12 else "Lunch" if hour < 14
            else "Afternoon" if hour < 18 else "Evening" if hour < 22 else "Night")
    noun = "Workout" if sport == "strength" else SPORTS.get(sport, ("other", "Activity"))[1]
    return f"{part} {noun}"


def activity_values(upload: Upload, user: User, track: Track, summary: ActivitySummary,
                    privacy_version: int) -> dict[str, Any]:
    m = summary.metrics
    reported = getattr(track, "totals", None) or {}
    distance, moving = m.distance_m, m.moving_time_s
    # A file that says how far it went (an Apple Health workout, a trainer's session) is believed where the
    # track itself can't tell: indoors, or a route of a couple of points.
    if reported.get("distance_m", 0) > 0 and distance < 0.5 * reported["distance_m"]:
        distance = float(reported["distance_m"])
    if moving <= 0 and reported.get("duration_s", 0) > 0:
        moving = min(float(reported["duration_s"]), m.elapsed_time_s or float(reported["duration_s"]))
    avg_speed = distance / moving if moving > 0 and distance > 0 else m.avg_speed_mps
    sport = upload.sport_type or guess_sport(track, avg_speed)
    start = datetime.fromtimestamp(float(track.time[0]), UTC)
    lat, lng = m.start_latlng if m.start_latlng else (None, None)
    tz_name = resolve_timezone(lat, lng, user.preferences.timezone)
    details = m.as_dict()
    owner_map = summary.owner_map
    return rounded_figures({
        "user_id": user.id, "upload_id": upload.id, "source_sha256": upload.sha256,
        "external_id": upload.external_id,
        "name": (upload.name or track.name or default_name(sport, start, tz_name))[:255],
        "description": upload.description or "", "sport_type": sport,
        "gear_id": gear.default_for(user.id, sport),  # the athlete's default gear for the sport, if any
        "visibility": upload.visibility or user.preferences.default_visibility,
        "start_time": start, "timezone": tz_name, "start_date_local": local_start(start, tz_name),
        "trainer": bool(upload.trainer), "commute": bool(upload.commute),
        "device": (track.device or None) and track.device[:255],
        "distance_m": distance, "elapsed_time_s": m.elapsed_time_s, "moving_time_s": moving,
        "elevation_gain_m": m.elevation_gain_m, "elevation_loss_m": m.elevation_loss_m,
        "avg_speed_mps": avg_speed, "max_speed_mps": m.max_speed_mps, "avg_hr": m.avg_hr,
        "max_hr": m.max_hr, "avg_cadence": m.avg_cadence, "avg_power": m.avg_power, "max_power": m.max_power,
        "avg_temp": m.avg_temp,
        "details": {**{k: details.get(k) for k in ("splits_metric", "splits_standard", "laps", "best_efforts",
                                                     "elev_high_m", "elev_low_m")},
                    # The device's own energy figure, which energy estimates prefer (domain.health.meals).
                    "energy_kcal": reported.get("energy_kcal")},
        "has_gps": track.has_gps, "point_count": len(track),
        "start_lat": m.start_latlng[0] if m.start_latlng else None,
        "start_lng": m.start_latlng[1] if m.start_latlng else None,
        "end_lat": m.end_latlng[0] if m.end_latlng else None,
        "end_lng": m.end_latlng[1] if m.end_latlng else None,
        "min_lat": m.bounds[0] if m.bounds else None, "min_lng": m.bounds[1] if m.bounds else None,
        "max_lat": m.bounds[2] if m.bounds else None, "max_lng": m.bounds[3] if m.bounds else None,
        "polyline": owner_map.polyline if owner_map else None,
        "summary_polyline": owner_map.summary_polyline if owner_map else None,
        "public": summary.public, "privacy_version": privacy_version,
    })


def ingest_upload(upload: Upload) -> str:
    """Store the upload's activity. Returns "stored" (also when an earlier run of this upload stored it)
    or "duplicate" (the athlete already has this file as another activity).

    A workout of a multi-workout Apple Health export stores its whole batch (see :func:`ingest_export`)."""
    if upload.data_type == "health" and upload.part is not None and upload.batch_id:
        return ingest_export(upload)
    return store_track(upload, _parse(upload))


def _parse(upload: Upload) -> Track:
    failure: str | None = None
    try:
        data = _load(upload)
        if upload.data_type == "health":
            return normalize(parse_health_workout(data, 0))
        return normalize(parse_bytes(data, upload.data_type or "gpx"))
    except ParseError as exc:
        failure = str(exc)
    # Raised afresh outside the handler, so that the parser's exception is dropped here: its traceback holds the
    # parser's frames and with them the inflated file (hundreds of MB), which the task runner would otherwise
    # keep alive after the failure.
    raise ParseError(failure)


def _load(upload: Upload) -> bytes:
    try:
        return storage.get(upload.storage_key)
    except KeyError:
        raise ParseError("The uploaded file could not be found in storage; please upload it again.") from None


def ingest_export(lead: Upload) -> str:
    """Store every pending workout of ``lead``'s Apple Health batch from a single read of the stored export.

    The other workouts' uploads are claimed here and, once stored, continue with the rest of the chain on their
    own (``jobs.UPLOAD_AFTER_INGEST``); ``lead``'s outcome is returned (or its ParseError raised) as for any
    upload. Safe to run twice: a workout stored by an earlier run is found by its unique source hash."""
    failure: str | None = None
    try:
        tracks = parse_health_workouts(_load(lead))
    except ParseError as exc:
        failure = str(exc)  # raised afresh below, without the parser's frames (see _parse)
    if failure is not None:
        # The file itself is unreadable: every workout of it fails with the same sentence, now, rather than
        # each being retried (and the file re-read) one by one by the sweeper.
        lifecycle.fail_batch(lead, failure)
        raise ParseError(failure)
    siblings = lifecycle.claim_batch(lead)
    lead_outcome: str | BaseException = "stored"
    for upload in [lead, *siblings]:
        try:
            if upload.part is None or not 0 <= upload.part < len(tracks):
                raise ParseError(f"Workout number {upload.part} does not exist in the Apple Health export")
            outcome = store_track(upload, normalize(tracks[upload.part]))
        except ParseError as exc:
            db.session.rollback()
            if upload.id == lead.id:
                lead_outcome = exc
            else:
                lifecycle.mark_failed_or_requeue(upload.id, exc)
            continue
        if upload.id == lead.id:
            lead_outcome = outcome
        elif outcome == "stored":
            jobs.send(jobs.UPLOAD_AFTER_INGEST, upload.id)
    if isinstance(lead_outcome, BaseException):
        raise lead_outcome
    return lead_outcome


#: Prepared once (models.db.returning), the columns coming from the parameters: every upload runs them.
_INSERT_ACTIVITY = returning(Activity, insert(table_of(Activity)).on_conflict_do_nothing())
_INSERT_STREAM = insert(table_of(ActivityStream)).on_conflict_do_nothing()


def store_track(upload: Upload, track: Track) -> str:
    """Summarize a normalized track and store it as the upload's activity: "stored", "duplicate" (the athlete
    has this file, or, for a workout synced from a health app, this workout already) or "gone" (the upload was
    deleted meanwhile)."""
    user = db.session.get(User, upload.user_id)
    if user is None:  # the account was deleted meanwhile
        raise ParseError("The account no longer exists.")
    zones, hide_m = privacy_settings(user)
    privacy_version = user.privacy_version
    seed = privacy_seed(user.id, upload.sha256)
    summary = summarize(track, upload.sport_type or track.sport, zones, hide_start_end_m=hide_m, seed=seed)
    values = activity_values(upload, user, track, summary, privacy_version)

    # Held to the commit: a health-app sync or another upload of this athlete sees this activity, or waits.
    same_workout.lock(user.id)
    if db.session.scalar(select(Upload.id).where(Upload.id == upload.id)) is None:
        # Deleted since it was claimed (its health-app sample was deleted): it must not produce an activity.
        db.session.rollback()
        return "gone"
    others = same_workout.same_as(user.id, values["start_time"], float(values["elapsed_time_s"] or 0.0),
                                  exclude_upload=upload.id)
    removed = removal.Removed()
    if not same_workout.is_synced(upload.external_id):
        removed = _replace_synced(others, user.preferences.timezone)
    elif others:
        # A route synced from a health app, and the athlete has the workout already (the watch's file was stored
        # while the route waited in the queue): the first copy stays, whatever recorded it.
        return _duplicate(upload, others[0].id, "You have this workout already: it was recorded by another device "
                                                "or app.")

    # No ON CONFLICT target: either unique index (same file for this athlete, or this upload already
    # stored by an earlier run) turns the insert into a no-op, and the lookup below says which.
    # RETURNING the whole row: the load below reads it, without a SELECT of its own.
    activity = returned_row(Activity, _INSERT_ACTIVITY, values)
    activity_id = activity.id if activity is not None else None
    if activity_id is None:
        existing = db.session.execute(
            select(Activity.id, Activity.upload_id).where(
                (Activity.upload_id == upload.id)
                | ((Activity.user_id == upload.user_id) & (Activity.source_sha256 == upload.sha256)))
        ).first()
        if existing is None:  # lost a race with a delete; let the retry sort it out
            raise ParseError("The activity changed while it was being processed; please upload it again.")
        if existing.upload_id != upload.id:
            outcome = _duplicate(upload, existing.id, "This file was already uploaded.")
            removal.after_commit(removed)  # a synced copy of its workout went all the same
            return outcome
        activity_id = existing.id
    db.session.execute(_INSERT_STREAM, {"activity_id": activity_id, "point_count": len(track),
                                        "data": summary.stream_blob})
    upload.activity_id = activity_id
    upload.stage = "stored"
    if activity is None:  # a retry of a run that stored it: its row as it is now
        activity = db.session.get(Activity, activity_id)
        assert activity is not None
    loads.activity_ingested(activity, track)
    db.session.commit()
    removal.after_commit(removed)
    return "stored"


def _replace_synced(others: list[Activity], timezone: str) -> removal.Removed:
    """Make room for a device file: the copies of its workout synced from a health app go (the copy has at most a
    phone's route, no laps, no sensors), each sync item then pointing at nothing, so that deleting the sample in
    the health app later leaves the file's activity alone. Two device files of one workout are both kept, as
    before: which one is right is the athlete's call."""
    removed = removal.Removed()
    for other in others:
        if same_workout.is_synced(other.external_id):
            same_workout.unlink_sync_items(other)
            removed += removal.remove(other, timezone)
    return removed


def _duplicate(upload: Upload, activity_id: int, message: str) -> str:
    upload.status, upload.stage, upload.activity_id = "duplicate", None, activity_id
    upload.error = message
    db.session.commit()
    return "duplicate"
