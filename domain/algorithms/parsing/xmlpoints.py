"""The shared streaming engine behind the GPX and TCX parsers.

Both formats are "a long list of point elements, each with a few small text children", so one set of
expat callbacks serves both, configured by an :class:`XmlSpec`: which local names open a point, which
descendants of a point carry values (matched by local name, any namespace prefix, first value wins),
which (parent, child) pairs outside points are metadata text, and a hook for attributes outside points.

The callbacks write straight into per-point scratch lists and array('d') columns; timestamps are kept
as text and converted in batches (see timeparse). An unreadable number becomes NaN instead of failing
the file; unreadable point coordinates are reported back so the caller can reject an all-garbage file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from domain.algorithms.parsing import xmlsafe
from domain.algorithms.parsing.common import LAT, LON, N_SLOTS, TIME_BATCH, PointColumns
from domain.algorithms.track import ParseError

_NAN = math.nan
#: Pseudo-slot for the timestamp: kept as text and converted in batches.
TIME = -2


@dataclass
class XmlSpec:
    label: str  # "GPX" / "TCX", used in error messages
    root: str  # required local name of the root element
    point_tags: dict[str, int]  # local name → index of the sink collecting those points
    fields: dict[str, int]  # local name inside a point → slot (or TIME)
    meta: set[tuple[str, str]] = field(default_factory=set)
    on_element: Callable[[str, dict[str, str]], None] | None = None
    n_sinks: int = 1
    #: Collect metadata only before the first point (GPX: names and types precede the points, and the
    #: fast path reads metadata from that prefix, so both paths must agree).
    meta_before_points: bool = False


@dataclass
class StreamResult:
    sinks: tuple[PointColumns, ...]
    meta: dict[tuple[str, str], str]
    bad_coords: str | None  # the first unreadable lat/lon pair, if any


def stream_points(data: bytes | bytearray | memoryview, spec: XmlSpec, *, final: bool = True) -> StreamResult:
    """Run the callback parser over ``data`` and collect points and metadata as ``spec`` describes.

    With ``final=False`` the data may be an incomplete document (a prefix); nothing checks its end.
    """
    parser = xmlsafe.new_parser()
    local = xmlsafe.local_name_cache()
    sinks = tuple(PointColumns() for _ in range(spec.n_sinks))
    meta: dict[tuple[str, str], str] = {}
    stack: list[str] = []  # local names of open elements outside points
    buf: list[str] = []
    buf_append = buf.append
    slot_cache: dict[str, int] = {}
    fields_get = spec.fields.get
    point_tags = spec.point_tags
    meta_keys = spec.meta
    on_element = spec.on_element
    label = spec.label
    bad_coords: list[str] = []
    meta_open = True  # cleared at the first point when spec.meta_before_points

    # Mutable state shared by the callbacks (closure cells are the cheapest access in CPython).
    point_name: str | None = None  # raw tag of the open point, None outside points
    point_sink = sinks[0]
    sink_extend = point_sink.flat.extend
    sink_times = point_sink.pending_times
    cur: list[float] = [_NAN] * N_SLOTS
    cur_time: str | None = None
    text_slot = -1  # slot being collected, -1 when not inside a wanted text element
    text_name: str | None = None
    meta_key: tuple[str, str] | None = None
    root: str | None = None

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal point_name, point_sink, sink_extend, sink_times, cur, cur_time, text_slot, text_name, meta_key, root, \
            meta_open
        if point_name is not None:
            if text_slot != -1:
                return
            slot = slot_cache.get(name)
            if slot is None:
                slot = fields_get(local(name), -1)
                if len(slot_cache) < 1000:
                    slot_cache[name] = slot
            if slot != -1:
                text_slot = slot
                text_name = name
                buf.clear()
                parser.CharacterDataHandler = buf_append
            return
        tag = local(name)
        if root is None:
            root = tag
            if tag != spec.root:
                raise ParseError(f"The file is not valid {label}: the root element is <{tag}>, expected <{spec.root}>")
        kind = point_tags.get(tag)
        if kind is not None:
            if spec.meta_before_points:
                meta_open = False
            point_name = name
            if sinks[kind] is not point_sink:
                point_sink = sinks[kind]
                sink_extend = point_sink.flat.extend
                sink_times = point_sink.pending_times
            cur = [_NAN] * N_SLOTS
            cur_time = None
            lat_text = attrs.get("lat")
            lon_text = attrs.get("lon")
            if lat_text is not None or lon_text is not None:
                try:
                    # One of the two may be None: float(None)'s TypeError is handled with the bad values.
                    cur[LAT] = float(lat_text)  # type: ignore[arg-type]
                    cur[LON] = float(lon_text)  # type: ignore[arg-type]
                except (TypeError, ValueError):
                    cur[LAT] = cur[LON] = _NAN
                    if len(bad_coords) < 1:
                        bad_coords.append(f"lat={lat_text!r} lon={lon_text!r}")
            return
        if on_element is not None and attrs:
            on_element(tag, attrs)
        if meta_open and stack and (stack[-1], tag) in meta_keys and (stack[-1], tag) not in meta:
            meta_key = (stack[-1], tag)
            text_name = name
            buf.clear()
            parser.CharacterDataHandler = buf_append
        stack.append(tag)

    def end(name: str) -> None:
        nonlocal point_name, cur_time, text_slot, text_name, meta_key
        if text_name is not None and name == text_name:
            text = "".join(buf)
            parser.CharacterDataHandler = None
            text_name = None
            if meta_key is not None:
                meta[meta_key] = text
                meta_key = None
            elif text_slot == TIME:
                if cur_time is None:
                    cur_time = text
            elif cur[text_slot] != cur[text_slot]:  # NaN: first value wins
                try:  # noqa: SIM105 - contextlib.suppress costs ~0.3 µs per value on the hot path
                    cur[text_slot] = float(text)
                except ValueError:
                    pass
            text_slot = -1
            if point_name is None:
                stack.pop()
            return
        if point_name is not None:
            if name == point_name:
                sink_extend(cur)
                sink_times.append(cur_time)
                if len(sink_times) >= TIME_BATCH:
                    point_sink.flush()
                point_name = None
            return
        if stack:
            stack.pop()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    xmlsafe.run(parser, data, label, final=final)

    return StreamResult(sinks=sinks, meta=meta, bad_coords=bad_coords[0] if bad_coords else None)
