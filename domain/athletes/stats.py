"""An athlete's totals per sport — the last 4 weeks, the year to date and all time — and their biggest ride and
climb, as one viewer may count them.

The same rules as every list of the athlete's activities: only activities this viewer may see
(``domain.visibility.visible_sql``), each counted with the figures this viewer is shown (the visible stretch's
when part of someone else's track is hidden: ``shown_figure_sql``), so the totals can't reveal what the activities
hide. One query: every window and sport is a FILTERed aggregate of the same scan.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select

from domain.algorithms.timezones import resolve_timezone
from domain.privacy.public_view import shown_figure_sql
from domain.visibility import get_athlete, visible_sql
from models import Activity, User, db

RECENT_DAYS = 28
WINDOWS = ("recent", "ytd", "all")
FIGURES = ("distance_m", "moving_time_s", "elapsed_time_s", "elevation_gain_m")


def _window_starts(owner: User, now: datetime) -> dict[str, datetime | None]:
    """Where each window begins; the year starts on 1 January where the athlete lives (their profile's zone)."""
    tz = ZoneInfo(resolve_timezone(None, None, owner.preferences.timezone))
    year_start = now.astimezone(tz).replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return {"recent": now - timedelta(days=RECENT_DAYS), "ytd": year_start.astimezone(UTC), "all": None}


def athlete_stats(viewer: User, user_id: int, now: datetime | None = None) -> dict[str, Any]:
    """{"recent"|"ytd"|"all": {sport: {count, distance_m, moving_time_s, elapsed_time_s, elevation_gain_m}},
    "biggest_ride_distance_m", "biggest_climb_elevation_gain_m"} of the activities ``viewer`` may see."""
    owner = get_athlete(viewer, user_id)
    starts = _window_starts(owner, now or datetime.now(UTC))
    shown = {name: shown_figure_sql(name, viewer.id) for name in FIGURES}
    columns: list[Any] = [Activity.sport_type]
    for window in WINDOWS:
        since = starts[window]
        cond = Activity.start_time >= since if since is not None else None

        def agg(expr: ColumnElement[Any], cond: Any = cond) -> ColumnElement[Any]:
            return expr.filter(cond) if cond is not None else expr

        columns.append(agg(func.count(Activity.id)).label(f"{window}_count"))
        columns += [func.coalesce(agg(func.sum(shown[name])), 0.0).label(f"{window}_{name}") for name in FIGURES]
    columns += [func.max(shown["distance_m"]).label("max_distance"),
                func.max(shown["elevation_gain_m"]).label("max_gain")]
    rows = db.session.execute(
        select(*columns).where(Activity.user_id == owner.id,
                               visible_sql(viewer.id, Activity.user_id, Activity.visibility, owner.is_private))
        .group_by(Activity.sport_type)).all()
    out: dict[str, Any] = {window: {} for window in WINDOWS}
    for row in rows:
        m = row._mapping
        for window in WINDOWS:
            if m[f"{window}_count"]:
                out[window][row.sport_type] = {"count": int(m[f"{window}_count"]),
                                               **{name: round(float(m[f"{window}_{name}"]), 1) for name in FIGURES}}
    rides = [r for r in rows if r.sport_type == "cycling"]
    out["biggest_ride_distance_m"] = float(rides[0].max_distance or 0.0) if rides else 0.0
    gains = [float(r.max_gain) for r in rows if r.sport_type == "cycling" and r.max_gain is not None]
    out["biggest_climb_elevation_gain_m"] = max(gains, default=0.0)
    return out
