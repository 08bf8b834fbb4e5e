"""GPX 1.0 / 1.1 parser.

Reads every ``trk/trkseg/trkpt`` in document order (all tracks and segments concatenated); route
points (``rte/rtept``) are used only when the file has no track point at all. Elements are matched by
local name, so any namespace prefix works (``gpxtpx:hr``, ``ns3:hr``, unprefixed ``<power>``).

Per point: ``lat``/``lon`` attributes, ``ele``, ``time`` and, anywhere below the point (extensions),
heart rate (``hr``/``heartrate``), cadence (``cad``/``cadence``), power (``power``, ``PowerInWatts``,
``watts``) and air temperature (``atemp``). A file whose points carry coordinates but none of them
readable (``lat="undefined"``) is rejected: that is garbage, not an indoor activity. Names and the
sport type are read from before the first point (where GPX puts them).

Four engines give identical results (tests compare them on every corpus file): xmlnative (the streaming
engine's callbacks in C - every UTF-8 file without a DTD, when the extension is built), gpxscan (expat
only validates, numpy reads the values from the bytes - the usual device export), gpxfast (one expat
pass with a start-element callback - UTF-8 files without comments/CDATA/entities among the points) and
the general streaming engine in xmlpoints. Each declines what it cannot read exactly and the next
one takes over.
"""

from __future__ import annotations

from domain.algorithms.parsing import gpxfast, gpxscan, xmlnative
from domain.algorithms.parsing.common import (
    CAD,
    ELE,
    HR,
    LAT,
    POWER,
    TEMP,
    Points,
    build_track,
    clean_text,
    normalize_sport,
)
from domain.algorithms.parsing.xmlpoints import TIME, StreamResult, XmlSpec, stream_points
from domain.algorithms.track import ParseError, Track

POINT_FIELDS: dict[str, int] = {
    "ele": ELE, "time": TIME,
    "hr": HR, "heartrate": HR,
    "cad": CAD, "cadence": CAD,
    "power": POWER, "PowerInWatts": POWER, "powerinwatts": POWER, "watts": POWER, "Watts": POWER,
    "atemp": TEMP,
}
_TRACK, _ROUTE = 0, 1
#: Below this size the streaming engine is the fastest: the vectorised paths cost ~1 ms of numpy calls whatever
#: the file, which is all of a few hundred points' time. Measured with bench/bench_ingest_files.py: a 26 kB file
#: of 300 points is ~0.15 ms faster streamed, a 44 kB one of 350 points ~0.4 ms faster scanned.
SMALL_BYTES = 32_000


def parse_gpx(data: bytes | bytearray | memoryview, *, fast: bool = True) -> Track:
    """Parse GPX bytes into a raw Track (file order, no cleaning; see normalize).

    ``fast`` tries the C engine first, then the vectorised paths (gpxscan, then gpxfast) for files of SMALL_BYTES
    or more; they fall back to the streaming engine by themselves whenever a file needs it, so the flag only exists
    to compare the paths in tests.
    """
    creator: list[str] = []
    result: xmlnative.NativeResult | gpxfast.FastResult | StreamResult | None = (
        xmlnative.scan(data, _spec(creator)) if fast else None)
    if result is None:
        creator = []  # a fresh spec: the C engine may have called on_element before it declined
        spec = _spec(creator)
        result = ((gpxscan.parse(data, spec) or gpxfast.parse(data, spec)) if fast and len(data) >= SMALL_BYTES
                  else None)
        if result is None:
            result = stream_points(data, spec)
    tracks, routes = result.sinks
    points = tracks if len(tracks) else routes
    if len(points) and result.bad_coords and not _any_position(points):
        raise ParseError(f"The file is not valid GPX: the track points have invalid coordinates "
                         f"({result.bad_coords})")
    meta = result.meta
    name = meta.get(("trk", "name")) or meta.get(("metadata", "name")) or meta.get(("gpx", "name"))
    sport_text = meta.get(("trk", "type")) or meta.get(("gpx", "type"))
    return build_track(points, sport=normalize_sport(clean_text(sport_text)), name=clean_text(name),
                       device=clean_text(creator[0] if creator else None))


def _spec(creator: list[str]) -> XmlSpec:
    """The GPX description for the XML engines; the root's creator attribute is appended to ``creator``."""

    def on_element(tag: str, attrs: dict[str, str]) -> None:
        if tag == "gpx" and not creator and attrs.get("creator"):
            creator.append(attrs["creator"])

    return XmlSpec(
        label="GPX", root="gpx", point_tags={"trkpt": _TRACK, "rtept": _ROUTE}, fields=POINT_FIELDS,
        meta={("trk", "name"), ("metadata", "name"), ("gpx", "name"), ("trk", "type"), ("gpx", "type")},
        on_element=on_element, n_sinks=2, meta_before_points=True,
    )


def _any_position(points: Points) -> bool:
    lat = points.column(LAT)
    return bool((lat == lat).any())
