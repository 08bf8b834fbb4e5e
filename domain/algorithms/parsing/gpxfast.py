"""Fast path for UTF-8 GPX files: one expat pass with a start-element callback only.

The streaming engine (xmlpoints) needs ~20 Python callbacks per point (start, end and text events,
handler switches). Here expat reports only element starts; for the few we care about it records
``CurrentByteIndex`` - the byte offset of the tag in the file - and the point attributes. The value
texts are then cut straight out of the raw bytes, and numpy maps values to points. That is sound
because expat has checked the document (well-formed, no DTD), the file is UTF-8 (offsets index the
raw bytes), and the cases where raw text differs from XML text are detected and handed back:

* a comment or CDATA section after the first point, an entity or character reference in a value,
  a value element with attributes or child elements, nested points → :func:`parse` returns None
  and the caller uses the streaming engine, so both paths always give the same answer.

Metadata (names, type, creator) is read by the streaming engine from the bytes before the first
point, which is where GPX puts it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from domain.algorithms.parsing import xmlsafe
from domain.algorithms.parsing.common import LAT, LON, MAX_POINTS, N_SLOTS, too_many_points
from domain.algorithms.parsing.timeparse import parse_times_bytes
from domain.algorithms.parsing.xmlpoints import TIME, XmlSpec, stream_points
from domain.algorithms.track import ParseError

_XML_DECL = re.compile(rb"(?:\xef\xbb\xbf)?<\?xml\s[^>]*?\?>")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")
_UTF8_NAMES = {b"utf-8", b"utf8", b"us-ascii", b"ascii"}
_UNWANTED = -100  # cache code for element names we ignore
_BATCH = 65_536  # callback records are moved into numpy arrays this often
_TEXT_BATCH = 65_536  # value elements handled per step, so scans cover a small byte range
_CODE_BASE = 64  # field records pack (byte offset, code) into one int: offset * _CODE_BASE + code


@dataclass
class ArrayPoints:
    """Parsed points as numpy columns, with the same read interface as common.PointColumns."""

    columns: np.ndarray  # (N_SLOTS, n)
    time: np.ndarray

    def __len__(self) -> int:
        return int(self.time.shape[0])

    def column(self, slot: int) -> np.ndarray:
        return self.columns[slot]

    def times(self) -> np.ndarray:
        return self.time


@dataclass
class FastResult:
    sinks: tuple[ArrayPoints, ...]
    meta: dict[tuple[str, str], str]
    bad_coords: str | None


class _Decline(Exception):
    """The file needs the streaming engine."""


def eligible(data: bytes) -> bool:
    """True for UTF-8 / ASCII documents (byte offsets from expat then index the raw text)."""
    head = data[:1024]
    decl = _XML_DECL.match(head)
    if decl is not None:
        enc = _ENCODING.search(decl.group(0))
        return enc is None or enc.group(1).lower() in _UTF8_NAMES
    return not (head[:4].count(0) or head.startswith((b"\xff\xfe", b"\xfe\xff")))


def parse(data: bytes | bytearray | memoryview, spec: XmlSpec) -> FastResult | None:
    """Parse with the fast path, or return None when the file needs the streaming engine."""
    if not isinstance(data, bytes):
        data = bytes(data)  # float() and numpy need real bytes slices
    if not eligible(data):
        return None
    try:
        return _parse(data, spec)
    except _Decline:
        return None


class _Collected:
    """What the start callback records, moved into numpy arrays every _BATCH items.

    Batching keeps memory at a few bytes per value instead of one Python object per number,
    which matters for the 100 MB files.
    """

    def __init__(self, codes_of: dict[str, int]) -> None:
        self.codes_of = codes_of
        self.point_pos: list[int] = []
        self.point_name: list[str] = []
        self.lat: list[str | None] = []
        self.lon: list[str | None] = []
        self.field_code: list[int] = []
        self.names: dict[str, int] = {}
        self.pos_chunks: list[np.ndarray] = []
        self.name_chunks: list[np.ndarray] = []
        self.lat_chunks: list[np.ndarray] = []
        self.lon_chunks: list[np.ndarray] = []
        self.field_chunks: list[np.ndarray] = []
        self.slot_chunks: list[np.ndarray] = []
        self.n_points = 0
        self.bad: str | None = None

    def flush_points(self) -> None:
        if not self.point_pos:
            return
        self.n_points += len(self.point_pos)
        if self.n_points > MAX_POINTS:
            raise too_many_points()
        lat, lon, bad = _coordinates(self.lat, self.lon)
        self.bad = self.bad or bad
        self.pos_chunks.append(np.asarray(self.point_pos, dtype=np.int64))
        ids = [self.names.setdefault(n, len(self.names)) for n in self.point_name]
        self.name_chunks.append(np.asarray(ids, dtype=np.int64))
        self.lat_chunks.append(lat)
        self.lon_chunks.append(lon)
        for pending in (self.point_pos, self.point_name, self.lat, self.lon):
            pending.clear()  # in place: the callback holds these lists

    def flush_fields(self) -> None:
        if self.field_code:
            packed = np.asarray(self.field_code, dtype=np.int64)
            self.field_chunks.append(packed // _CODE_BASE)
            self.slot_chunks.append((packed % _CODE_BASE).astype(np.int16))
            self.field_code.clear()

    def finish(self) -> None:
        self.flush_points()
        self.flush_fields()

    def release(self) -> None:
        for chunks in (self.pos_chunks, self.name_chunks, self.lat_chunks, self.lon_chunks, self.field_chunks,
                       self.slot_chunks):
            chunks.clear()


def _cat(chunks: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=dtype)


def _parse(data: bytes, spec: XmlSpec) -> FastResult:
    parser = xmlsafe.new_parser()
    codes_of: dict[str, int] = {}
    n_point_kinds = len(spec.point_tags)
    got = _Collected(codes_of)
    point_pos, point_name, lat, lon, field_code = got.point_pos, got.point_name, got.lat, got.lon, got.field_code
    odd: list[int] = []  # offsets of comments / CDATA sections
    root: list[str] = []

    def code_for(name: str) -> int:
        local = name[name.rfind(":") + 1:]
        if local in spec.point_tags:
            code = spec.point_tags[local]
        elif local in spec.fields:
            code = n_point_kinds + _slot_code(spec.fields[local])
        else:
            code = _UNWANTED
        if len(codes_of) < 1000:
            codes_of[name] = code
        return code

    def start(name: str, attrs: dict[str, str]) -> None:
        code = codes_of.get(name)
        if code is None:
            code = code_for(name)
            if not root:
                root.append(name[name.rfind(":") + 1:])
                if root[0] != spec.root:
                    raise ParseError(f"The file is not valid {spec.label}: the root element is <{root[0]}>, "
                                     f"expected <{spec.root}>")
        if code == _UNWANTED:
            return
        if code < n_point_kinds:
            point_pos.append(parser.CurrentByteIndex)
            point_name.append(name)
            lat.append(attrs.get("lat"))
            lon.append(attrs.get("lon"))
            if len(point_pos) == _BATCH:
                got.flush_points()
        elif attrs:
            raise _Decline  # a value element with attributes: its ">" is not simply the next one
        else:
            field_code.append(parser.CurrentByteIndex * _CODE_BASE + code)  # one int: offset and slot
            if len(field_code) == _BATCH:
                got.flush_fields()

    def odd_section(*_: object) -> None:
        odd.append(parser.CurrentByteIndex)

    parser.StartElementHandler = start
    parser.CommentHandler = odd_section
    parser.StartCdataSectionHandler = odd_section
    xmlsafe.run(parser, data, spec.label)  # also the well-formedness and DTD check
    got.finish()

    starts = _cat(got.pos_chunks, np.int64)
    first = int(starts[0]) if starts.size else len(data)
    if any(p > first for p in odd):
        raise _Decline
    head = stream_points(data[:first], spec, final=not starts.size)
    name_ids = _cat(got.name_chunks, np.int64)
    names = list(got.names)
    kind_of_name = np.array([codes_of.get(n, spec.point_tags.get(n[n.rfind(":") + 1:], 0)) for n in names] or [0])
    field_pos = _cat(got.field_chunks, np.int64)
    field_slot = _cat(got.slot_chunks, np.int16) - n_point_kinds
    lat_deg, lon_deg = _cat(got.lat_chunks, np.float64), _cat(got.lon_chunks, np.float64)
    bad = got.bad
    got.release()  # drop the chunk lists before the columns are built
    return _assemble(data, spec, head.meta, starts, kind_of_name[name_ids], name_ids, names, lat_deg, lon_deg, bad,
                     field_pos, field_slot)


def _slot_code(slot: int) -> int:
    """Field codes must be non-negative offsets; TIME (-2) maps to N_SLOTS."""
    return N_SLOTS if slot == TIME else slot


def _point_ends(data: bytes, starts: np.ndarray, name_ids: np.ndarray, names: list[str]) -> np.ndarray:
    """Byte offset of each point's end tag (points cannot nest, which is checked)."""
    ends = np.empty(starts.shape[0], dtype=np.int64)
    tags = [b"</" + n.encode() for n in names]
    for i, (s, nid) in enumerate(zip(starts.tolist(), name_ids.tolist(), strict=True)):
        tag = tags[nid]
        e = data.find(tag, s)
        while e != -1 and data[e + len(tag):e + len(tag) + 1] not in (b">", b" ", b"\t", b"\n", b"\r"):
            e = data.find(tag, e + 1)  # "</trkptx" is another element
        if e == -1:
            raise _Decline  # a self-closing last point
        ends[i] = e
    if starts.size > 1 and np.any(ends[:-1] > starts[1:]):
        raise _Decline  # a point inside a point (or a self-closing one)
    return ends


def _floats(texts: list[bytes]) -> list[float]:
    try:
        return list(map(float, texts))
    except ValueError:
        pass
    out = []
    for t in texts:
        try:
            out.append(float(t))
        except ValueError:
            try:  # non-ASCII digits are accepted by float() only as str, as the streaming engine sees them
                out.append(float(t.decode("utf-8")))
            except (ValueError, UnicodeDecodeError):
                out.append(math.nan)
    return out


def _coordinates(lat_text: list[str | None], lon_text: list[str | None]) -> tuple[np.ndarray, np.ndarray,
                                                                                   str | None]:
    """Point coordinates with the streaming engine's rules; also the first unreadable pair, if any."""
    # plain float() per value: exactly the streaming engine's number syntax; a None (missing attribute) raises
    # TypeError like unreadable text, hence the ignores below.
    try:
        return (np.array(list(map(float, lat_text)), dtype=np.float64),  # type: ignore[arg-type]
                np.array(list(map(float, lon_text)), dtype=np.float64), None)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        pass
    lat = np.full(len(lat_text), np.nan)
    lon = np.full(len(lat_text), np.nan)
    bad = None
    for i, (la, lo) in enumerate(zip(lat_text, lon_text, strict=True)):
        if la is None and lo is None:
            continue
        try:
            lat[i], lon[i] = float(la), float(lo)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            lat[i] = lon[i] = np.nan
            if bad is None:
                bad = f"lat={la!r} lon={lo!r}"
    return lat, lon, bad


def _assemble(data: bytes, spec: XmlSpec, meta: dict[tuple[str, str], str], starts: np.ndarray,
              kind: np.ndarray, name_ids: np.ndarray, names: list[str], lat: np.ndarray, lon: np.ndarray,
              bad: str | None, field_pos: np.ndarray, field_slot: np.ndarray) -> FastResult:
    n = starts.shape[0]
    columns = np.full((N_SLOTS, n), np.nan)
    time = np.full(n, np.nan)
    if n:
        columns[LAT], columns[LON] = lat, lon
    if n and field_pos.size:
        ends = _point_ends(data, starts, name_ids, names)
        time_seen = np.zeros(n, dtype=bool)
        # Fields come in document order, so batches can be assigned one after the other: a value is
        # written only where its point has none yet (first readable value / first <time> wins).
        for k in range(0, field_pos.shape[0], _TEXT_BATCH):
            _assign(data, columns, time, time_seen, starts, ends, field_pos[k:k + _TEXT_BATCH],
                    field_slot[k:k + _TEXT_BATCH].astype(np.int64))
    sinks = []
    for k in range(spec.n_sinks):
        mask = kind == k
        if mask.all():
            sinks.append(ArrayPoints(columns=columns, time=time))  # the usual case: no copy
        else:
            sinks.append(ArrayPoints(columns=columns[:, mask], time=time[mask]))
    return FastResult(sinks=tuple(sinks), meta=meta, bad_coords=bad)


def _assign(data: bytes, columns: np.ndarray, time: np.ndarray, time_seen: np.ndarray, starts: np.ndarray,
            ends: np.ndarray, fpos: np.ndarray, fslot: np.ndarray) -> None:
    owner = np.searchsorted(starts, fpos, side="right") - 1
    inside = (owner >= 0) & (fpos < ends[np.maximum(owner, 0)])
    fpos, owner, fslot = fpos[inside], owner[inside], fslot[inside]
    if fpos.size == 0:
        return
    texts = _texts(data, fpos)
    is_time = fslot == N_SLOTS
    flags = is_time.tolist()
    if is_time.any():
        tval = parse_times_bytes([t for t, f in zip(texts, flags, strict=True) if f])
        towner = owner[is_time]
        _, first = np.unique(towner, return_index=True)
        towner, tval = towner[first], tval[first]
        new = ~time_seen[towner]  # the first <time> wins even if unreadable
        time[towner[new]] = tval[new]
        time_seen[towner] = True
    if not is_time.all():
        val = np.asarray(_floats([t for t, f in zip(texts, flags, strict=True) if not f]), dtype=np.float64)
        vowner, vslot = owner[~is_time], fslot[~is_time]
        ok = ~np.isnan(val)  # the first *readable* value of a point wins
        vowner, vslot, val = vowner[ok], vslot[ok], val[ok]
        _, first = np.unique(vowner * N_SLOTS + vslot, return_index=True)
        vowner, vslot, val = vowner[first], vslot[first], val[first]
        empty = np.isnan(columns[vslot, vowner])
        columns[vslot[empty], vowner[empty]] = val[empty]


_TEXT_SLACK = 1 << 16  # bytes scanned past the last element of a step for its text and end tag


def _texts(data: bytes, tag_pos: np.ndarray) -> list[bytes]:
    """The text of each value element starting at ``tag_pos`` (sorted; elements without attributes)."""
    out: list[bytes] = []
    a = np.frombuffer(data, dtype=np.uint8)
    for k in range(0, tag_pos.shape[0], _TEXT_BATCH):
        out.extend(_texts_in_range(data, a, tag_pos[k:k + _TEXT_BATCH]))
    return out


def _texts_in_range(data: bytes, a: np.ndarray, tag_pos: np.ndarray) -> list[bytes]:
    lo = int(tag_pos[0])
    hi = min(a.shape[0], int(tag_pos[-1]) + _TEXT_SLACK)
    seg = a[lo:hi]
    gts = np.flatnonzero(seg == 62) + lo
    lts = np.flatnonzero(seg == 60) + lo
    amps = np.flatnonzero(seg == 38) + lo
    gi = np.searchsorted(gts, tag_pos)
    if np.any(gi >= gts.size):
        raise _Decline  # a value longer than the slack: rare enough to leave to the streaming engine
    gt = gts[gi]  # the start tag's ">" (no attributes, so no quoted ">")
    self_closing = a[gt - 1] == 47
    nxt = np.searchsorted(lts, gt)
    if np.any(nxt >= lts.size):
        raise _Decline
    text_end = lts[nxt]
    # The next tag must be this element's end tag: otherwise it has children, a comment or CDATA.
    if np.any(~self_closing & (a[np.minimum(text_end + 1, a.size - 1)] != 47)):
        raise _Decline
    if amps.size and np.any(np.searchsorted(amps, gt) != np.searchsorted(amps, text_end)):
        raise _Decline  # an entity or character reference inside a value
    begin = np.where(self_closing, text_end, gt + 1)
    return [data[b:e] for b, e in zip(begin.tolist(), text_end.tolist(), strict=True)]
