"""The athlete's health settings: height, macro split, water goal, reminder and night windows."""

from __future__ import annotations

from typing import Any

from domain.errors import refuse
from domain.health import common
from models import HealthProfile, User, db

FIELDS = ("height_cm", "protein_pct", "carbohydrate_pct", "fat_pct", "water_goal_ml", "reminders_enabled",
          "reminder_every_h", "wake_start", "wake_end", "night_start", "night_end")


def serialize(prof: HealthProfile) -> dict[str, Any]:
    return {field: getattr(prof, field) for field in FIELDS}


def get_settings(user: User) -> dict[str, Any]:
    prof = common.profile(user)
    db.session.commit()
    return serialize(prof)


def update_settings(user: User, changes: dict[str, Any]) -> dict[str, Any]:
    prof = common.profile(user)
    merged = {f: changes.get(f, getattr(prof, f)) for f in ("protein_pct", "carbohydrate_pct", "fat_pct")}
    if sum(merged.values()) != 100:
        refuse(422, "The macro split must add up to 100 %.", errors={"json": {"protein_pct": ["Sum is not 100."]}})
    if changes.get("wake_start", prof.wake_start) == changes.get("wake_end", prof.wake_end):
        refuse(422, "The waking window needs a start and an end that differ.",
               errors={"json": {"wake_end": ["Same as wake_start."]}})
    for key, value in changes.items():
        setattr(prof, key, value)
    db.session.commit()
    return serialize(prof)
