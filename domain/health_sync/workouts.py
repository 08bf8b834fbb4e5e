"""Workouts from a health app: with a route, through the upload pipeline like any file; without one, an activity
like a manual entry. Either way private (a health app's workout was not shared by the athlete), stored once
(``domain.activities.same_workout``), and removed with everything it made when the sample is deleted.

A route becomes a GPX file (the one writer, ``domain.algorithms.gpx_writer``) and an upload of it, so a synced
route is parsed, cleaned, measured, matched to segments and privacy-masked exactly as the watch's file would be.
``accept_file`` commits (and enqueues) on its own, so the uploads are made after the batch's commit: the batch
stays one transaction, its route samples committed as pending (``PENDING``), and the uploads follow, each
linked to its sample once made. A send that fails in between (storage down) leaves them pending; the same
batch sent again finds them so and makes them, under the same idempotency key, so never twice.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import or_, select, update

from domain import offload
from domain.activities import removal, same_workout
from domain.activities.ingest import default_name
from domain.algorithms.gpx_writer import to_gpx
from domain.algorithms.parsing.common import MAX_POINTS
from domain.algorithms.timezones import local_start, resolve_timezone
from domain.algorithms.track import Track
from domain.insights import loads
from domain.uploads import service as uploads
from models import Activity, HealthSyncItem, User, db
from models.db import rowcount

#: A route's points at most: one a second over the longest workout a sample may span (24 hours), which the
#: upload pipeline takes whole (it refuses a file beyond MAX_POINTS).
MAX_ROUTE_POINTS = 86_400
assert MAX_ROUTE_POINTS <= MAX_POINTS
#: Route points may lie this far outside the workout's span: the phone's last fix before the start button, a
#: clock a second off.
ROUTE_SLACK = timedelta(minutes=1)
#: Who wrote the file, as its GPX ``creator`` (the activity's device).
DEVICES = {"healthkit": "Apple Health", "health_connect": "Health Connect"}

#: What a sync item of a route workout points at between the batch's commit and its upload.
PENDING: tuple[str, None] = ("uploads", None)


class RouteError(ValueError):
    """A route the batch is refused for; the message names the point."""


@dataclass
class RouteSample:
    """A workout whose route becomes an upload: what the upload needs of its sample."""

    source_id: str
    digest: str
    sport: str
    route: Track


def route_track(points: Sequence[Mapping[str, Any]], start: datetime, end: datetime) -> Track | None:
    """A workout's route points (``at`` aware, ``lat``, ``lon``, optional ``ele`` and ``hr``) as a track in time
    order, or None when they are no route (fewer than two moments: no distance, no duration). Raises RouteError
    for a point off the globe or outside the workout's span (± ROUTE_SLACK), or for too many points."""
    if len(points) > MAX_ROUTE_POINTS:
        raise RouteError(f"A route has at most {MAX_ROUTE_POINTS:,} points; this one has {len(points):,}.")
    time = np.array([p["at"].timestamp() for p in points], dtype=np.float64)
    lat = np.array([p["lat"] for p in points], dtype=np.float64)
    lon = np.array([p["lon"] for p in points], dtype=np.float64)
    optional = {k: np.array([np.nan if p.get(k) is None else p[k] for p in points], dtype=np.float64)
                for k in ("ele", "hr")}
    for values, name, bound in ((lat, "latitude", 90.0), (lon, "longitude", 180.0)):
        off = np.flatnonzero(~(np.abs(values) <= bound))
        if off.size:
            raise RouteError(f"Point {off[0]}: the {name} must be between -{bound:g} and {bound:g}.")
    outside = np.flatnonzero((time < (start - ROUTE_SLACK).timestamp()) | (time > (end + ROUTE_SLACK).timestamp()))
    if outside.size:
        raise RouteError(f"Point {outside[0]}: its time is outside the workout ({start.isoformat()} to "
                         f"{end.isoformat()}, give or take {int(ROUTE_SLACK.total_seconds())} s).")
    if np.unique(time).size < 2:
        return None
    order = np.argsort(time, kind="stable")  # apps send them in order; sorted here rather than refused if not
    return Track.from_columns(time=time[order], lat=lat[order], lon=lon[order],
                              **{k: v[order] for k, v in optional.items()})


# -- in the batch's transaction ---------------------------------------------------------------------------------

def already_have(user: User, start: datetime, end: datetime) -> bool:
    """Whether the athlete has this workout already (an upload of the watch's file, most likely)."""
    elapsed = (end - start).total_seconds()
    return db.session.scalar(select(Activity.id).where(same_workout.matching(user.id, start, elapsed))
                             .limit(1)) is not None


def store_without_route(user: User, source: str, source_id: str, start: datetime, end: datetime, sport: str,
                        distance_m: float, energy_kcal: float | None) -> int:
    """A workout without a route: an activity as a manual entry would make it (the profile's zone, since there
    is no position; the default name; the training-load hook), private."""
    elapsed = (end - start).total_seconds()
    tz_name = resolve_timezone(None, None, user.preferences.timezone)
    activity = Activity(
        user_id=user.id, manual=True, sport_type=sport, start_time=start, timezone=tz_name,
        start_date_local=local_start(start, tz_name), name=default_name(sport, start, tz_name),
        visibility="only_me", distance_m=distance_m, elapsed_time_s=elapsed, moving_time_s=elapsed,
        avg_speed_mps=distance_m / elapsed if distance_m else None,
        details={"energy_kcal": energy_kcal} if energy_kcal else {}, has_gps=False, point_count=0,
        external_id=same_workout.synced_external_id(source, source_id), privacy_version=user.privacy_version)
    db.session.add(activity)
    db.session.flush()
    loads.activity_stored(activity, user.preferences.timezone)
    return activity.id


def remove(user: User, table: str, record_ids: Sequence[int]) -> removal.Removed:
    """Remove what workout samples made (``activities``, or the ``uploads`` of their routes with the activities
    the pipeline made of them) the way the athlete's own delete does: boards, feeds and the training-load series
    follow. An activity a device file replaced is not among them (its sync item points at nothing)."""
    removed = removal.Removed()
    if table == "uploads":
        for upload_id in record_ids:
            removed += removal.remove_upload(user.id, upload_id, user.preferences.timezone)
        return removed
    for activity in db.session.scalars(select(Activity).where(Activity.id.in_(record_ids),
                                                              Activity.user_id == user.id)):
        removed += removal.remove(activity, user.preferences.timezone)
    return removed


# -- after the batch's commit ---------------------------------------------------------------------------------

def idempotency_key(source: str, sample: RouteSample) -> str:
    """The same sample (same content) sent again, or retried after a failure, names the same upload."""
    seed = f"{source}\0{sample.source_id}\0{sample.digest}".encode()
    return "health-sync:" + hashlib.sha256(seed).hexdigest()


def _file_name(source: str, source_id: str) -> str:
    return f"{source}-{re.sub(r'[^A-Za-z0-9._-]+', '_', source_id)}"[:250] + ".gpx"


def upload_routes(user: User, source: str, samples: Sequence[RouteSample]) -> list[dict[str, Any]]:
    """Make the uploads of committed pending route samples (the quota was counted with the batch) and link each
    sample to its upload; one commit per upload, as ``accept_file`` makes them."""
    made: list[dict[str, Any]] = []
    for sample in samples:
        data = offload.cpu(to_gpx, replace(sample.route, sport=sample.sport, device=DEVICES.get(source)))
        form = {"external_id": same_workout.synced_external_id(source, sample.source_id), "name": None,
                "sport_type": sample.sport, "visibility": "only_me"}
        upload = uploads.accept_file(user, data, _file_name(source, sample.source_id), form,
                                     idempotency_key=idempotency_key(source, sample), data_type="gpx",
                                     quota_checked=True)
        linked = rowcount(db.session.execute(update(HealthSyncItem).where(
            HealthSyncItem.user_id == user.id, HealthSyncItem.source == source,
            HealthSyncItem.source_id == sample.source_id, HealthSyncItem.digest == sample.digest,
            HealthSyncItem.record_table == PENDING[0],
            or_(HealthSyncItem.record_id.is_(None), HealthSyncItem.record_id == upload.id),
        ).values(record_id=upload.id)))
        if not linked:
            # A later batch deleted or changed the sample while this upload was being made: it is nobody's.
            removed = removal.remove_upload(user.id, upload.id, user.preferences.timezone)
            db.session.commit()
            removal.after_commit(removed)
            continue
        db.session.commit()
        made.append({"source_id": sample.source_id, "upload_id": upload.id, "status": upload.status})
    return made


def stalled(items: Mapping[str, HealthSyncItem], candidates: Sequence[tuple[str, str]]) -> list[str]:
    """Of (source id, digest) pairs sent unchanged, those still pending: their upload was never made."""
    return [sid for sid, digest in candidates
            if (item := items.get(sid)) is not None and item.digest == digest
            and (item.record_table, item.record_id) == PENDING]

