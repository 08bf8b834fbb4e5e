"""Pieces shared by the format parsers: limits, column building, sport names, running cadence."""

from __future__ import annotations

import math
import re
from array import array
from typing import Protocol

import numpy as np

from domain.algorithms.parsing.timeparse import parse_times
from domain.algorithms.track import ParseError, Track

#: Hard cap on points per file. 2 M points is ~23 days at 1 Hz; anything larger is a bomb, not an activity.
MAX_POINTS = 2_000_000

#: Time strings are converted in batches of this size so a huge file never holds millions of strings.
TIME_BATCH = 65_536

# Column slots used by the XML parsers' per-point scratch lists.
LAT, LON, ELE, HR, CAD, POWER, TEMP, RUNCAD, DIST = range(9)
N_SLOTS = 9
_NAN = math.nan


def too_many_points() -> ParseError:
    return ParseError(f"The file has more than {MAX_POINTS:,} track points, which is more than we can process")


def to_float(text: str | None) -> float:
    """float() that maps missing or unreadable values to NaN instead of raising."""
    if text is None:
        return _NAN
    try:
        return float(text)
    except ValueError:
        return _NAN


class Points(Protocol):
    """What :func:`build_track` reads: PointColumns here, or the fast GPX paths' numpy columns."""

    def __len__(self) -> int: ...

    def column(self, slot: int) -> np.ndarray: ...

    def times(self) -> np.ndarray: ...


class PointColumns:
    """Point values collected row by row into one flat array('d'), plus batch-converted times.

    One ``array.extend`` per point is the cheapest append CPython offers, and array('d') stores raw
    doubles, so memory stays at 8 bytes per value even for multi-million-point files. Callers append
    with ``flat.extend(values)`` / ``pending_times.append(text)`` directly (the hot path cannot afford
    a method call) and call :meth:`flush` whenever ``pending_times`` reaches TIME_BATCH.
    """

    __slots__ = ("_time_chunks", "count", "flat", "pending_times")

    def __init__(self) -> None:
        self.flat = array("d")
        self.pending_times: list[str | None] = []
        self._time_chunks: list[np.ndarray] = []
        self.count = 0

    def add(self, values: list[float], time_text: str | None) -> None:
        """Convenience (slow-path) append of one point."""
        self.flat.extend(values)
        self.pending_times.append(time_text)
        if len(self.pending_times) >= TIME_BATCH:
            self.flush()

    def flush(self) -> None:
        """Convert pending time strings; enforce the point cap."""
        if self.pending_times:
            self.count += len(self.pending_times)
            if self.count > MAX_POINTS:
                raise too_many_points()
            self._time_chunks.append(parse_times(self.pending_times))
            self.pending_times.clear()  # in place: the XML engine holds a reference to this list

    def __len__(self) -> int:
        return self.count + len(self.pending_times)

    def column(self, slot: int) -> np.ndarray:
        """One column as a contiguous float64 array."""
        rows = np.frombuffer(self.flat, dtype=np.float64).reshape(-1, N_SLOTS) if self.flat else \
            np.zeros((0, N_SLOTS))
        return np.ascontiguousarray(rows[:, slot])

    def times(self) -> np.ndarray:
        self.flush()
        return np.concatenate(self._time_chunks) if self._time_chunks else np.zeros(0)


_SPORT_EXACT: dict[str, str | None] = {
    "": None,
    "generic": "other", "other": "other", "all": "other",
    "run": "running", "running": "running", "trail running": "running", "treadmill": "running",
    "treadmill running": "running", "virtual run": "virtual_run", "jogging": "running",
    "bike": "cycling", "biking": "cycling", "cycling": "cycling", "ride": "cycling",
    "mountain biking": "cycling", "road biking": "cycling",
    "swim": "swimming", "swimming": "swimming", "lap swimming": "swimming", "open water": "swimming",
    "walk": "walking", "walking": "walking",
    "hike": "hiking", "hiking": "hiking", "mountaineering": "hiking",
    "strength": "strength", "strength training": "strength", "weight training": "strength",
    "weighttraining": "strength",
    # The fuller list: labels that name one of our sports without doubt.
    "virtual ride": "virtual_ride", "virtual cycling": "virtual_ride", "e biking": "e_bike_ride",
    "ebike ride": "e_bike_ride", "e bike ride": "e_bike_ride", "rowing": "rowing", "indoor rowing": "rowing",
    "kayaking": "kayaking", "canoeing": "canoeing", "stand up paddleboarding": "paddleboarding",
    "paddleboarding": "paddleboarding", "alpine skiing": "alpine_skiing",
    "downhill skiing": "alpine_skiing", "resort skiing": "alpine_skiing", "cross country skiing": "nordic_skiing",
    "nordic skiing": "nordic_skiing", "backcountry skiing": "backcountry_ski", "snowboarding": "snowboarding",
    "snowshoeing": "snowshoeing", "yoga": "yoga", "workout": "workout", "hiit": "workout",
    "elliptical": "elliptical",
}
# Substring fallbacks, first match wins ("mountain biking" → cycling, "indoor_running" → running).
_SPORT_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("run", "running"), ("jog", "running"),
    ("bik", "cycling"), ("cycl", "cycling"), ("ride", "cycling"), ("velo", "cycling"),
    ("swim", "swimming"),
    ("walk", "walking"),
    ("hik", "hiking"), ("trek", "hiking"),
    ("strength", "strength"), ("weight", "strength"),
)
_SEPARATORS = re.compile(r"[\s_\-/]+")


def normalize_sport(raw: object) -> str | None:
    """Map a file's sport label (GPX <type>, TCX Sport, FIT enum name) to our sport types.

    None means the file says nothing; a label we cannot place becomes "other".
    """
    if raw is None:
        return None
    text = _SEPARATORS.sub(" ", str(raw).strip().lower()).strip()
    if text in _SPORT_EXACT:
        return _SPORT_EXACT[text]
    for key, sport in _SPORT_KEYWORDS:
        if key in text:
            return sport
    return "other"


#: Sports whose cadence is counted per step (both feet) in our tracks.
FOOT_SPORTS = frozenset({"running", "trail_running", "virtual_run", "walking", "hiking"})


def running_cadence_spm(values: np.ndarray) -> np.ndarray:
    """Running cadence in steps per minute, whatever convention the file used.

    Garmin (FIT, TCX RunCadence, GPX cad) records running cadence per foot ("strides per minute",
    ~80-95 when running) while other footpods and apps write steps per minute (~160-190), and the
    files do not say which. A per-foot value above 100 would mean more than 200 steps/min, which almost
    nobody sustains, so: when the 90th percentile of the non-zero values is at most 100 the file is
    per-foot and is doubled; otherwise it is already steps per minute and is kept.
    """
    moving = values[np.isfinite(values) & (values > 0)]
    if moving.size == 0:
        return values
    if float(np.percentile(moving, 90)) <= 100.0:
        return values * 2.0
    return values


def resolve_cadence(cadence: np.ndarray, run_cadence: np.ndarray, sport: str | None) -> np.ndarray:
    """One cadence column: rpm for cycling-like sports, steps per minute for foot sports.

    A dedicated running-cadence field (TCX RunCadence) is always foot cadence; for a foot sport the
    generic cadence field is foot cadence too (that is how Garmin writes runs in FIT and GPX).
    """
    if sport in FOOT_SPORTS:
        source = np.where(np.isnan(run_cadence), cadence, run_cadence)
        return running_cadence_spm(source)
    if not np.isnan(run_cadence).all():
        return np.where(np.isnan(cadence), running_cadence_spm(run_cadence), cadence)
    return cadence


def build_track(points: Points, *, sport: str | None = None, name: str | None = None,
                device: str | None = None, laps: list[float] | None = None) -> Track:
    """Turn parsed XML columns into a Track (raises when the file had no points at all)."""
    if len(points) == 0:
        raise ParseError("The file contains no track points")
    return Track(
        time=points.times(), lat=points.column(LAT), lon=points.column(LON), ele=points.column(ELE),
        hr=points.column(HR), cadence=resolve_cadence(points.column(CAD), points.column(RUNCAD), sport),
        power=points.column(POWER), temp=points.column(TEMP),
        laps=clean_laps(laps), sport=sport, name=name, device=device,
    )


def clean_laps(laps: list[float] | None) -> list[float]:
    return sorted({x for x in (laps or []) if math.isfinite(x)})


def clean_text(text: str | None, limit: int = 200) -> str | None:
    """Collapse whitespace and bound the length of a free-text field (names, creators)."""
    if text is None:
        return None
    cleaned = " ".join(text.split())[:limit]
    return cleaned or None
