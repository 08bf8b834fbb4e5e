"""Body metrics: weight, resting heart rate, HRV (RMSSD and SDNN, in ms), body fat, height, steps, active
energy, as time series per athlete (the insights read them). Each kind is stored in one unit; input in another
known unit is converted, anything else refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from domain.errors import refuse
from domain.health import common
from models import BodyMetric, User, db
from models.health import METRIC_UNITS

#: Accepted units per kind and the factor to the stored unit.
UNITS: dict[str, dict[str, float]] = {
    "weight": {"kg": 1.0, "g": 0.001, "lb": 0.45359237},
    "resting_heart_rate": {"bpm": 1.0, "count/min": 1.0},
    "hrv_rmssd": {"ms": 1.0, "s": 1000.0},
    "hrv_sdnn": {"ms": 1.0, "s": 1000.0},
    "body_fat": {"%": 1.0, "fraction": 100.0},
    "height": {"cm": 1.0, "m": 100.0, "in": 2.54},
    "steps": {"count": 1.0},
    "active_energy": {"kcal": 1.0, "kj": 1 / 4.184},
}
#: Plausible ranges in the stored unit: outside them is a typo or a unit mix-up, refused with a 422.
RANGES = {
    "weight": (20.0, 400.0), "resting_heart_rate": (25.0, 150.0), "hrv_rmssd": (1.0, 500.0),
    "hrv_sdnn": (1.0, 500.0), "body_fat": (2.0, 75.0), "height": (50.0, 260.0), "steps": (0.0, 200_000.0),
    "active_energy": (0.0, 20_000.0),
}


def normalize(kind: str, value: float, unit: str | None, field: str = "value") -> float:
    """The value in the kind's stored unit, or a 422 naming the field."""
    units = UNITS[kind]
    factor = units.get((unit or METRIC_UNITS[kind]).lower() if unit else METRIC_UNITS[kind])
    if factor is None:
        common.invalid("unit", f"Unknown unit for {kind}: use one of {', '.join(units)}.")
    stored = float(value) * factor
    low, high = RANGES[kind]
    if not low <= stored <= high:
        common.invalid(field, f"A {kind.replace('_', ' ')} of {stored:g} {METRIC_UNITS[kind]} is out of range "
                              f"({low:g}–{high:g}).")
    return stored


def serialize(metric: BodyMetric) -> dict[str, Any]:
    return {"id": metric.id, "kind": metric.kind, "value": metric.value, "unit": metric.unit,
            "measured_at": metric.measured_at, "end_at": metric.end_at, "source": metric.source,
            "created_at": metric.created_at}


def create_metric(user: User, data: dict[str, Any]) -> BodyMetric:
    kind = data["kind"]
    metric = BodyMetric(user_id=user.id, kind=kind, value=normalize(kind, data["value"], data.get("unit")),
                        unit=METRIC_UNITS[kind], measured_at=common.check_time(data["measured_at"], "measured_at"))
    db.session.add(metric)
    db.session.commit()
    return metric


def get_metric(user: User, metric_id: int) -> BodyMetric:
    return common.owned(BodyMetric, metric_id, user, "Body metric")


def update_metric(user: User, metric_id: int, changes: dict[str, Any]) -> BodyMetric:
    metric = get_metric(user, metric_id)
    if "value" in changes:
        metric.value = normalize(metric.kind, changes["value"], changes.get("unit"))
    elif "unit" in changes:
        refuse(422, "Give the value with its unit.", errors={"json": {"value": ["Missing."]}})
    if "measured_at" in changes:
        metric.measured_at = common.check_time(changes["measured_at"], "measured_at")
    db.session.commit()
    return metric


def delete_metric(user: User, metric_id: int) -> None:
    db.session.delete(get_metric(user, metric_id))
    db.session.commit()


def list_metrics(user: User, args: dict[str, Any]) -> dict[str, Any]:
    query = select(BodyMetric).where(BodyMetric.user_id == user.id)
    if args.get("kind"):
        query = query.where(BodyMetric.kind == args["kind"])
    if args.get("from") is not None:
        query = query.where(BodyMetric.measured_at >= args["from"])
    if args.get("to") is not None:
        query = query.where(BodyMetric.measured_at < args["to"])
    return common.page(query, BodyMetric.measured_at, BodyMetric.id, args.get("cursor"), args["limit"], serialize)


def series(user_id: int, kind: str, start: datetime, end: datetime) -> list[tuple[datetime, float]]:
    """A kind's values in [start, end), oldest first: what the insights read."""
    rows = db.session.execute(select(BodyMetric.measured_at, BodyMetric.value).where(
        BodyMetric.user_id == user_id, BodyMetric.kind == kind, BodyMetric.measured_at >= start.astimezone(UTC),
        BodyMetric.measured_at < end.astimezone(UTC)).order_by(BodyMetric.measured_at)).all()
    return [(r.measured_at, r.value) for r in rows]
