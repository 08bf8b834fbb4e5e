"""Apple Health exports (``export.xml``, root ``<HealthData>``) → one :class:`Track` per ``<Workout>``.

An export holds every health sample of a person, so it is read as a stream (hundreds of MB are
normal) and never built into a tree. What a workout's track is made of:

* ``<Workout>`` attributes: sport (``workoutActivityType``), device (``sourceName``), the workout's
  ``startDate``/``endDate`` and the totals the file reports (``totalDistance``, ``duration``,
  ``totalEnergyBurned``; newer exports move distance and energy into ``<WorkoutStatistics>``
  children, used when the attributes are missing). ``<WorkoutEvent type="HKWorkoutEventTypeLap">``
  dates become laps.
* Route points: the ``<WorkoutRoute><Location …/>`` children written by older exports. Newer exports
  reference a GPX file in the export zip instead (``<FileReference path=…/>``); that file is not part of
  ``export.xml``, so such workouts become time-only tracks here (the route GPX can be uploaded itself).
* Heart rate: ``<Record type="HKQuantityTypeIdentifierHeartRate">`` samples anywhere in the file (exports
  list them outside the workouts, usually before them) whose ``startDate`` lies in the workout's
  [startDate, endDate]. Each sample becomes its own point (time + hr, no position), inserted among
  the route points by time without reordering the route; a sample stamped exactly at a route point's
  time is stored on that point instead, because normalize() keeps only the first of two equal times
  and would otherwise drop either the sample or the fix. Keeping raw samples (rather than
  interpolating onto route points) means a workout without a route still gets its heart rate.
* The workout's startDate / endDate are added as time-only points when they lie outside the span of
  the other points, so the track covers the real duration even when the route is short or absent.

Apple writes times as ``2016-11-14 07:25:44 -0700``; they become epoch seconds (UTC).

Document type declaration: every real export starts with ``<!DOCTYPE HealthData [ … ]>`` - an internal
subset of ELEMENT/ATTLIST declarations - so rejecting every DTD (what the GPX/TCX parsers do) would
reject every genuine export. This parser accepts a DOCTYPE only when it names ``HealthData`` and has no
external identifier (SYSTEM/PUBLIC), and still aborts on any entity declaration, external entity
reference, parameter-entity reference or skipped (undeclared) entity. Without entity declarations
nothing can expand (no billion laughs) and without external identifiers nothing is fetched (no XXE);
ELEMENT/ATTLIST declarations can at most add default attribute values, which the parser treats like
any written attribute.
"""

from __future__ import annotations

import math
import pyexpat
import re
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from domain.algorithms.parsing import xmlsafe
from domain.algorithms.parsing.common import MAX_POINTS, TIME_BATCH, clean_laps, clean_text, to_float, too_many_points
from domain.algorithms.parsing.timeparse import parse_times
from domain.algorithms.track import ParseError, Track

ROOT = "HealthData"
HEART_RATE = "HKQuantityTypeIdentifierHeartRate"
_LAP_EVENT = "HKWorkoutEventTypeLap"
_NAN = math.nan

#: workoutActivityType → our sport types; any other type is "other".
SPORTS: dict[str, str] = {
    "HKWorkoutActivityTypeRunning": "running",
    "HKWorkoutActivityTypeCycling": "cycling",
    "HKWorkoutActivityTypeSwimming": "swimming",
    "HKWorkoutActivityTypeWalking": "walking",
    "HKWorkoutActivityTypeHiking": "hiking",
    "HKWorkoutActivityTypeTraditionalStrengthTraining": "strength",
    "HKWorkoutActivityTypeFunctionalStrengthTraining": "strength",
}

#: Unit conversions for the totals the file reports; an unknown unit leaves the total out.
DISTANCE_TO_M: dict[str, float] = {"m": 1.0, "km": 1000.0, "mi": 1609.344, "yd": 0.9144, "ft": 0.3048}
DURATION_TO_S: dict[str, float] = {"s": 1.0, "min": 60.0, "h": 3600.0, "hr": 3600.0}
ENERGY_TO_KCAL: dict[str, float] = {"kcal": 1.0, "Cal": 1.0, "kJ": 1.0 / 4.184}

#: WorkoutStatistics types that carry a workout's distance (newer exports).
_DISTANCE_STATISTICS = frozenset({
    "HKQuantityTypeIdentifierDistanceWalkingRunning", "HKQuantityTypeIdentifierDistanceCycling",
    "HKQuantityTypeIdentifierDistanceSwimming", "HKQuantityTypeIdentifierDistanceWheelchair",
    "HKQuantityTypeIdentifierDistanceDownhillSnowSports",
})
_ENERGY_STATISTICS = "HKQuantityTypeIdentifierActiveEnergyBurned"
#: Bound on the laps kept per workout (a hostile file could list endless events).
_MAX_LAPS = 10_000

# Counting by bytes (see count_health_workouts): a start tag, never </Workout> or <WorkoutRoute.
_WORKOUT_TAG = re.compile(rb"<Workout[\s/>]")
# Markup whose content may hold a literal "<Workout" without it being an element.
_OPAQUE_MARKUP = re.compile(rb"<!--|<!\[CDATA\[|<\?")


class _NotHealth(Exception):
    """Raised from the first start-element callback when the root is not <HealthData>."""


# --------------------------------------------------------------------------- public API


def count_health_workouts(data: bytes | bytearray | memoryview) -> int:
    """Number of ``<Workout>`` elements in an Apple Health export (one streaming pass, no tree).

    Raises ParseError when the bytes are not a well-formed Apple Health export.

    Cost: expat checks well-formedness and the root with no Python callback after the root element
    (about half the time of a pass with a callback per element), and the workouts are counted by a
    byte search.
    In a well-formed document a literal ``<Workout`` can only be a start tag, except inside comments,
    CDATA sections or processing instructions, or in an encoding that is not ASCII-compatible; any of
    those sends the count through an expat pass with a callback instead.
    """
    root_at: list[int] = []
    parser = _new_parser()

    def on_root(name: str, _attrs: dict[str, str]) -> None:
        if name != ROOT:
            raise _NotHealth(name)
        root_at.append(parser.CurrentByteIndex)
        parser.StartElementHandler = None

    parser.StartElementHandler = on_root
    _run(parser, data)
    start = root_at[0]
    if _ascii_compatible(data) and _OPAQUE_MARKUP.search(data, start) is None:
        return sum(1 for _ in _WORKOUT_TAG.finditer(data, start))
    return _count_with_callbacks(data)


def _ascii_compatible(data: bytes | bytearray | memoryview) -> bool:
    """False for UTF-16/32 (with or without a byte order mark), where markup bytes are interleaved with NULs."""
    head = bytes(data[:4])
    return b"\x00" not in head and not head.startswith((b"\xff\xfe", b"\xfe\xff"))


def _count_with_callbacks(data: bytes | bytearray | memoryview) -> int:
    count = 0

    def on_start(name: str, _attrs: dict[str, str]) -> None:
        nonlocal count
        if name == "Workout":
            count += 1

    parser = _new_parser()
    parser.StartElementHandler = _root_checked(parser, on_start)
    _run(parser, data)
    return count


def parse_health_workout(data: bytes | bytearray | memoryview, index: int) -> Track:
    """The ``index``-th (0-based, document order) workout of an Apple Health export as a raw Track.

    One streaming pass: only that workout's route is kept, heart-rate samples are reduced to its
    time window as they are read. Raises ParseError for bad XML, a missing workout or a workout
    without any usable time.
    """
    if index < 0:
        raise ParseError(f"Workout number {index} does not exist in the Apple Health export")
    reader = _Reader(target=index)
    reader.read(data)
    if not reader.workouts:
        raise _no_such_workout(index, reader.count)
    track = _build_track(reader.workouts[0], reader.heart_rate)
    if len(track) == 0:
        raise ParseError(f"Workout number {index} of the Apple Health export has no readable start or end time")
    return track


def parse_health_workouts(data: bytes | bytearray | memoryview) -> list[Track]:
    """Every workout of an Apple Health export in document order, in a single streaming pass.

    Use this instead of calling :func:`parse_health_workout` per index (which re-reads the whole file
    each time). A workout without any readable time is returned as an empty Track (normalize() then
    rejects it on its own). Raises ParseError for bad XML or when the export has no workouts.
    """
    reader = _Reader(target=None)
    reader.read(data)
    if not reader.workouts:
        raise _no_such_workout(0, 0)
    return [_build_track(w, reader.heart_rate) for w in reader.workouts]


# --------------------------------------------------------------------------- XML plumbing


def _doctype_guard(parser: pyexpat.XMLParserType) -> Callable[[str | None, str | None, str | None, int], None]:
    """A StartDoctypeDeclHandler allowing Apple's own ``<!DOCTYPE HealthData [...]>`` (see module docstring)."""

    def start(name: str | None, system_id: str | None, public_id: str | None, _has_internal_subset: int) -> None:
        if system_id is not None or public_id is not None:
            raise xmlsafe.ForbiddenXML("it refers to an external document type definition, which is not allowed")
        if name != ROOT:
            raise xmlsafe.ForbiddenXML("it contains a document type declaration that is not Apple Health's")
        # Inside the DTD only: undeclared parameter-entity references ("%name;") are not reported by
        # any other handler, and after one expat silently skips undefined entities in the document.
        parser.DefaultHandler = _forbid_parameter_entity
        parser.EndDoctypeDeclHandler = end

    def end() -> None:
        parser.DefaultHandler = None

    return start


def _forbid_parameter_entity(text: str) -> None:
    if text.startswith("%"):
        raise xmlsafe.ForbiddenXML("it references parameter entities, which is not allowed")


def _forbid_skipped_entity(*_: Any) -> None:
    raise xmlsafe.ForbiddenXML("it references an undeclared entity, which is not allowed")


def _new_parser() -> pyexpat.XMLParserType:
    parser = xmlsafe.new_parser()
    # Entity declarations and external references still abort (set by xmlsafe); only the DOCTYPE
    # check is relaxed to Apple's internal subset.
    parser.StartDoctypeDeclHandler = _doctype_guard(parser)
    parser.SkippedEntityHandler = _forbid_skipped_entity
    return parser


def _root_checked(parser: pyexpat.XMLParserType,
                  handler: Callable[[str, dict[str, str]], None]) -> Callable[[str, dict[str, str]], None]:
    """A start handler that checks the root element once, then hands every later element to ``handler``."""

    def first(name: str, attrs: dict[str, str]) -> None:
        if name != ROOT:
            raise _NotHealth(name)
        parser.StartElementHandler = handler  # no root check on the millions of elements that follow
        handler(name, attrs)

    return first


def _run(parser: pyexpat.XMLParserType, data: bytes | bytearray | memoryview) -> None:
    """Feed ``data`` in chunks; every XML problem becomes a ParseError naming Apple Health."""
    view = memoryview(data)
    try:
        for offset in range(0, len(view), xmlsafe.FEED_CHUNK):
            parser.Parse(view[offset:offset + xmlsafe.FEED_CHUNK], False)
        parser.Parse(b"", True)
    except _NotHealth as exc:
        raise ParseError(f"The file is not an Apple Health export (its root element is <{str(exc)[:50]}>, "
                         f"not <{ROOT}>)") from None
    except xmlsafe.ForbiddenXML as exc:
        raise ParseError(f"The Apple Health export is not valid XML: {exc}") from None
    except pyexpat.ExpatError as exc:
        raise ParseError(f"The Apple Health export is not valid XML: {xmlsafe.describe_expat_error(exc)}") from None
    finally:
        view.release()


def _no_such_workout(index: int, count: int) -> ParseError:
    if count == 0:
        return ParseError("The Apple Health export contains no workouts")
    return ParseError(f"The Apple Health export contains {count} workouts; workout number {index} does not exist")


# --------------------------------------------------------------------------- times and numbers


def apple_times(strings: list[str | None]) -> np.ndarray:
    """Epoch seconds for Apple's ``YYYY-MM-DD HH:MM:SS ±HHMM`` timestamps (NaN where unreadable).

    Dropping the blank before the zone turns them into the layout timeparse's vectorised path reads;
    anything else still goes through its exact per-string fallback.
    """
    fixed = [s[:19] + s[20:] if s is not None and len(s) == 25 and s[19] == " " else s for s in strings]
    return parse_times(fixed)


def _apple_time(text: str | None) -> float:
    return float(apple_times([text])[0])


def _floats(values: list[str | None]) -> np.ndarray:
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.array([to_float(v) for v in values], dtype=np.float64)


def _amount(value: str | None, unit: str | None, factors: dict[str, float]) -> float | None:
    """``value`` in ``unit`` converted with ``factors``; None when missing, unreadable or negative."""
    factor = factors.get((unit or "").strip())
    number = to_float(value)
    if factor is None or not math.isfinite(number) or number < 0:
        return None
    return number * factor


# --------------------------------------------------------------------------- the streaming reader


class _HeartRates:
    """Heart-rate samples (time, bpm) gathered in batches, optionally limited to one time window.

    Times are converted TIME_BATCH at a time, so the file's (often millions of) samples are held as
    two float64 columns rather than strings; with a window known only the samples inside it are kept.
    """

    def __init__(self) -> None:
        self.pending_times: list[str | None] = []
        self.pending_values: list[str | None] = []
        self._chunks: list[tuple[np.ndarray, np.ndarray]] = []
        self._window: tuple[float, float] | None = None
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None

    def restrict(self, start: float, end: float) -> None:
        """From now on keep only samples within [start, end]; apply it to what was kept so far too."""
        self.flush()
        self._window = (start, end)
        self._chunks = [self._filter(t, v) for t, v in self._chunks]

    def _filter(self, t: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = np.isfinite(t) & np.isfinite(v)
        if self._window is not None:
            start, end = self._window
            keep &= (t >= start) & (t <= end)
        return t[keep], v[keep]

    def flush(self) -> None:
        if self.pending_times:
            chunk = self._filter(apple_times(self.pending_times), _floats(self.pending_values))
            self._chunks.append(chunk)
            self._sorted = None
            # Cleared in place: the XML callback holds references to these lists.
            self.pending_times.clear()
            self.pending_values.clear()

    def between(self, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        """Samples with start <= time <= end, sorted by time (stable: file order among equal times)."""
        self.flush()
        if self._sorted is None:
            if self._chunks:
                t = np.concatenate([c[0] for c in self._chunks])
                v = np.concatenate([c[1] for c in self._chunks])
            else:
                t, v = np.zeros(0), np.zeros(0)
            order = np.argsort(t, kind="stable")
            self._sorted = (t[order], v[order])
        t, v = self._sorted
        if not (math.isfinite(start) and math.isfinite(end)):
            return np.zeros(0), np.zeros(0)
        lo, hi = np.searchsorted(t, start, side="left"), np.searchsorted(t, end, side="right")
        return t[lo:hi], v[lo:hi]


@dataclass
class _Workout:
    attrs: dict[str, str]
    location_times: list[str | None] = field(default_factory=list)
    #: lat, lon, altitude triples.
    locations: array = field(default_factory=lambda: array("d"))
    #: WorkoutStatistics type → (sum, unit).
    statistics: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    lap_times: list[str | None] = field(default_factory=list)


class _Reader:
    """One pass over the export: the wanted workout(s) and every heart-rate sample that may matter."""

    def __init__(self, target: int | None) -> None:
        self.target = target  # None: keep every workout
        self.count = 0
        self.workouts: list[_Workout] = []
        self.heart_rate = _HeartRates()
        self._current: _Workout | None = None
        self._parser = _new_parser()

    def read(self, data: bytes | bytearray | memoryview) -> None:
        self._parser.StartElementHandler = _root_checked(self._parser, self._start)
        _run(self._parser, data)
        self.heart_rate.flush()

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        # Hot path: Records are the bulk of every export.
        if name == "Record":
            if attrs.get("type") == HEART_RATE:
                hr = self.heart_rate
                hr.pending_times.append(attrs.get("startDate"))
                hr.pending_values.append(attrs.get("value"))
                if len(hr.pending_times) >= TIME_BATCH:
                    hr.flush()
            return
        current = self._current
        if name == "Location":
            if current is not None:
                if len(current.location_times) >= MAX_POINTS:
                    raise too_many_points()
                current.location_times.append(attrs.get("date"))
                current.locations.extend((to_float(attrs.get("latitude")), to_float(attrs.get("longitude")),
                                          to_float(attrs.get("altitude"))))
        elif name == "Workout":
            self._open_workout(attrs)
        elif current is not None:
            if name == "WorkoutStatistics":
                current.statistics.setdefault(attrs.get("type", ""), (attrs.get("sum"), attrs.get("unit")))
            elif name == "WorkoutEvent" and attrs.get("type") == _LAP_EVENT and len(current.lap_times) < _MAX_LAPS:
                current.lap_times.append(attrs.get("date"))

    def _open_workout(self, attrs: dict[str, str]) -> None:
        index = self.count
        self.count += 1
        if self.target is not None and index != self.target:
            return
        self._current = _Workout(attrs=dict(attrs))
        self.workouts.append(self._current)
        # The end handler is installed only inside a wanted workout, so the rest of the file pays nothing.
        self._parser.EndElementHandler = self._end_in_workout
        if self.target is not None:
            self.heart_rate.restrict(_apple_time(attrs.get("startDate")), _apple_time(attrs.get("endDate")))

    def _end_in_workout(self, name: str) -> None:
        if name == "Workout":
            self._current = None
            self._parser.EndElementHandler = None


# --------------------------------------------------------------------------- building the track


def _totals(workout: _Workout) -> dict[str, float]:
    """The totals the file states for the workout, in metres, seconds and kcal."""
    a = workout.attrs
    out: dict[str, float] = {}
    distance = _amount(a.get("totalDistance"), a.get("totalDistanceUnit"), DISTANCE_TO_M)
    if distance is None:
        for kind, (total, unit) in workout.statistics.items():
            if kind in _DISTANCE_STATISTICS:
                distance = _amount(total, unit, DISTANCE_TO_M)
                if distance is not None:
                    break
    if distance is not None:
        out["distance_m"] = distance
    duration = _amount(a.get("duration"), a.get("durationUnit"), DURATION_TO_S)
    if duration is not None:
        out["duration_s"] = duration
    energy = _amount(a.get("totalEnergyBurned"), a.get("totalEnergyBurnedUnit"), ENERGY_TO_KCAL)
    if energy is None and _ENERGY_STATISTICS in workout.statistics:
        energy = _amount(*workout.statistics[_ENERGY_STATISTICS], ENERGY_TO_KCAL)
    if energy is not None:
        out["energy_kcal"] = energy
    return out


def _sport(activity_type: str | None) -> str | None:
    if not activity_type:
        return None
    return SPORTS.get(activity_type.strip(), "other")


def _merge_heart_rate(columns: dict[str, np.ndarray], hr_t: np.ndarray, hr_v: np.ndarray) -> dict[str, np.ndarray]:
    """Insert heart-rate samples among the route points by time, never reordering the route.

    ``hr_t`` is sorted. A sample whose time equals its insertion point's time is stored on that point.
    """
    t = columns["time"]
    n = t.shape[0]
    if hr_t.size == 0:
        return columns
    if n:
        running_max = np.maximum.accumulate(np.where(np.isnan(t), -np.inf, t))
        pos = np.searchsorted(running_max, hr_t, side="left")
        exact = (pos < n) & (t[np.minimum(pos, n - 1)] == hr_t)
    else:
        pos = np.zeros(hr_t.size, dtype=np.int64)
        exact = np.zeros(hr_t.size, dtype=bool)
    if exact.any():
        # Reversed so that, with several samples at one instant, the first in time order is the one kept.
        columns["hr"][pos[exact][::-1]] = hr_v[exact][::-1]
    extra = ~exact
    inserted = {c: np.full(int(extra.sum()), np.nan) for c in columns}
    inserted["time"] = hr_t[extra]
    inserted["hr"] = hr_v[extra]
    return {c: np.insert(v, pos[extra], inserted[c]) for c, v in columns.items()}


def _with_bounds(columns: dict[str, np.ndarray], start: float, end: float) -> dict[str, np.ndarray]:
    """Add the workout's start / end as time-only points where they lie outside the other points' span."""
    t = columns["time"]
    timed = t[~np.isnan(t)]
    first = float(timed.min()) if timed.size else math.inf
    last = float(timed.max()) if timed.size else -math.inf
    add_start = math.isfinite(start) and start < first
    add_end = math.isfinite(end) and end > last and not (add_start and end <= start)
    if not (add_start or add_end):
        return columns
    out: dict[str, np.ndarray] = {}
    for c, v in columns.items():
        head = np.array([start if c == "time" else np.nan]) if add_start else np.zeros(0)
        tail = np.array([end if c == "time" else np.nan]) if add_end else np.zeros(0)
        out[c] = np.concatenate([head, v, tail])
    return out


def _build_track(workout: _Workout, heart_rate: _HeartRates) -> Track:
    a = workout.attrs
    start, end = _apple_time(a.get("startDate")), _apple_time(a.get("endDate"))
    coords = np.frombuffer(workout.locations, dtype=np.float64).reshape(-1, 3) if workout.locations \
        else np.zeros((0, 3))
    columns = {
        "time": apple_times(workout.location_times) if workout.location_times else np.zeros(0),
        "lat": coords[:, 0].copy(), "lon": coords[:, 1].copy(), "ele": coords[:, 2].copy(),
        "hr": np.full(coords.shape[0], np.nan),
    }
    columns = _merge_heart_rate(columns, *heart_rate.between(start, end))
    columns = _with_bounds(columns, start, end)
    if columns["time"].shape[0] > MAX_POINTS:
        raise too_many_points()
    laps = clean_laps(apple_times(workout.lap_times).tolist()) if workout.lap_times else []
    return Track.from_columns(
        **columns, laps=laps, sport=_sport(a.get("workoutActivityType")), name=None,
        device=clean_text(a.get("sourceName")), totals=_totals(workout),
    )
