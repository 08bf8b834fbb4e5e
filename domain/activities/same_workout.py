"""One workout recorded twice (the watch's file and a health app's copy of it) is one activity.

The rule lives here once, as the query that finds an athlete's activities recording the same workout, and both
places where a copy arrives apply it:

- a health-app sync does not store (nor upload) a workout the athlete already has (``domain.health_sync``);
- the ingest of an uploaded file replaces a copy synced from a health app (the device's file is the richer
  record: every point, its own laps and sensors), and an upload made from a synced route is not stored when the
  athlete has the workout already (``domain.activities.ingest``).

Both hold the athlete's workout lock (:func:`lock`) from the look-up to their commit, so two copies arriving at
once are serialized and the second one always sees the first.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    DateTime,
    Float,
    and_,
    bindparam,
    func,
    or_,
    select,
    text,
    update,
)

from models import Activity, HealthSyncItem, db
from models.health import SYNC_SOURCES

#: Two recordings of one workout start within this much of each other…
SAME_WORKOUT_START = timedelta(minutes=2)
#: …and last about as long: within this share of the longer one, and never less than DURATION_FLOOR_S apart
#: (a phone and a watch started and stopped by hand differ by seconds, a short workout by more than 10 %).
SAME_WORKOUT_DURATION = 0.1
DURATION_FLOOR_S = 120.0


def matching(user_id: int | BindParameter[int], start: datetime | BindParameter[datetime],
             elapsed_s: float | BindParameter[float]) -> ColumnElement[bool]:
    """The athlete's activities that record the same workout as one starting at ``start`` and lasting
    ``elapsed_s`` seconds. Symmetric: which of the two copies is asked about does not change the answer."""
    tolerance = func.greatest(DURATION_FLOOR_S, SAME_WORKOUT_DURATION * elapsed_s,
                              SAME_WORKOUT_DURATION * Activity.elapsed_time_s)
    return and_(Activity.user_id == user_id,
                Activity.start_time >= start - SAME_WORKOUT_START, Activity.start_time <= start + SAME_WORKOUT_START,
                func.abs(Activity.elapsed_time_s - elapsed_s) <= tolerance)


def synced_external_id(source: str, source_id: str) -> str:
    """The ``external_id`` of what a health-app sample becomes (an activity, or the upload of its route)."""
    return f"{source}:{source_id}"[:255]


def is_synced(external_id: str | None) -> bool:
    """Whether an activity or upload came from a health-app sync (its external id names the source)."""
    return bool(external_id) and str(external_id).split(":", 1)[0] in SYNC_SOURCES


def synced_sql() -> ColumnElement[bool]:
    """:func:`is_synced` as a condition on activities."""
    return or_(*[Activity.external_id.startswith(f"{source}:", autoescape=True) for source in SYNC_SOURCES])


def lock(user_id: int) -> None:
    """Serialize, until the caller's commit, everything that looks for an athlete's same workout and then writes
    one (a sync batch with workouts, the store step of an upload, a deletion). Without it a synced copy and the
    watch's file arriving together would each find nothing and both be stored."""
    db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('workouts'), CAST(:id AS integer))"),
                       {"id": user_id})


#: Asked for every upload (under its lock): prepared once, with :func:`matching` on bind parameters.
_SAME_AS = select(Activity).where(
    matching(bindparam("user_id", type_=BigInteger), bindparam("start", type_=DateTime(timezone=True)),
             bindparam("elapsed_s", type_=Float)),
    or_(bindparam("exclude_upload", type_=BigInteger).is_(None), Activity.upload_id.is_(None),
        Activity.upload_id != bindparam("exclude_upload", type_=BigInteger))).order_by(Activity.id)


def same_as(user_id: int, start: datetime, elapsed_s: float, *, exclude_upload: int | None = None,
            ) -> list[Activity]:
    """The athlete's activities of the same workout, oldest first (an upload's own activity, stored by an
    earlier run of its stage, left out)."""
    return list(db.session.scalars(_SAME_AS, {"user_id": user_id, "start": start, "elapsed_s": float(elapsed_s),
                                              "exclude_upload": exclude_upload}))


def unlink_sync_items(activity: Activity) -> None:
    """The health-sync item that made ``activity`` (directly, or through the upload of its route) now points at
    nothing, in the caller's transaction: once a device file replaced it, deleting the sample in the health app
    must leave the file's activity alone."""
    made_it = [and_(HealthSyncItem.record_table == "activities", HealthSyncItem.record_id == activity.id)]
    if activity.upload_id is not None:
        made_it.append(and_(HealthSyncItem.record_table == "uploads", HealthSyncItem.record_id == activity.upload_id))
    db.session.execute(update(HealthSyncItem).where(HealthSyncItem.user_id == activity.user_id, or_(*made_it))
                       .values(record_table=NOTHING[0], record_id=NOTHING[1]))


#: What a sync item of a workout points at when it made nothing (the athlete had the workout already).
NOTHING: tuple[str, None] = ("activities", None)
