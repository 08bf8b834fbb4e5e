"""The athlete's heart-rate zones.

We keep no zones the athlete set, so they are derived from a maximum heart rate: the highest one recorded in their
activities of the last year when there is one, else the age-predicted 220 − age (needs the birth year), else 190.
Five zones at 60 / 70 / 80 / 90 % of it — the usual default of training platforms.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from models import Activity, User, db

BOUNDS = (0.6, 0.7, 0.8, 0.9)
DEFAULT_MAX_HR = 190
#: A recorded maximum above this is a sensor glitch, not a heart rate to train by.
PLAUSIBLE_MAX_HR = 230


def max_heart_rate(user: User, now: datetime | None = None) -> tuple[int, str]:
    """(max HR, where it comes from: "recorded", "age" or "default")."""
    since = (now or datetime.now(UTC)) - timedelta(days=365)
    recorded = db.session.scalar(select(func.max(Activity.max_hr)).where(
        Activity.user_id == user.id, Activity.start_time >= since, Activity.max_hr <= PLAUSIBLE_MAX_HR))
    if recorded:
        return round(recorded), "recorded"
    if user.birth_year:
        return 220 - ((now or datetime.now(UTC)).year - user.birth_year), "age"
    return DEFAULT_MAX_HR, "default"


def heart_rate_zones(user: User) -> dict[str, Any]:
    peak, source = max_heart_rate(user)
    cuts = [round(peak * b) for b in BOUNDS]
    lows = [0, *cuts]
    highs = [*cuts, -1]  # the last zone is open-ended
    return {"max_heart_rate": peak, "source": source,
            "zones": [{"min": lo, "max": hi} for lo, hi in zip(lows, highs, strict=True)]}
