"""Recovery on a day: a status with its reasons, each against the athlete's own baseline, never a black box.

* **Sleep**: last night's counted sleep (one session per night, device > manual > estimated) against the
  athlete's need — the median of their counted nights over the 28 before, at least 7 h — and regularity: the
  spread (standard deviation) of their mid-sleep times over the last 7 nights; over 60 minutes is irregular.
* **Resting heart rate**: the day's (latest) value against the mean of the 28 days before; notable when above it
  by more than the smallest worthwhile change, half the baseline's standard deviation (at least 2 bpm).
* **HRV**: the 7-day mean of ln(RMSSD) against the 60 days before (mean ± half a standard deviation): below
  that band is notable (the body coping less well with its load), above it is a good sign.
* **Load**: form (fitness − fatigue) on the day; below −20 is notable, below −30 strongly so.

Status: ``recovered`` (nothing notable against), ``fair`` (one thing), ``strained`` (two or more), ``unknown``
(no sleep, heart-rate or load data at all).
"""

from __future__ import annotations

import math
import statistics
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from domain.algorithms import sleep as sleep_rules
from domain.health import metrics
from domain.insights import loads
from models import SleepSession, User, db

MIN_NEED_MIN = 7 * 60
IRREGULAR_MIN = 60.0
MIN_RHR_SWC = 2.0
FORM_TIRED, FORM_VERY_TIRED = -20.0, -30.0


def nights(user: User, day: date, zone: ZoneInfo, days: int) -> list[tuple[date, float, float]]:
    """(morning, minutes asleep, mid-sleep as minutes from local midnight of the morning) of each counted night
    ending on the mornings of the ``days`` days up to ``day``."""
    lo = datetime.combine(day - timedelta(days=days), time(12), zone)
    hi = datetime.combine(day, time(18), zone)
    sessions = list(db.session.scalars(select(SleepSession).where(
        SleepSession.user_id == user.id, SleepSession.end_at > lo, SleepSession.start_at < hi)))
    counted = sleep_rules.counted_sessions(sleep_rules.Night(s.id, s.source, s.start_at, s.end_at) for s in sessions)
    by_morning: dict[date, list[SleepSession]] = {}
    for s in sessions:
        if s.id in counted:
            by_morning.setdefault(s.end_at.astimezone(zone).date(), []).append(s)
    out = []
    for morning, group in sorted(by_morning.items()):
        minutes = sum((s.end_at - s.start_at).total_seconds() for s in group) / 60.0
        main = max(group, key=lambda s: s.end_at - s.start_at)
        mid = main.start_at + (main.end_at - main.start_at) / 2
        midnight = datetime.combine(morning, time(0), zone)
        out.append((morning, minutes, (mid - midnight).total_seconds() / 60.0))
    return out


def _sleep_reasons(user: User, day: date, zone: ZoneInfo) -> list[dict[str, Any]]:
    found = nights(user, day, zone, 29)
    reasons: list[dict[str, Any]] = []
    last = next((n for n in found if n[0] == day), None)
    before = [m for d, m, _ in found if d < day]
    need = max(MIN_NEED_MIN, statistics.median(before)) if len(before) >= 5 else 8 * 60.0
    if last is not None:
        short = last[1] < need - 30
        reasons.append({"factor": "sleep", "notable": short, "direction": "worse" if short else "ok",
                        "value": round(last[1]), "baseline": round(need), "unit": "min",
                        "text": (f"Slept {last[1] / 60:.1f} h against a need of {need / 60:.1f} h." if short else
                                 f"Slept {last[1] / 60:.1f} h, enough for your {need / 60:.1f} h need.")})
    week = [mid for d, _, mid in found if d > day - timedelta(days=7)]
    if len(week) >= 4:
        spread = statistics.pstdev(week)
        irregular = spread > IRREGULAR_MIN
        reasons.append({"factor": "sleep_regularity", "notable": irregular, "direction": "worse" if irregular
                        else "ok", "value": round(spread), "baseline": IRREGULAR_MIN, "unit": "min",
                        "text": f"Your mid-sleep time varied by {spread:.0f} min over the last {len(week)} nights"
                                + (" (irregular)." if irregular else ".")})
    return reasons


def _rhr_reason(user: User, day: date, zone: ZoneInfo) -> dict[str, Any] | None:
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    start = datetime.combine(day, time(0), zone)
    today = metrics.series(user.id, "resting_heart_rate", start, end)
    base = [v for _, v in metrics.series(user.id, "resting_heart_rate", start - timedelta(days=28), start)]
    if not today or len(base) < 5:
        return None
    value, mean = today[-1][1], statistics.fmean(base)
    swc = max(MIN_RHR_SWC, 0.5 * statistics.pstdev(base))
    high = value > mean + swc
    return {"factor": "resting_heart_rate", "notable": high, "direction": "worse" if high else "ok",
            "value": round(value, 1), "baseline": round(mean, 1), "smallest_worthwhile_change": round(swc, 1),
            "unit": "bpm", "text": f"Resting heart rate {value:.0f} bpm against your usual {mean:.0f}"
                                   + (f" (+{value - mean:.0f}, beyond the ±{swc:.1f} of normal day-to-day change)."
                                      if high else ".")}


def _hrv_reason(user: User, day: date, zone: ZoneInfo) -> dict[str, Any] | None:
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    week = [math.log(v) for _, v in metrics.series(user.id, "hrv_rmssd", end - timedelta(days=7), end) if v > 0]
    base = [math.log(v) for _, v in metrics.series(user.id, "hrv_rmssd", end - timedelta(days=67),
                                                   end - timedelta(days=7)) if v > 0]
    if len(week) < 3 or len(base) < 10:
        return None
    now, mean = statistics.fmean(week), statistics.fmean(base)
    swc = 0.5 * statistics.pstdev(base)
    direction = "worse" if now < mean - swc else "better" if now > mean + swc else "ok"
    return {"factor": "hrv", "notable": direction == "worse", "direction": direction, "value": round(now, 3),
            "baseline": round(mean, 3), "smallest_worthwhile_change": round(swc, 3), "unit": "ln(ms)",
            "text": {"worse": "HRV (7-day ln RMSSD) is below your normal range.",
                     "better": "HRV (7-day ln RMSSD) is above your normal range.",
                     "ok": "HRV (7-day ln RMSSD) is within your normal range."}[direction]}


def _load_reason(user: User, day: date) -> dict[str, Any] | None:
    row = loads.series_at(user.id, day)
    if row is None:
        return None
    form = row.form
    tired = form < FORM_TIRED
    return {"factor": "load", "notable": tired, "direction": "worse" if tired else "ok", "value": round(form, 1),
            "baseline": FORM_TIRED, "unit": "form",
            "text": (f"Form {form:.0f}: recent load is well above what you are used to." if form < FORM_VERY_TIRED
                     else f"Form {form:.0f}: carrying fatigue from recent training." if tired
                     else f"Form {form:.0f}: recent load is within what you are used to.")}


def recovery(user: User, day: date) -> dict[str, Any]:
    zone = ZoneInfo(user.preferences.timezone)
    reasons = _sleep_reasons(user, day, zone)
    for reason in (_rhr_reason(user, day, zone), _hrv_reason(user, day, zone), _load_reason(user, day)):
        if reason is not None:
            reasons.append(reason)
    notable = sum(1 for r in reasons if r["notable"])
    status = "unknown" if not reasons else "recovered" if notable == 0 else "fair" if notable == 1 else "strained"
    return {"date": day, "status": status, "reasons": reasons}
