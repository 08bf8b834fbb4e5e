"""TCX (Garmin Training Center) parser.

Reads every ``Trackpoint`` (Activities/Activity/Lap/Track and Courses/Course/Track alike) in document
order: Time, Position/LatitudeDegrees+LongitudeDegrees, AltitudeMeters, HeartRateBpm/Value, Cadence and
the ActivityExtension TPX values Watts and RunCadence (Speed is derived later from positions, so it is
not read). The device's own cumulative ``DistanceMeters`` becomes ``Track.totals["distance_m"]``: a
treadmill run measured by a footpod has no position at all, and that is its only distance. The Activity
``Sport`` attribute is matched case-insensitively, Lap ``StartTime`` attributes become lap starts, and
Activity/Creator/Name (else Author/Name) names the device.

Cadence: ``<Cadence>`` is kept as written (rpm); ``RunCadence`` - and the cadence of any foot sport - is
reported in steps per minute, see :func:`common.running_cadence_spm` for how per-foot files are detected.
"""

from __future__ import annotations

import numpy as np

from domain.algorithms.parsing import xmlnative
from domain.algorithms.parsing.common import (
    CAD,
    DIST,
    ELE,
    HR,
    LAT,
    LON,
    POWER,
    RUNCAD,
    build_track,
    clean_laps,
    clean_text,
    normalize_sport,
)
from domain.algorithms.parsing.timeparse import parse_time
from domain.algorithms.parsing.xmlpoints import TIME, StreamResult, XmlSpec, stream_points
from domain.algorithms.track import Track

POINT_FIELDS: dict[str, int] = {
    "Time": TIME, "LatitudeDegrees": LAT, "LongitudeDegrees": LON, "AltitudeMeters": ELE,
    "Value": HR,  # the only <Value> inside a Trackpoint is HeartRateBpm/Value
    "Cadence": CAD, "RunCadence": RUNCAD, "Watts": POWER, "DistanceMeters": DIST,
}


def parse_tcx(data: bytes | bytearray | memoryview, *, fast: bool = True) -> Track:
    """Parse TCX bytes into a raw Track (file order, no cleaning; see normalize).

    ``fast`` tries the C engine (xmlnative) first; it gives the streaming engine's results, so the flag only
    exists to compare the two in tests."""
    sports: list[str] = []
    laps: list[float] = []
    result: xmlnative.NativeResult | StreamResult | None = xmlnative.scan(data, _spec(sports, laps)) if fast else None
    if result is None:
        sports, laps = [], []  # a fresh spec: the C engine may have called on_element before it declined
        result = stream_points(data, _spec(sports, laps))
    meta = result.meta
    device = meta.get(("Creator", "Name")) or meta.get(("Author", "Name"))
    points = result.sinks[0]
    track = build_track(points, sport=normalize_sport(sports[0] if sports else None),
                        name=clean_text(meta.get(("Course", "Name"))), device=clean_text(device),
                        laps=clean_laps(laps))
    distance = _device_distance(points.column(DIST))
    if distance is not None:
        track.totals["distance_m"] = distance
    return track


def _spec(sports: list[str], laps: list[float]) -> XmlSpec:
    """The TCX description for the XML engines; the Activity sport and the lap starts are appended to the lists."""

    def on_element(tag: str, attrs: dict[str, str]) -> None:
        if tag == "Activity" and not sports and attrs.get("Sport"):
            sports.append(attrs["Sport"])
        elif tag == "Lap" and len(laps) < 10_000 and attrs.get("StartTime"):
            laps.append(parse_time(attrs["StartTime"]))

    return XmlSpec(
        label="TCX", root="TrainingCenterDatabase", point_tags={"Trackpoint": 0}, fields=POINT_FIELDS,
        meta={("Creator", "Name"), ("Author", "Name"), ("Course", "Name")}, on_element=on_element,
    )


def _device_distance(cumulative: np.ndarray) -> float | None:
    """The distance the device measured (its counter runs from the start of the activity); None without a
    positive, plausible value."""
    known = cumulative[np.isfinite(cumulative) & (cumulative > 0) & (cumulative < 10_000_000)]
    return float(known.max()) if known.size else None
