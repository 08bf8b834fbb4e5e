"""Gear rules: an athlete's shoes and bikes, the distance they have done, and the default gear per sport."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import JSONB

from domain.errors import refuse
from models import Activity, Gear, User, db


def _totals(gear_ids: list[int]) -> dict[int, tuple[float, int]]:
    """Per gear: (distance in metres, activities): summed from the activities, so edits and deletes count."""
    if not gear_ids:
        return {}
    rows = db.session.execute(select(Activity.gear_id, func.coalesce(func.sum(Activity.distance_m), 0.0),
                                     func.count()).where(Activity.gear_id.in_(gear_ids))
                              .group_by(Activity.gear_id)).all()
    return {int(gid or 0): (float(distance), int(count)) for gid, distance, count in rows}


def serialize(gear: Gear, totals: dict[int, tuple[float, int]] | None = None) -> dict[str, Any]:
    distance, count = (totals if totals is not None else _totals([gear.id])).get(gear.id, (0.0, 0))
    return {"id": gear.id, "kind": gear.kind, "name": gear.name, "brand": gear.brand, "model": gear.model,
            "retired": gear.retired, "default_sport_types": list(gear.default_sport_types or []),
            "distance_m": distance, "activity_count": count, "created_at": gear.created_at}


def list_gear(user: User) -> list[dict[str, Any]]:
    rows = list(db.session.scalars(select(Gear).where(Gear.user_id == user.id).order_by(Gear.retired, Gear.id)))
    totals = _totals([g.id for g in rows])
    return [serialize(g, totals) for g in rows]


def get_own(user: User, gear_id: int) -> Gear:
    gear = db.session.get(Gear, gear_id)
    if gear is None or gear.user_id != user.id:
        refuse(404, "Gear not found.")
    return gear


def _claim_defaults(user: User, gear: Gear, sports: list[str]) -> None:
    """One default gear per sport: claiming a sport takes it from the athlete's other gear."""
    for other in db.session.scalars(select(Gear).where(Gear.user_id == user.id, Gear.id != gear.id)):
        kept = [s for s in other.default_sport_types or [] if s not in sports]
        if kept != list(other.default_sport_types or []):
            other.default_sport_types = kept
    gear.default_sport_types = list(dict.fromkeys(sports))


def create(user: User, data: dict[str, Any]) -> Gear:
    gear = Gear(user_id=user.id, kind=data["kind"], name=data["name"], brand=data.get("brand"),
                model=data.get("model"), retired=bool(data.get("retired", False)), default_sport_types=[])
    db.session.add(gear)
    db.session.flush()
    if data.get("default_sport_types") and not gear.retired:
        _claim_defaults(user, gear, data["default_sport_types"])
    db.session.commit()
    return gear


def update(user: User, gear_id: int, changes: dict[str, Any]) -> Gear:
    gear = get_own(user, gear_id)
    sports = changes.pop("default_sport_types", None)
    for key, value in changes.items():
        setattr(gear, key, value)
    if gear.retired:
        gear.default_sport_types = []  # retired gear is never picked for new activities
    elif sports is not None:
        _claim_defaults(user, gear, sports)
    db.session.commit()
    return gear


def delete(user: User, gear_id: int) -> None:
    db.session.delete(get_own(user, gear_id))  # its activities keep their distance, without gear
    db.session.commit()


#: Asked for every upload: prepared once (a statement built per call costs more than it runs).
_DEFAULT_FOR = select(Gear.id).where(
    Gear.user_id == bindparam("user_id"), Gear.retired.is_(False),
    Gear.default_sport_types.contains(bindparam("sports", type_=JSONB))).order_by(Gear.id).limit(1)


def default_for(user_id: int, sport_type: str) -> int | None:
    """The gear new activities of this sport get when the athlete does not choose."""
    return db.session.scalar(_DEFAULT_FOR, {"user_id": user_id, "sports": [sport_type]})


def check_choice(user: User, gear_id: int | None) -> int | None:
    """A gear an activity may point at: the athlete's own (retired gear too: old activities keep theirs)."""
    if gear_id is None:
        return None
    gear = db.session.get(Gear, gear_id)
    if gear is None or gear.user_id != user.id:
        refuse(422, "gear_id: not one of your gear.", errors={"json": {"gear_id": ["Not one of your gear."]}})
    return gear.id
