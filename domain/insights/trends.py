"""Trends per local week or month: volume per sport, speed and heart-rate efficiency, best-effort progression.

Everything is computed from the activities when asked (a handful of grouped queries over the athlete's own rows,
served by the ``(user_id, start_time)`` index), in the athlete's time zone.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from domain import clock
from domain.errors import refuse
from models import User, db

PERIODS = {"week": 12, "month": 12}
#: Best efforts whose progression is shown (running).
EFFORTS = ("1k", "5k", "10k", "Half-Marathon")

_VOLUME_SQL = text("""
    SELECT date_trunc(:unit, a.start_time AT TIME ZONE :tz)::date AS period, a.sport_type,
           count(*) AS n, sum(a.distance_m) AS distance_m, sum(a.moving_time_s) AS moving_time_s,
           sum(coalesce(a.elevation_gain_m, 0)) AS elevation_gain_m,
           sum(a.distance_m) FILTER (WHERE a.avg_hr > 0) AS hr_distance_m,
           sum(a.moving_time_s) FILTER (WHERE a.avg_hr > 0) AS hr_time_s,
           sum(a.avg_hr * a.moving_time_s) FILTER (WHERE a.avg_hr > 0) AS beats,
           sum(coalesce(l.load, 0)) AS load
    FROM activities a LEFT JOIN activity_loads l ON l.activity_id = a.id
    WHERE a.user_id = :u AND a.start_time >= :lo AND a.start_time < :hi
    GROUP BY 1, 2 ORDER BY 1, 2""")

_EFFORTS_SQL = text("""
    SELECT date_trunc(:unit, a.start_time AT TIME ZONE :tz)::date AS period, e->>'name' AS name,
           min((e->>'elapsed_time_s')::float) AS best_s
    FROM activities a, jsonb_array_elements(coalesce(a.details->'best_efforts', '[]'::jsonb)) e
    WHERE a.user_id = :u AND a.start_time >= :lo AND a.start_time < :hi AND e->>'name' = ANY(:names)
    GROUP BY 1, 2 ORDER BY 1, 2""")


def _period_starts(unit: str, today: date, n: int) -> list[date]:
    if unit == "week":
        first = today - timedelta(days=today.weekday())
        return [first - timedelta(weeks=i) for i in range(n - 1, -1, -1)]
    starts = []
    y, m = today.year, today.month
    for _ in range(n):
        starts.append(date(y, m, 1))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return starts[::-1]


def trends(user: User, period: str) -> dict[str, Any]:
    if period not in PERIODS:
        refuse(422, "period must be week or month.", errors={"query": {"period": ["week or month"]}})
    tz_name = user.preferences.timezone
    tz = ZoneInfo(tz_name)
    today = clock.now().astimezone(tz).date()
    starts = _period_starts(period, today, PERIODS[period])
    lo = datetime.combine(starts[0], datetime.min.time(), tz)
    hi = datetime.combine(today + timedelta(days=1), datetime.min.time(), tz)
    params = {"unit": period, "tz": tz_name, "u": user.id, "lo": lo, "hi": hi}
    by_period: dict[date, dict[str, Any]] = {s: {"sports": {}, "load": 0.0} for s in starts}
    for r in db.session.execute(_VOLUME_SQL, params):
        bucket = by_period.get(r.period)
        if bucket is None:
            continue
        speed = r.distance_m / r.moving_time_s if r.moving_time_s else None
        # Efficiency: metres per heartbeat (distance per beat at the athlete's own heart rate); it rises as
        # aerobic fitness improves at the same effort.
        efficiency = r.hr_distance_m / r.beats * 60.0 if r.beats else None
        bucket["sports"][r.sport_type] = {
            "count": int(r.n), "distance_m": round(float(r.distance_m or 0), 1),
            "moving_time_s": round(float(r.moving_time_s or 0)),
            "elevation_gain_m": round(float(r.elevation_gain_m or 0), 1),
            "avg_speed_mps": round(float(speed), 3) if speed else None,
            "metres_per_heartbeat": round(float(efficiency), 3) if efficiency else None}
        bucket["load"] += float(r.load or 0)
    efforts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in db.session.execute(_EFFORTS_SQL, {**params, "names": list(EFFORTS)}):
        efforts[r.name].append({"period_start": r.period, "best_s": round(float(r.best_s), 1)})
    return {
        "period": period, "timezone": tz_name,
        "items": [{"period_start": s, "load": round(by_period[s]["load"], 1), "sports": by_period[s]["sports"]}
                  for s in starts],
        "best_efforts": {name: efforts.get(name, []) for name in EFFORTS},
    }
