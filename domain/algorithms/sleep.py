"""Sleep from phone use, and one night counted once when several sources recorded it.

Pure. The estimator sees only when the phone was used (screen on/off, unlocks) and takes the main sleep period
as the longest plausible stretch without use inside the athlete's night window. Phone-based estimators of
this kind are off by roughly 20–30 minutes at each edge, which is the uncertainty we state; the confidence
says how much the events support the estimate at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

#: Stated error of each edge of an estimate, in minutes.
UNCERTAINTY_MIN = 25
#: People fall asleep a while after putting the phone down; the start is moved by this.
ONSET_LATENCY = timedelta(minutes=10)
#: A stretch without use shorter than this is not a night's sleep; longer than the maximum is a phone left
#: in a drawer.
MIN_SLEEP = timedelta(hours=3)
MAX_SLEEP = timedelta(hours=14)
#: A glance at the phone in the night (the time, an alarm) this short does not end the sleep period.
BRIEF_USE = timedelta(minutes=2)
#: Two sources overlapping by more than this share of the shorter session describe the same night.
SAME_NIGHT_OVERLAP = 0.3

#: One night counted once: the higher number wins (a device measured it; the athlete said so; we guessed).
SOURCE_PRIORITY = {"healthkit": 3, "health_connect": 3, "manual": 2, "estimated": 1}

ACTIVE = ("screen_on", "unlock")


@dataclass(frozen=True)
class Estimate:
    start: datetime
    end: datetime
    uncertainty_min: int
    confidence: float
    interruptions: int


def _use_periods(events: Sequence[tuple[datetime, str]]) -> list[tuple[datetime, datetime]]:
    """Periods the phone was in use: from a screen_on/unlock to the next screen_off (an unlock with no
    screen_off after it counts as an instant of use)."""
    periods: list[tuple[datetime, datetime]] = []
    started: datetime | None = None
    last: datetime | None = None
    for at, kind in events:
        if kind in ACTIVE:
            if started is None:
                started = at
            last = at
        elif kind == "screen_off":
            periods.append((started if started is not None else at, at))
            started, last = None, None
    if started is not None and last is not None:
        periods.append((started, last))
    return periods


def estimate_sleep(events: Iterable[tuple[datetime, str]], window_start: datetime,
                   window_end: datetime) -> Estimate | None:
    """The main sleep period inside [window_start, window_end), or None when the events show none.

    ``events`` are (aware time, type) in any order; only those in the window count. A window's edge bounds a
    stretch only where the phone was used on that side of it, so a phone silent all night gives no estimate.
    """
    inside = sorted((at, kind) for at, kind in events if window_start <= at < window_end)
    periods = _use_periods(inside)
    if not periods:
        return None
    # Brief glances split a night into pieces: merge pieces separated only by them.
    gaps: list[tuple[datetime, datetime, int]] = []  # (start, end, interruptions bridged)
    previous_end = window_start
    for use_start, use_end in [*periods, (window_end, window_end)]:
        if use_start > previous_end:
            gaps.append((previous_end, use_start, 0))
        previous_end = max(previous_end, use_end)
    merged: list[tuple[datetime, datetime, int]] = []
    for gap in gaps:
        if merged and gap[0] - merged[-1][1] <= BRIEF_USE and min(gap[1] - gap[0], merged[-1][1] - merged[-1][0]) \
                >= timedelta(minutes=30):
            start, _, count = merged[-1]
            merged[-1] = (start, gap[1], count + 1 + gap[2])
        else:
            merged.append(gap)
    plausible = [g for g in merged if MIN_SLEEP <= g[1] - g[0] <= MAX_SLEEP
                 and (g[0] > window_start or g[1] < window_end)]
    if not plausible:
        return None
    # A stretch between putting the phone down and picking it up beats a longer one that only the window ends
    # (the morning after the phone was last used is not sleep).
    start, end, interruptions = max(plausible, key=lambda g: (g[0] > window_start and g[1] < window_end,
                                                              g[1] - g[0]))
    bounded_before = start > window_start  # the phone was put down (not merely the window opening)
    bounded_after = end < window_end
    hours = (end - start).total_seconds() / 3600
    confidence = 0.9
    if not bounded_before or not bounded_after:
        confidence -= 0.35  # one edge is only the window's: we don't know when the night began or ended
    if not 5.0 <= hours <= 10.5:
        confidence -= 0.2  # unusually short or long for a main sleep period
    confidence -= min(0.2, 0.05 * interruptions)
    if len(periods) < 3:
        confidence -= 0.1  # too little use to tell the phone was at hand at all
    sleep_start = min(start + ONSET_LATENCY, end - MIN_SLEEP / 2) if bounded_before else start
    return Estimate(start=sleep_start, end=end, uncertainty_min=UNCERTAINTY_MIN,
                    confidence=round(max(0.05, min(1.0, confidence)), 2), interruptions=interruptions)


@dataclass(frozen=True)
class Night:
    id: int
    source: str
    start: datetime
    end: datetime


def _overlap_share(a: Night, b: Night) -> float:
    overlap = (min(a.end, b.end) - max(a.start, b.start)).total_seconds()
    shorter = min((a.end - a.start).total_seconds(), (b.end - b.start).total_seconds())
    return overlap / shorter if shorter > 0 and overlap > 0 else 0.0


def counted_sessions(sessions: Iterable[Night]) -> set[int]:
    """The ids of the sessions that count: where sessions of different sources overlap (the same night), only
    the highest-priority one (device > manual > estimated; then the longer; then the older id) counts.
    Sessions of one source never hide each other (two naps are two naps)."""
    ranked = sorted(sessions, key=lambda s: (-SOURCE_PRIORITY.get(s.source, 0), -(s.end - s.start).total_seconds(),
                                             s.id))
    kept: list[Night] = []
    for session in ranked:
        if any(k.source != session.source and _overlap_share(k, session) > SAME_NIGHT_OVERLAP for k in kept):
            continue
        kept.append(session)
    return {s.id for s in kept}
