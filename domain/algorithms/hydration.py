"""The day's drinking goal, its schedule over waking hours, and when a reminder is due.

Pure: the beat job in ``domain.health.hydration`` gathers the athlete's day and sends what this decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

#: Drinks per day (ml) for a day without training, by sex: about 80 % of the adequate total water intake of
#: adults (2.5 L men, 2.0 L women), the rest coming with food. Unknown or other: the mean.
BASELINE_ML = {"M": 2000, "F": 1600}
DEFAULT_BASELINE_ML = 1800
#: Sweat rates in ml per hour at about 20 °C for a moderate session (athletes commonly lose 0.3–2 L/h).
SWEAT_ML_PER_H = {"running": 1000, "cycling": 800, "hiking": 600, "walking": 400, "swimming": 300, "strength": 500}
DEFAULT_SWEAT_ML_PER_H = 600
#: Warmer air sweats more: +10 % per degree above 20 °C, capped at double.
HEAT_PER_DEGREE = 0.10
#: A reminder only when the athlete is at least this far behind the schedule: a sip short is not worth a push.
MIN_BEHIND_ML = 150


def baseline_ml(sex: str | None) -> int:
    return BASELINE_ML.get(sex or "", DEFAULT_BASELINE_ML)


def sweat_loss_ml(sport: str | None, duration_s: float, temperature_c: float | None = None) -> float:
    rate = float(SWEAT_ML_PER_H.get(sport or "", DEFAULT_SWEAT_ML_PER_H))
    if temperature_c is not None and temperature_c > 20:
        rate = rate * min(2.0, 1.0 + HEAT_PER_DEGREE * (temperature_c - 20))
    return max(0.0, rate * duration_s / 3600.0)


def daily_goal_ml(sex: str | None, sweat_ml: float, override_ml: int | None = None) -> int:
    """The athlete's own goal if they set one, else the baseline; either way plus the day's sweat loss, to the
    next 50 ml."""
    base = override_ml if override_ml is not None else baseline_ml(sex)
    return int(-(-(base + sweat_ml) // 50) * 50)


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def waking_fraction(local: time, wake_start: str, wake_end: str) -> float:
    """How far through the waking window a local wall-clock time is: 0 before it, 1 after it, linear between.
    Wall-clock minutes, so a day shortened or lengthened by DST keeps the same schedule by the clock."""
    start, end = _minutes(parse_hhmm(wake_start)), _minutes(parse_hhmm(wake_end))
    now = _minutes(local)
    if end <= start:  # a window past midnight (a night worker): count minutes from the start, wrapping
        span = end + 1440 - start
        elapsed = (now - start) % 1440
        return min(1.0, elapsed / span) if elapsed <= span else 1.0
    if now <= start:
        return 0.0
    return min(1.0, (now - start) / (end - start))


def expected_by(local: time, goal_ml: int, wake_start: str, wake_end: str) -> float:
    return goal_ml * waking_fraction(local, wake_start, wake_end)


def in_window(local: time, start: str, end: str) -> bool:
    """[start, end) in local wall-clock time; the window may wrap midnight."""
    s, e, t = _minutes(parse_hhmm(start)), _minutes(parse_hhmm(end)), _minutes(local)
    if s == e:
        return False
    return s <= t < e if s < e else (t >= s or t < e)


@dataclass(frozen=True)
class ReminderFacts:
    local_now: datetime  # aware, in the athlete's zone
    goal_ml: int
    drunk_ml: int
    wake_start: str
    wake_end: str
    quiet_start: str | None
    quiet_end: str | None
    every_h: int
    last_sent_at: datetime | None  # aware


def slot_key(local_now: datetime) -> str:
    """The slot a reminder belongs to: the local date and hour. Both 01:xx of a DST fall-back are one slot, so
    the repeated hour can't remind twice."""
    return local_now.strftime("%Y-%m-%dT%H")


def reminder_due(facts: ReminderFacts) -> tuple[str, int] | None:
    """(slot, ml behind) when a reminder should go now, else None: inside the waking window, outside quiet
    hours, behind the schedule by at least MIN_BEHIND_ML, and at least ``every_h`` hours after the last one."""
    local = facts.local_now.timetz().replace(tzinfo=None)
    if not in_window(local, facts.wake_start, facts.wake_end):
        return None
    if facts.quiet_start and facts.quiet_end and in_window(local, facts.quiet_start, facts.quiet_end):
        return None
    if facts.last_sent_at is not None and facts.local_now - facts.last_sent_at < timedelta(hours=facts.every_h):
        return None
    behind = round(expected_by(local, facts.goal_ml, facts.wake_start, facts.wake_end) - facts.drunk_ml)
    if behind < MIN_BEHIND_ML:
        return None
    return slot_key(facts.local_now), behind
