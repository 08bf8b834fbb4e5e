"""Training load, heart-rate zones and the fitness / fatigue / form model: pure functions of numbers.

Conventions (docs/insights.md states them for athletes):

* **Heart-rate reserve** ``HRr = (HR − resting) / (max − resting)``, clipped to [0, 1].
* **Banister TRIMP** = Σ Δt[min] · HRr · a · e^(b · HRr), with (a, b) = (0.64, 1.92) for men and (0.86, 1.67)
  for women; for an athlete who gave no sex (or 'X') the mean of the two weightings.
* **HRSS** scales TRIMP so that one hour at the lactate-threshold heart rate scores 100.
* **Power TSS** = hours · IF² · 100 with IF = normalized power / FTP (normalized power: the 4th-power mean of the
  30 s rolling average of power).
* **Session RPE load**: perceived exertion (1–10) × minutes, and as training load on the same scale as TSS:
  60 minutes at RPE 7 ("hard", about threshold) = 100.
* **Fitness / fatigue** are exponentially weighted daily loads with time constants 42 and 7 days:
  ``x_d = x_{d-1} + (load_d − x_{d-1}) · (1 − e^(−1/τ))``; **form** = fitness − fatigue of the same day;
  **ramp** = fitness − fitness seven days before; the **acute:chronic ratio** = fatigue / fitness.
* **Monotony** = mean / standard deviation of the last 7 daily loads; **strain** = their sum × monotony.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

#: Time constants of the fitness (chronic) and fatigue (acute) loads, in days.
FITNESS_DAYS = 42.0
FATIGUE_DAYS = 7.0
K_FITNESS = 1.0 - math.exp(-1.0 / FITNESS_DAYS)
K_FATIGUE = 1.0 - math.exp(-1.0 / FATIGUE_DAYS)

#: Defaults when the athlete set nothing (stated in docs/insights.md).
DEFAULT_RESTING_HR = 60.0
DEFAULT_AGE = 35
#: An unknown intensity (no heart rate, power or RPE): a steady aerobic session, IF 0.65 (about 42 per hour).
DEFAULT_INTENSITY_FACTOR = 0.65
#: Gaps between samples longer than this are pauses: they add no time in a zone and no TRIMP.
MAX_SAMPLE_GAP_S = 30.0

_TRIMP_WEIGHTS = {"M": (0.64, 1.92), "F": (0.86, 1.67)}


def tanaka_max_hr(age: float) -> float:
    """Age-predicted maximum heart rate (Tanaka: 208 − 0.7 × age)."""
    return 208.0 - 0.7 * age


def max_hr_of(measured: float | None, birth_year: int | None, year: int) -> float:
    """The athlete's own maximum heart rate if they set it, else Tanaka's prediction from their age."""
    if measured:
        return float(measured)
    age = year - birth_year if birth_year else DEFAULT_AGE
    return tanaka_max_hr(age)


# --- zones ---------------------------------------------------------------------------------------------------

#: Lower bounds of zones 2–5 as fractions of maximum heart rate (zone 1 is everything below zone 2).
MAX_HR_ZONES = (0.60, 0.70, 0.80, 0.90)
#: Lower bounds of zones 2–5 as fractions of lactate-threshold heart rate, when the athlete set one.
THRESHOLD_ZONES = (0.85, 0.90, 0.95, 1.00)


def zone_bounds(max_hr: float, threshold_hr: float | None) -> list[float]:
    """Heart rates (bpm) where zones 2, 3, 4 and 5 begin."""
    if threshold_hr:
        return [round(threshold_hr * f, 1) for f in THRESHOLD_ZONES]
    return [round(max_hr * f, 1) for f in MAX_HR_ZONES]


def sample_durations(t: np.ndarray) -> np.ndarray:
    """Seconds each sample stands for (the time to the next sample; pauses longer than MAX_SAMPLE_GAP_S count
    nothing, the last sample counts nothing)."""
    if len(t) < 2:
        return np.zeros(len(t))
    dt = np.diff(t.astype(np.float64), append=t[-1])
    dt[(dt < 0) | (dt > MAX_SAMPLE_GAP_S) | ~np.isfinite(dt)] = 0.0
    return dt


def time_in_zones(t: np.ndarray, hr: np.ndarray, bounds: Sequence[float]) -> list[float]:
    """Seconds spent in each of the 5 zones (samples without a heart rate count in none)."""
    dt = sample_durations(t)
    ok = np.isfinite(hr) & (hr > 0)
    zone = np.searchsorted(np.asarray(bounds, dtype=np.float64), hr[ok], side="right")
    seconds = np.bincount(zone, weights=dt[ok], minlength=5)
    return [round(float(s), 1) for s in seconds[:5]]


# --- loads ---------------------------------------------------------------------------------------------------

def trimp_weight(hrr: np.ndarray | float, sex: str | None) -> np.ndarray | float:
    """Banister's intensity weighting a·e^(b·HRr) (the mean of both sexes' for an unspecified one)."""
    if sex in _TRIMP_WEIGHTS:
        a, b = _TRIMP_WEIGHTS[sex]
        return a * np.exp(b * hrr)
    (a_m, b_m), (a_f, b_f) = _TRIMP_WEIGHTS["M"], _TRIMP_WEIGHTS["F"]
    return 0.5 * (a_m * np.exp(b_m * hrr) + a_f * np.exp(b_f * hrr))


def hr_reserve(hr: np.ndarray | float, resting: float, max_hr: float) -> np.ndarray | float:
    span = max(max_hr - resting, 1.0)
    return np.clip((np.asarray(hr, dtype=np.float64) - resting) / span, 0.0, 1.0)


def banister_trimp(t: np.ndarray, hr: np.ndarray, resting: float, max_hr: float, sex: str | None) -> float:
    """Banister's TRIMP of a heart-rate series (samples without a heart rate add nothing)."""
    minutes = sample_durations(t) / 60.0
    ok = np.isfinite(hr) & (hr > 0)
    hrr = hr_reserve(hr[ok], resting, max_hr)
    return float(np.sum(minutes[ok] * hrr * trimp_weight(hrr, sex)))


def hrss(trimp: float, resting: float, max_hr: float, threshold_hr: float, sex: str | None) -> float:
    """TRIMP scaled so that one hour at the threshold heart rate scores 100."""
    hrr = float(hr_reserve(threshold_hr, resting, max_hr))
    hour_at_threshold = 60.0 * hrr * float(trimp_weight(hrr, sex))
    return 100.0 * trimp / hour_at_threshold if hour_at_threshold > 0 else 0.0


def default_threshold_hr(resting: float, max_hr: float) -> float:
    """Without a measured threshold: 85 % of the heart-rate reserve above resting (Karvonen's threshold)."""
    return resting + 0.85 * (max_hr - resting)


def normalized_power(t: np.ndarray, power: np.ndarray) -> float | None:
    """Normalized power: the 4th-power mean of the 30 s rolling mean of power (resampled to 1 s)."""
    ok = np.isfinite(power)
    if ok.sum() < 30:
        return None
    tt, pp = t[ok].astype(np.float64), np.maximum(power[ok], 0.0)
    grid = np.arange(tt[0], tt[-1] + 1.0, 1.0)
    if len(grid) < 30:
        return None
    per_second = np.interp(grid, tt, pp)
    rolling = np.convolve(per_second, np.ones(30) / 30.0, mode="valid")
    return float(np.mean(rolling ** 4) ** 0.25)


def power_tss(duration_s: float, np_watts: float, ftp: float) -> float:
    intensity = np_watts / ftp
    return duration_s / 3600.0 * intensity * intensity * 100.0


def srpe(rpe: int, minutes: float) -> float:
    """Session RPE (Foster): perceived exertion × minutes."""
    return float(rpe) * minutes


def srpe_load(rpe: int, minutes: float) -> float:
    """Session RPE on the TSS scale: 60 minutes at RPE 7 = 100."""
    return srpe(rpe, minutes) * 100.0 / 420.0


def estimated_load(minutes: float) -> float:
    """A session with nothing to measure its intensity by: IF 0.65 for its moving time."""
    return minutes / 60.0 * DEFAULT_INTENSITY_FACTOR ** 2 * 100.0


# --- the daily series ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Day:
    day: date
    load: float
    fitness: float
    fatigue: float
    form: float
    ramp: float | None
    acwr: float | None
    monotony: float | None
    strain: float | None


def series(start: date, loads: Sequence[float], fitness0: float = 0.0, fatigue0: float = 0.0,
           history: Sequence[Day] = ()) -> list[Day]:
    """The daily series from ``start`` for these daily loads, continuing from yesterday's fitness and fatigue
    (``fitness0``/``fatigue0``) and ``history`` (the up to 7 days before ``start``, for ramp, monotony, strain)."""
    out: list[Day] = []
    recent = deque(list(history)[-7:], maxlen=7)  # the 7 days before the one computed (O(1) per day)
    fit, fat = fitness0, fatigue0
    for i, load in enumerate(loads):
        fit += (load - fit) * K_FITNESS
        fat += (load - fat) * K_FATIGUE
        last7 = [d.load for d in list(recent)[-6:]] + [load]
        seven_before = recent[0] if len(recent) == 7 else None
        monotony = None
        if len(last7) == 7:
            mean = sum(last7) / 7.0
            sd = math.sqrt(sum((x - mean) ** 2 for x in last7) / 7.0)
            monotony = mean / sd if sd > 1e-9 else None
        # Unrounded: an incremental recompute continues from stored values and must equal a full rebuild.
        day = Day(
            day=start + timedelta(days=i), load=load, fitness=fit, fatigue=fat, form=fit - fat,
            ramp=fit - seven_before.fitness if seven_before is not None else None,
            acwr=fat / fit if fit > 1e-6 else None, monotony=monotony,
            strain=sum(last7) * monotony if monotony is not None else None,
        )
        out.append(day)
        recent.append(day)
    return out


def daily_loads(start: date, end: date, items: Iterable[tuple[date, float]]) -> list[float]:
    """Each day's summed load from ``start`` to ``end`` inclusive (days without a session: 0)."""
    n = (end - start).days + 1
    loads = [0.0] * max(n, 0)
    for day, load in items:
        i = (day - start).days
        if 0 <= i < n:
            loads[i] += load
    return loads


# --- local time ----------------------------------------------------------------------------------------------

def local_date(moment: datetime, tz_name: str) -> date:
    return moment.astimezone(ZoneInfo(tz_name)).date()


def week_start(day: date) -> date:
    """The Monday of the week that holds ``day``."""
    return day - timedelta(days=day.weekday())


def next_weekly_slot(after: datetime, tz_name: str, weekday: int, at: time) -> datetime:
    """The first moment strictly after ``after`` at which it is ``weekday`` (0 = Monday) ``at`` local time in
    ``tz_name`` (an aware datetime in that zone). A local time that a spring-forward change skips moves on by the
    jump (02:30 → 03:30); one that an autumn change repeats is taken at its first occurrence."""
    tz = ZoneInfo(tz_name)
    local = after.astimezone(tz)
    day = local.date() + timedelta(days=(weekday - local.weekday()) % 7)
    for _ in range(3):
        candidate = _wall(day, at, tz)
        if candidate > after:
            return candidate
        day += timedelta(days=7)
    raise AssertionError("unreachable: a week later is always after")


def _wall(day: date, at: time, tz: ZoneInfo) -> datetime:
    naive = datetime.combine(day, at)
    aware = naive.replace(tzinfo=tz, fold=0)
    # A wall time inside a spring-forward gap does not exist: round trip through UTC moves it past the gap.
    return aware.astimezone(ZoneInfo("UTC")).astimezone(tz)
