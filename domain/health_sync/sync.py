"""Health-app sync: batches of HealthKit / Health Connect samples, idempotent by (source, source id).

A sample's id at the source is the key (``health_sync_items``): the same sample sent again changes nothing,
the same id with other content updates its record, a deleted id removes it. The whole batch is validated
before anything is written, and written in one transaction. The answer carries our anchor for the source (a
per-athlete counter that moves only when a batch changed something) and echoes the platform's own token
(HealthKit anchor, Health Connect changes token) so the app can resume from either.

Sleep arrives as stage samples (HealthKit writes one sample per stage); consecutive stages of one source, no
more than ``SLEEP_GAP`` apart, are one session with its ``stages``. Workouts are activities: with a route through
the upload pipeline, after the batch's commit (``domain.health_sync.workouts``).

This package sits above ``domain.health``, ``domain.activities`` and ``domain.insights`` (which reads health
records): a workout sample touches all three.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects.postgresql import insert

from domain import clock
from domain.activities import removal, same_workout
from domain.algorithms.track import Track
from domain.errors import Refusal, refuse
from domain.health import common, metrics
from domain.health_sync import workouts
from domain.uploads.service import check_quota
from models import (
    BodyMetric,
    HealthSyncItem,
    HealthSyncState,
    Meal,
    MealItem,
    SleepSession,
    User,
    WaterLog,
    db,
)
from models.db import table_of
from models.health import MEAL_TYPES

MAX_SAMPLES = 10_000
MAX_DELETED = 10_000
SLEEP_GAP = timedelta(minutes=60)
MAX_SPAN = timedelta(hours=24)

#: Sample type → the body metric it is stored as.
METRIC_TYPES = {"resting_heart_rate": "resting_heart_rate", "hrv_rmssd": "hrv_rmssd", "hrv_sdnn": "hrv_sdnn",
                "steps": "steps", "active_energy": "active_energy", "body_mass": "weight", "body_fat": "body_fat",
                "height": "height"}
SAMPLE_TYPES = (*METRIC_TYPES, "sleep", "water", "nutrition", "workout")
SPAN_TYPES = ("sleep", "steps", "active_energy", "workout")

#: HealthKit sleep values and Health Connect stage types (names or numbers) → our stages.
STAGES = {
    "inbed": "in_bed", "asleep": "asleep", "asleepunspecified": "asleep", "asleepcore": "light",
    "asleepdeep": "deep", "asleeprem": "rem", "awake": "awake",
    "0": "asleep", "unknown": "asleep", "1": "awake", "2": "asleep", "sleeping": "asleep", "3": "awake",
    "out_of_bed": "awake", "4": "light", "light": "light", "5": "deep", "deep": "deep", "6": "rem", "rem": "rem",
    "7": "awake", "awake_in_bed": "awake",
}
#: HealthKit activity types and Health Connect exercise types → our sport types.
SPORTS = {"running": "running", "run": "running", "cycling": "cycling", "biking": "cycling", "walking": "walking",
          "hiking": "hiking", "swimming": "swimming", "swimming_pool": "swimming", "swimming_open_water": "swimming",
          "traditionalstrengthtraining": "strength", "strength_training": "strength", "weightlifting": "strength"}


@dataclass
class Sample:
    index: int
    type: str
    source_id: str
    start: datetime
    end: datetime | None
    value: float | None
    unit: str | None
    stage: str | None
    digest: str
    extra: dict[str, Any]
    #: A workout's route in time order (``workouts.route_track``), or None.
    route: Track | None = None


def _bad(index: int, field: str, message: str) -> NoReturn:
    refuse(422, f"Sample {index}: {message}", errors={"json": {"samples": {str(index): {field: [message]}}}})


def parse_sample(index: int, raw: dict[str, Any], now: datetime | None = None) -> Sample:
    """One sample checked and normalized, or a 422 naming it."""
    kind = raw["type"]
    at, start, end = raw.get("at"), raw.get("start"), raw.get("end")
    try:
        if kind in SPAN_TYPES or (start is not None and end is not None):
            if start is None or end is None:
                _bad(index, "start", "This type needs start and end.")
            start, end = common.check_time(start, "start", now), common.check_time(end, "end", now)
            common.check_span(start, end, MAX_SPAN, "A sample")
        else:
            if at is None:
                _bad(index, "at", "This type needs at.")
            start, end = common.check_time(at, "at", now), None
    except Refusal as exc:
        field = next(iter((exc.errors or {}).get("json", {"at": None})), "at")
        _bad(index, field, exc.message)
    value, unit, stage = raw.get("value"), raw.get("unit"), None
    extra: dict[str, Any] = {}
    route: Track | None = None
    if raw.get("route") and kind != "workout":
        _bad(index, "route", "Only a workout has a route.")
    if kind in METRIC_TYPES:
        if value is None:
            _bad(index, "value", "Missing.")
        try:
            value = metrics.normalize(METRIC_TYPES[kind], value, unit)
        except Refusal as exc:
            field = "unit" if "unit" in (exc.errors or {}).get("json", {}) else "value"
            _bad(index, field, exc.message)
    elif kind == "sleep":
        named = str(raw.get("sleep_stage") or raw.get("stage") or "asleep")
        stage = STAGES.get(named.replace("HKCategoryValueSleepAnalysis", "").lower())
        if stage is None:
            _bad(index, "stage", "Unknown sleep stage.")
    elif kind == "water":
        factor = {"ml": 1.0, "l": 1000.0, "fl_oz_us": 29.5735}.get((unit or "ml").lower())
        if factor is None or value is None:
            _bad(index, "unit", "Give the volume in ml or l.")
        value = float(value) * factor
        if not 0 < value <= 5000:
            _bad(index, "value", "A drink is more than 0 and at most 5,000 ml.")
    elif kind == "nutrition":
        if value is None or not 0 <= float(value) <= 10_000 or (unit or "kcal").lower() not in ("kcal", "kj"):
            _bad(index, "value", "Give the energy eaten, 0–10,000 kcal.")
        value = float(value) / (4.184 if (unit or "kcal").lower() == "kj" else 1.0)
        extra["meal_type"] = raw.get("meal_type") or "snack"
    elif kind == "workout":
        extra["sport"] = SPORTS.get(str(raw.get("activity") or "").lower(), "other")
        extra["distance_m"] = float(raw.get("distance_m") or 0.0)
        if value is not None and not 0 <= float(value) <= 20_000:
            _bad(index, "value", "A workout's energy is 0–20,000 kcal.")
        if raw.get("route"):
            assert end is not None
            try:
                route = workouts.route_track(raw["route"], start, end)
            except workouts.RouteError as exc:
                _bad(index, "route", str(exc))
    canonical = json.dumps(raw, sort_keys=True, default=str, separators=(",", ":"))
    return Sample(index, kind, raw["source_id"], start, end, None if value is None else float(value), unit, stage,
                  hashlib.sha256(canonical.encode()).hexdigest(), extra, route)


def _existing(user: User, source: str, ids: Sequence[str]) -> dict[str, HealthSyncItem]:
    found: dict[str, HealthSyncItem] = {}
    for i in range(0, len(ids), 1000):
        chunk = list(ids[i:i + 1000])
        for item in db.session.scalars(select(HealthSyncItem).where(
                HealthSyncItem.user_id == user.id, HealthSyncItem.source == source,
                HealthSyncItem.source_id.in_(chunk))):
            found[item.source_id] = item
    return found


# -- records, written in bulk: a batch is thousands of samples ----------------------------------------------

RECORD_MODELS: dict[str, Any] = {"body_metrics": BodyMetric, "water_logs": WaterLog, "meals": Meal}
#: What workouts make: removed the way the athlete's own delete removes an activity (workouts.remove).
WORKOUT_TABLES = ("activities", "uploads")


def _remove_records(user: User, items: Sequence[HealthSyncItem]) -> removal.Removed:
    """Delete the records of these items: one statement per table; sleep stages leave their sessions (a session
    left without stages goes); workouts' activities and uploads one by one, with what depends on them (what is
    left to do after the commit is returned)."""
    by_table: dict[str, list[int]] = {}
    stages: dict[int, set[str]] = {}
    for item in items:
        if item.record_id is None:
            continue
        if item.record_table == "sleep_sessions":
            stages.setdefault(item.record_id, set()).add(item.source_id)
        else:
            by_table.setdefault(item.record_table, []).append(item.record_id)
    removed = removal.Removed()
    for table, ids in by_table.items():
        if table in WORKOUT_TABLES:
            removed += workouts.remove(user, table, ids)
            continue
        model = RECORD_MODELS[table]
        db.session.execute(delete(model).where(model.id.in_(ids), model.user_id == user.id))
    if stages:
        for session in db.session.scalars(select(SleepSession).where(SleepSession.id.in_(list(stages)),
                                                                     SleepSession.user_id == user.id)):
            left = [s for s in session.stages or [] if s.get("source_id") not in stages[session.id]]
            if not left:
                db.session.delete(session)
                continue
            session.stages = left
            session.start_at = min(datetime.fromisoformat(s["start"]) for s in left)
            session.end_at = max(datetime.fromisoformat(s["end"]) for s in left)
        db.session.flush()
    return removed


def _nights(samples: Sequence[Sample]) -> list[list[Sample]]:
    """Sleep samples grouped into sessions: sorted, a new group after a gap longer than SLEEP_GAP or once a
    group would span more than MAX_SPAN."""
    groups: list[list[Sample]] = []
    end: datetime | None = None
    for sample in sorted(samples, key=lambda s: s.start):
        assert sample.end is not None
        if groups and end is not None and sample.start - end <= SLEEP_GAP \
                and max(end, sample.end) - groups[-1][0].start <= MAX_SPAN:
            groups[-1].append(sample)
            end = max(end, sample.end)
        else:
            groups.append([sample])
            end = sample.end
    return groups


def _store_sleep(user: User, source: str, samples: Sequence[Sample]) -> dict[str, int]:
    """Each night joins the session of this source it touches (within SLEEP_GAP), or becomes a new one."""
    placed: dict[str, int] = {}
    for night in _nights(samples):
        start = night[0].start
        end = max(s.end for s in night if s.end is not None)
        stages = [{"source_id": s.source_id, "stage": s.stage, "start": s.start.isoformat(),
                   "end": s.end.isoformat() if s.end else None} for s in night]
        near = db.session.scalars(select(SleepSession).where(
            SleepSession.user_id == user.id, SleepSession.source == source,
            SleepSession.start_at <= end + SLEEP_GAP, SleepSession.end_at >= start - SLEEP_GAP)
            .order_by(SleepSession.start_at)).first()
        if near is not None and max(near.end_at, end) - min(near.start_at, start) <= MAX_SPAN:
            near.stages = sorted([*(near.stages or []), *stages], key=lambda s: s["start"])
            near.start_at, near.end_at = min(near.start_at, start), max(near.end_at, end)
            session = near
        else:
            session = SleepSession(user_id=user.id, source=source, start_at=start, end_at=end, stages=stages)
            db.session.add(session)
        db.session.flush()
        placed.update({s.source_id: session.id for s in night})
    return placed


_NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)")


def _insert_returning(model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows and return their ids in order. The ids are drawn from the table's sequence first, then the
    rows go in as one multi-row Core insert: the ORM's bulk path with RETURNING costs most of a big batch."""
    if not rows:
        return []
    table = table_of(model)
    ids = [int(i) for i in db.session.scalars(_NEXT_IDS, {"table": table.name, "n": len(rows)})]
    db.session.execute(insert(table), [{**row, "id": i} for row, i in zip(rows, ids, strict=True)])
    return ids


def _store(user: User, source: str, samples: Sequence[Sample]) -> dict[str, tuple[str, int | None]]:
    """Write the records of these samples; {source id: (table, record id)}."""
    placed: dict[str, tuple[str, int | None]] = {}
    by_type: dict[str, list[Sample]] = {}
    for sample in samples:
        group = "metric" if sample.type in METRIC_TYPES else sample.type
        by_type.setdefault(group, []).append(sample)
    metrics_ = by_type.get("metric", [])
    ids = _insert_returning(BodyMetric, [
        {"user_id": user.id, "kind": METRIC_TYPES[s.type], "value": s.value,
         "unit": metrics.METRIC_UNITS[METRIC_TYPES[s.type]], "measured_at": s.start, "end_at": s.end,
         "source": source} for s in metrics_])
    placed.update({s.source_id: ("body_metrics", i) for s, i in zip(metrics_, ids, strict=True)})
    water = by_type.get("water", [])
    ids = _insert_returning(WaterLog, [{"user_id": user.id, "ml": max(1, round(s.value or 0)), "drunk_at": s.start,
                                        "source": source} for s in water])
    placed.update({s.source_id: ("water_logs", i) for s, i in zip(water, ids, strict=True)})
    food = by_type.get("nutrition", [])
    ids = _insert_returning(Meal, [
        {"user_id": user.id, "eaten_at": s.start, "source": source,
         "meal_type": s.extra["meal_type"] if s.extra["meal_type"] in MEAL_TYPES else "snack"} for s in food])
    if ids:
        db.session.execute(insert(table_of(MealItem)), [{"meal_id": i, "name": f"Logged in {source.replace('_', ' ')}",
                                               "grams": 0.0, "nutrients": {"energy_kcal": s.value}}
                                              for s, i in zip(food, ids, strict=True)])
    placed.update({s.source_id: ("meals", i) for s, i in zip(food, ids, strict=True)})
    sleep = _store_sleep(user, source, by_type.get("sleep", []))
    placed.update({sid: ("sleep_sessions", i) for sid, i in sleep.items()})
    for sample in by_type.get("workout", []):
        placed[sample.source_id] = _store_workout(user, source, sample)
    return placed


def _store_workout(user: User, source: str, sample: Sample) -> tuple[str, int | None]:
    """Where a workout sample goes. One the athlete has already (the watch's file, uploaded earlier) is not
    stored again and points at nothing, so deleting the sample later leaves the upload be. One with a route is
    pending: its upload is made after the batch's commit. One without is stored now."""
    assert sample.end is not None
    if workouts.already_have(user, sample.start, sample.end):
        return same_workout.NOTHING
    if sample.route is not None:
        return workouts.PENDING
    return "activities", workouts.store_without_route(
        user, source, sample.source_id, sample.start, sample.end, sample.extra["sport"], sample.extra["distance_m"],
        sample.value)


def sync(user: User, data: dict[str, Any]) -> dict[str, Any]:
    """A batch from the app: every sample checked first (any bad one refuses the batch), then written."""
    raw_samples: list[dict[str, Any]] = data.get("samples") or []
    deleted: list[str] = data.get("deleted") or []
    if len(raw_samples) > MAX_SAMPLES:
        refuse(413, f"At most {MAX_SAMPLES} samples per batch: send the rest in another.")
    if len(deleted) > MAX_DELETED:
        refuse(413, f"At most {MAX_DELETED} deletions per batch.")
    seen: set[str] = set()
    for i, raw in enumerate(raw_samples):
        if raw["source_id"] in seen:
            _bad(i, "source_id", "Duplicate id in this batch.")
        seen.add(raw["source_id"])
    if seen & set(deleted):
        refuse(422, "A sample can't be both sent and deleted in one batch.",
               errors={"json": {"deleted": ["Also among the samples."]}})
    now = clock.now()
    samples = [parse_sample(i, raw, now) for i, raw in enumerate(raw_samples)]  # all checked before any write
    return write(user, data["source"], samples, deleted, data.get("anchor"))


def write(user: User, source: str, samples: Sequence[Sample], deleted: Sequence[str],
          platform_anchor: str | None) -> dict[str, Any]:
    """Store checked samples (ids unique in the batch) and deletions in one transaction, then make the uploads of
    its routes; the counts, the anchor and those uploads."""
    db.session.execute(insert(HealthSyncState).values(user_id=user.id, source=source).on_conflict_do_nothing())
    # The row lock serializes two batches of one athlete and source (the app retrying while the first runs).
    state = db.session.get(HealthSyncState, (user.id, source), with_for_update=True)
    assert state is not None
    if deleted or any(s.type == "workout" for s in samples):
        # Before any item is read: the store step of an upload may be replacing a synced workout right now.
        same_workout.lock(user.id)
    anchor = state.anchor + 1
    previous_platform_anchor = state.platform_anchor
    existing = _existing(user, source, [s.source_id for s in samples] + list(deleted))
    fresh = [s for s in samples if s.source_id not in existing]
    changed = [s for s in samples if s.source_id in existing and existing[s.source_id].digest != s.digest]
    gone = [existing[sid] for sid in dict.fromkeys(deleted) if sid in existing]
    # Routes of an earlier send of this batch whose uploads were never made (it failed after its commit).
    retried = set(workouts.stalled(existing, [(s.source_id, s.digest) for s in samples if s.route is not None]))
    routes = [s for s in fresh + changed if s.route is not None]
    if routes or retried:
        # Counted before anything is written: over the quota, the whole batch is refused and nothing is stored.
        check_quota(user, len(routes) + len(retried))
    removed = _remove_records(user, [existing[s.source_id] for s in changed] + gone)
    placed = _store(user, source, fresh + changed)
    for sample in changed:
        item = existing[sample.source_id]
        item.record_table, item.record_id = placed[sample.source_id]
        item.digest, item.sample_type, item.changed_at_anchor = sample.digest, sample.type, anchor
    if fresh:
        db.session.execute(insert(table_of(HealthSyncItem)), [
            {"user_id": user.id, "source": source, "source_id": s.source_id, "sample_type": s.type,
             "record_table": placed[s.source_id][0], "record_id": placed[s.source_id][1], "digest": s.digest,
             "changed_at_anchor": anchor} for s in fresh])
    if gone:
        db.session.execute(delete(HealthSyncItem).where(HealthSyncItem.id.in_([item.id for item in gone])))
    counts = {"created": len(fresh), "updated": len(changed), "unchanged": len(samples) - len(fresh) - len(changed),
              "deleted": len(gone)}
    moved = counts["created"] + counts["updated"] + counts["deleted"] > 0
    values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
    if moved:
        values["anchor"] = anchor
    if platform_anchor is not None:
        values["platform_anchor"] = platform_anchor
    db.session.execute(update(HealthSyncState).where(HealthSyncState.user_id == user.id,
                                                     HealthSyncState.source == source).values(**values))
    db.session.commit()
    removal.after_commit(removed)
    # The uploads follow the commit (accept_file commits and enqueues each itself).
    pending = [workouts.RouteSample(s.source_id, s.digest, s.extra["sport"], s.route) for s in samples
               if s.route is not None and (placed.get(s.source_id) == workouts.PENDING or s.source_id in retried)]
    uploads = workouts.upload_routes(user, source, pending)
    return {"source": source, "anchor": str(anchor if moved else anchor - 1),
            "platform_anchor": platform_anchor if platform_anchor is not None else previous_platform_anchor,
            "accepted": len(samples), **counts, "uploads": uploads}
