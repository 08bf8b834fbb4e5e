"""What the file writers (GPX, TCX, FIT) share: timestamps as text, distance along the track, per-foot cadence."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from domain.algorithms.geo import bridged_distance
from domain.algorithms.track import Track

#: Sports whose cadence we store per step (both feet); the formats record it per foot.
FOOT_SPORTS = frozenset({"running", "walking", "hiking"})


def format_time(t: float) -> str:
    """ISO 8601 UTC; fractional seconds (ms) only when the time is not a whole second."""
    ms = round(t * 1000.0)
    sec, frac = divmod(ms, 1000)
    base = datetime.fromtimestamp(sec, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        return f"{base}.{frac:03d}".rstrip("0") + "Z"
    return base + "Z"


def distance_along(track: Track) -> np.ndarray:
    """Metres along the track at each point, position gaps bridged (a tunnel does not reset the distance)."""
    return bridged_distance(track.lat, track.lon)[0]


def cadence_as_written(track: Track, sport: str | None) -> np.ndarray:
    """Cadence as the formats record it: per foot for foot sports (we store steps per minute)."""
    return track.cadence / 2.0 if (sport or track.sport) in FOOT_SPORTS else track.cadence


def lap_bounds(track: Track) -> list[tuple[int, int]]:
    """Point ranges [start, end) of the track's laps (one lap when the file reported none)."""
    n = len(track)
    if n == 0:
        return []
    starts = sorted({int(i) for i in np.searchsorted(track.time, np.asarray(track.laps, dtype=float))
                     if 0 < int(i) < n} | {0})
    return [(a, b) for a, b in zip(starts, [*starts[1:], n], strict=True) if b > a]
