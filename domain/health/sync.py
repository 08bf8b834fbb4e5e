"""Health-app sync: batches of HealthKit / Health Connect samples, idempotent by (source, source id).

A sample's id at the source is the key (``health_sync_items``): the same sample sent again changes nothing,
the same id with other content updates its record, a deleted id removes it. The whole batch is validated
before anything is written, and written in one transaction. The answer carries our anchor for the source (a
per-athlete counter that moves only when a batch changed something) and echoes the platform's own token
(HealthKit anchor, Health Connect changes token) so the app can resume from either.

Sleep arrives as stage samples (HealthKit writes one sample per stage); consecutive stages of one source, no
more than ``SLEEP_GAP`` apart, are one session with its ``stages``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert

from domain.errors import Refusal, refuse
from domain.health import common, metrics
from models import (
    Activity,
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


def _bad(index: int, field: str, message: str) -> NoReturn:
    refuse(422, f"Sample {index}: {message}", errors={"json": {"samples": {str(index): {field: [message]}}}})


def parse_sample(index: int, raw: dict[str, Any]) -> Sample:
    """One sample checked and normalized, or a 422 naming it."""
    kind = raw["type"]
    at, start, end = raw.get("at"), raw.get("start"), raw.get("end")
    try:
        if kind in SPAN_TYPES or (start is not None and end is not None):
            if start is None or end is None:
                _bad(index, "start", "This type needs start and end.")
            start, end = common.check_time(start, "start"), common.check_time(end, "end")
            common.check_span(start, end, MAX_SPAN, "A sample")
        else:
            if at is None:
                _bad(index, "at", "This type needs at.")
            start, end = common.check_time(at, "at"), None
    except Refusal as exc:
        field = next(iter((exc.errors or {}).get("json", {"at": None})), "at")
        _bad(index, field, exc.message)
    value, unit, stage = raw.get("value"), raw.get("unit"), None
    extra: dict[str, Any] = {}
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
    canonical = json.dumps(raw, sort_keys=True, default=str, separators=(",", ":"))
    return Sample(index, kind, raw["source_id"], start, end, None if value is None else float(value), unit, stage,
                  hashlib.sha256(canonical.encode()).hexdigest(), extra)


def _existing(user: User, source: str, ids: Sequence[str]) -> dict[str, HealthSyncItem]:
    found: dict[str, HealthSyncItem] = {}
    for i in range(0, len(ids), 1000):
        chunk = list(ids[i:i + 1000])
        for item in db.session.scalars(select(HealthSyncItem).where(
                HealthSyncItem.user_id == user.id, HealthSyncItem.source == source,
                HealthSyncItem.source_id.in_(chunk))):
            found[item.source_id] = item
    return found


# -- one record per sample type ------------------------------------------------------------------------------

def _remove_record(user: User, item: HealthSyncItem) -> None:
    if item.record_id is None:
        return
    if item.record_table == "sleep_sessions":
        _remove_stage(user, item.record_id, item.source_id)
        return
    model = {"body_metrics": BodyMetric, "water_logs": WaterLog, "meals": Meal, "activities": Activity}[
        item.record_table]
    db.session.execute(delete(model).where(model.id == item.record_id,  # type: ignore[attr-defined]
                                           model.user_id == user.id))  # type: ignore[attr-defined]


def _remove_stage(user: User, session_id: int, source_id: str) -> None:
    session = db.session.get(SleepSession, session_id)
    if session is None or session.user_id != user.id:
        return
    stages = [s for s in session.stages or [] if s.get("source_id") != source_id]
    if not stages:
        db.session.delete(session)
        return
    session.stages = stages
    session.start_at = min(datetime.fromisoformat(s["start"]) for s in stages)
    session.end_at = max(datetime.fromisoformat(s["end"]) for s in stages)


def _add_stage(user: User, source: str, sample: Sample) -> int:
    assert sample.end is not None
    near = db.session.scalars(select(SleepSession).where(
        SleepSession.user_id == user.id, SleepSession.source == source,
        SleepSession.start_at <= sample.end + SLEEP_GAP, SleepSession.end_at >= sample.start - SLEEP_GAP)
        .order_by(SleepSession.start_at)).first()
    stage = {"source_id": sample.source_id, "stage": sample.stage, "start": sample.start.isoformat(),
             "end": sample.end.isoformat()}
    if near is not None and max(near.end_at, sample.end) - min(near.start_at, sample.start) <= MAX_SPAN:
        near.stages = sorted([*(near.stages or []), stage], key=lambda s: s["start"])
        near.start_at, near.end_at = min(near.start_at, sample.start), max(near.end_at, sample.end)
        db.session.flush()
        return near.id
    session = SleepSession(user_id=user.id, source=source, start_at=sample.start, end_at=sample.end, stages=[stage])
    db.session.add(session)
    db.session.flush()
    return session.id


def _store(user: User, source: str, sample: Sample) -> tuple[str, int]:
    if sample.type == "sleep":
        return "sleep_sessions", _add_stage(user, source, sample)
    if sample.type in METRIC_TYPES:
        kind = METRIC_TYPES[sample.type]
        metric = BodyMetric(user_id=user.id, kind=kind, value=sample.value, unit=metrics.METRIC_UNITS[kind],
                            measured_at=sample.start, end_at=sample.end, source=source)
        db.session.add(metric)
        db.session.flush()
        return "body_metrics", metric.id
    if sample.type == "water":
        log = WaterLog(user_id=user.id, ml=max(1, round(sample.value or 0)), drunk_at=sample.start, source=source)
        db.session.add(log)
        db.session.flush()
        return "water_logs", log.id
    if sample.type == "nutrition":
        meal = Meal(user_id=user.id, meal_type=sample.extra["meal_type"] if sample.extra["meal_type"] in (
            "breakfast", "lunch", "dinner", "snack") else "snack", eaten_at=sample.start, source=source)
        db.session.add(meal)
        db.session.flush()
        db.session.add(MealItem(meal_id=meal.id, name=f"Logged in {source}", grams=0.0,
                                nutrients={"energy_kcal": sample.value}))
        return "meals", meal.id
    # A workout without a route: an activity like a manual entry, private to begin with (a health app's workout
    # was not shared by the athlete).
    assert sample.end is not None
    elapsed = (sample.end - sample.start).total_seconds()
    activity = Activity(
        user_id=user.id, manual=True, sport_type=sample.extra["sport"], start_time=sample.start,
        name=f"{sample.extra['sport'].capitalize()} from {source.replace('_', ' ')}", visibility="only_me",
        distance_m=sample.extra["distance_m"], elapsed_time_s=elapsed, moving_time_s=elapsed,
        details={"energy_kcal": sample.value} if sample.value else {}, has_gps=False, point_count=0,
        external_id=f"{source}:{sample.source_id}"[:255], privacy_version=user.privacy_version)
    db.session.add(activity)
    db.session.flush()
    return "activities", activity.id


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
    samples = [parse_sample(i, raw) for i, raw in enumerate(raw_samples)]  # every sample checked before any write
    return write(user, data["source"], samples, deleted, data.get("anchor"))


def write(user: User, source: str, samples: Sequence[Sample], deleted: Sequence[str],
          platform_anchor: str | None) -> dict[str, Any]:
    """Store checked samples (ids unique in the batch) and deletions in one transaction; the counts and anchor."""
    db.session.execute(insert(HealthSyncState).values(user_id=user.id, source=source).on_conflict_do_nothing())
    # The row lock serializes two batches of one athlete and source (the app retrying while the first runs).
    state = db.session.get(HealthSyncState, (user.id, source), with_for_update=True)
    assert state is not None
    anchor = state.anchor + 1
    existing = _existing(user, source, [s.source_id for s in samples] + list(deleted))
    counts = {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0}
    new_items = []
    for sample in samples:
        item = existing.get(sample.source_id)
        if item is not None and item.digest == sample.digest:
            counts["unchanged"] += 1
            continue
        if item is not None:
            _remove_record(user, item)
        table, record_id = _store(user, source, sample)
        if item is not None:
            item.record_table, item.record_id, item.digest = table, record_id, sample.digest
            item.sample_type, item.changed_at_anchor = sample.type, anchor
            counts["updated"] += 1
        else:
            new_items.append({"user_id": user.id, "source": source, "source_id": sample.source_id,
                              "sample_type": sample.type, "record_table": table, "record_id": record_id,
                              "digest": sample.digest, "changed_at_anchor": anchor})
            counts["created"] += 1
    for source_id in deleted:
        item = existing.get(source_id)
        if item is None:
            continue  # already gone, or never sent: a repeated deletion is a no-op
        _remove_record(user, item)
        db.session.delete(item)
        counts["deleted"] += 1
    if new_items:
        db.session.execute(insert(HealthSyncItem), new_items)
    changed = counts["created"] + counts["updated"] + counts["deleted"] > 0
    values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
    if changed:
        values["anchor"] = anchor
    if platform_anchor is not None:
        values["platform_anchor"] = platform_anchor
    previous_platform_anchor = state.platform_anchor
    db.session.execute(update(HealthSyncState).where(HealthSyncState.user_id == user.id,
                                                     HealthSyncState.source == source).values(**values))
    db.session.commit()
    return {"source": source, "anchor": str(anchor if changed else anchor - 1),
            "platform_anchor": platform_anchor if platform_anchor is not None else previous_platform_anchor,
            "accepted": len(samples), **counts}
