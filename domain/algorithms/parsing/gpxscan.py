"""Fastest GPX path: expat proves the document well-formed in C, numpy reads the values from the bytes.

gpxfast still makes one Python callback per element start (~25k for an hour at 1 Hz), which is the
floor of any callback design. Here expat runs with no per-element handler at all - only the hardening
handlers of xmlsafe, which fire for hostile input only, and a one-shot root check - so validation is
pure C. The values are then located with numpy over the raw bytes. That is sound because of what a
well-formed, DTD-free document guarantees once comments, CDATA sections and processing instructions
are ruled out among the points:

* every ``<`` starts a tag (``<`` is forbidden in text and attribute values), so the tags are exactly
  the ``<`` positions, ``</`` marks an end tag, and when the tag after a value element's ``>`` is an
  end tag it is that element's own end tag (so its text is the raw bytes in between);
* points are matched by local name; when point start and end tags strictly alternate, each end tag
  closes the point just opened (nesting or a self-closing point breaks the alternation: declined).

Every value is owned by the point whose [start, end) range holds it (``np.searchsorted``), with the
engines' rule that the first readable number and the first ``<time>`` of a point win. Numbers shaped
``-?digits[.digits]`` with at most 18 digits are converted exactly in numpy (see :func:`_decimals`);
other texts go through ``float()`` one by one, as in gpxfast. Timestamps go through timeparse's
vectorised decoder straight from a byte matrix. Tag names are read eight bytes at a time through an
overlapping uint64 view of the data and looked up in a small hash table (see :class:`_Names`).

Anything outside that shape makes :func:`parse` return None and the caller uses gpxfast, which gives
identical results (tests compare the engines): non-UTF-8 encodings, comments / CDATA / processing
instructions inside a value's text (elsewhere they are skipped), entity or character references in a value
or coordinate, value elements with attributes, blanks in their tag, children or a self-closing tag, point
start tags other than ``<trkpt lat="…" lon="…">``, ``<trkpt lon="…" lat="…">`` or a bare ``<trkpt>`` (single quotes,
other attributes or blanks), coordinates of 24 bytes or more, self-closing or nested points, tag names
of 32 bytes or more, more than MAX_POINTS points, and any document expat rejects (gpxfast then raises
the usual error message).

Big files are scanned in slices of about CHUNK_BYTES cut just before a point start, so the transient
numpy arrays stay a small multiple of the slice size whatever the file size.
"""

from __future__ import annotations

import pyexpat
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from domain.algorithms.parsing import common, xmlsafe
from domain.algorithms.parsing.common import LAT, LON, N_SLOTS
from domain.algorithms.parsing.gpxfast import ArrayPoints, FastResult, eligible
from domain.algorithms.parsing.timeparse import parse_time, parse_time_codes
from domain.algorithms.parsing.xmlpoints import TIME, XmlSpec, stream_points

#: Bytes scanned per step; the transient arrays of a step are a small multiple of this.
CHUNK_BYTES = 8 << 20

_NAME_WORDS = 4  # tag names are read from 32 bytes (longer names: declined)
_COORD_WIDTH = 24  # a coordinate is read from this many bytes (longer: declined)
_TEXT_WIDTH = 24  # texts up to this long are cut out by numpy, longer ones by slicing
_TIME_WIDTH = 40  # a timestamp longer than this is parsed one by one
_TAIL = 64  # bytes at the end of the data read through a zero-padded copy

_LT, _GT, _SLASH, _QUOTE, _BANG, _QUESTION = 60, 62, 47, 34, 33, 63
_DIGIT0, _DOT, _MINUS = 48, 46, 45
#: _PREFIX_MASKS[k] keeps the first k bytes of a little-endian uint64.
_PREFIX_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9),
        np.uint64(0x27D4EB2F165667C5))

#: A start tag whose local name is a point tag (``[^\s/>]`` cannot cross a tag boundary).
_POINT_START = re.compile(rb"<(?:[^\s/>]*:)?(?:trkpt|rtept)[\s/>]")
#: Accepted point start tags, from the byte after the name: (first attribute, between values, swapped).
_ATTR_SHAPES = ((b' lat="', b'" lon="', False), (b' lon="', b'" lat="', True))


class _Decline(Exception):
    """The file needs gpxfast (or the streaming engine behind it)."""


def parse(data: bytes | bytearray | memoryview, spec: XmlSpec) -> FastResult | None:
    """Parse GPX bytes with the scanning path, or return None when the file needs another engine."""
    if not isinstance(data, bytes):
        data = bytes(data)
    if not eligible(data):
        return None
    try:
        return _parse(data, spec)
    except _Decline:
        return None


@dataclass
class _Chunk:
    """The points of one slice of the file."""

    columns: np.ndarray  # (N_SLOTS, n)
    time: np.ndarray
    kind: np.ndarray  # sink index per point
    bad: str | None  # the first unreadable coordinate pair of the slice


def _parse(data: bytes, spec: XmlSpec) -> FastResult:
    first = _first_point(data)
    _validate(data, spec)
    reader = _Bytes(data)
    names = _Names(spec)
    chunks: list[_Chunk] = []
    count = 0
    for lo, hi in _slices(data, first):
        chunk = _scan(reader, lo, hi, names)
        count += chunk.time.shape[0]
        if count > common.MAX_POINTS:
            raise _Decline  # gpxfast raises the limit error as it always has
        chunks.append(chunk)
    head = stream_points(data[:first], spec, final=False)  # names, type, creator: before the points
    if len(chunks) == 1:
        columns, time, kind = chunks[0].columns, chunks[0].time, chunks[0].kind
    else:
        columns = np.concatenate([c.columns for c in chunks], axis=1)
        time = np.concatenate([c.time for c in chunks])
        kind = np.concatenate([c.kind for c in chunks])
    bad = next((c.bad for c in chunks if c.bad is not None), None)
    sinks = []
    for k in range(spec.n_sinks):
        mask = kind == k
        if mask.all():
            sinks.append(ArrayPoints(columns=columns, time=time))  # the usual case: no copy
        else:
            sinks.append(ArrayPoints(columns=columns[:, mask], time=time[mask]))
    return FastResult(sinks=tuple(sinks), meta=head.meta, bad_coords=bad)


#: Markup up to the first point, left to right: a comment, CDATA section or PI is skipped whole (it may mention a
#: point), a point start tag ends the search, and any other "<!" (a DOCTYPE) declines.
_HEAD_MARKUP = re.compile(rb"(<!\[CDATA\[.*?\]\]>|<!--.*?-->|<\?.*?\?>)|(<(?:[^\s/>]*:)?(?:trkpt|rtept)[\s/>])|<!",
                          re.DOTALL)


def _first_point(data: bytes) -> int:
    """Offset of the first point start tag, skipping comments / CDATA / PIs that might mention one (one pass:
    ExpertGPS files open with hundreds of waypoints, each with CDATA texts)."""
    for m in _HEAD_MARKUP.finditer(data):
        if m.group(2) is not None:
            return m.start()
        if m.group(1) is None:
            raise _Decline  # a DOCTYPE: expat rejects it, and gpxfast says so
    raise _Decline  # no points (or markup left open): nothing to speed up, and gpxfast words the error


def _validate(data: bytes, spec: XmlSpec) -> None:
    """Well-formedness, the DTD ban and the root name, checked in C (one Python call, for the root).

    The last piece is fed with isFinal set rather than followed by an empty final call, which saves
    expat a copy of the data into its own buffer (a fifth of the validation time on a 1 MB file).
    """
    parser = xmlsafe.new_parser()

    def on_root(name: str, _attrs: dict[str, str]) -> None:
        parser.StartElementHandler = None  # from here on expat runs without calling back
        if name[name.rfind(":") + 1:] != spec.root:
            raise _Decline

    parser.StartElementHandler = on_root
    view = memoryview(data)
    size = len(data)
    try:
        for offset in range(0, max(size, 1), xmlsafe.FEED_CHUNK):
            parser.Parse(view[offset:offset + xmlsafe.FEED_CHUNK], offset + xmlsafe.FEED_CHUNK >= size)
    except (xmlsafe.ForbiddenXML, pyexpat.ExpatError):
        raise _Decline from None  # gpxfast reports it with the usual message
    finally:
        view.release()


def _slices(data: bytes, first: int) -> Iterator[tuple[int, int]]:
    """[lo, hi) byte ranges from the first point to the end, each cut just before a point start."""
    lo, n = first, len(data)
    while lo < n:
        hi = n
        if lo + CHUNK_BYTES < n:
            m = _POINT_START.search(data, lo + CHUNK_BYTES)
            if m is not None:
                hi = m.start()
        yield lo, hi
        lo = hi


class _Bytes:
    """The data as uint8 plus an overlapping little-endian uint64 view: 8 bytes from any offset in one gather."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.a = np.frombuffer(data, dtype=np.uint8)
        size = len(data)
        self.u = (np.ndarray(shape=(size - 7,), dtype="<u8", buffer=data, strides=(1,)) if size >= 8
                  else np.zeros(0, dtype="<u8"))
        self.tail_at = max(0, size - _TAIL)
        padded = data[self.tail_at:] + bytes(2 * _TAIL)
        self.tail = np.ndarray(shape=(len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))

    def word(self, pos: np.ndarray) -> np.ndarray:
        """The 8 bytes from each position as a little-endian uint64, 0 past the end of the data."""
        near = pos > self.u.shape[0] - 1
        if not near.any():
            return self.u[pos]
        out = np.empty(pos.shape[0], dtype="<u8")
        out[~near] = self.u[pos[~near]]
        out[near] = self.tail[pos[near] - self.tail_at]
        return out


_ONES = np.uint64(0x0101010101010101)
_HIGH = np.uint64(0x8080808080808080)
_BELOW_33 = _ONES * np.uint64(33)
_ALL_GT = _ONES * np.uint64(_GT)
_ALL_SLASH = _ONES * np.uint64(_SLASH)


def _name_end(w: np.ndarray) -> np.ndarray:
    """Per little-endian uint64: index of the first byte that ends a tag name, 8 when none does.

    A name ends at a blank (any byte <= 32), '>' or '/'. Branch-free byte tests on whole words: in
    ``(w - 0x2121..) & ~w & 0x8080..`` the lowest flagged byte is exactly the first byte below 33
    (borrows only ever flag bytes above a true hit), likewise for the zero bytes of ``w ^ 0x3e3e..``.
    """
    flags = (w - _BELOW_33) & ~w
    v = w ^ _ALL_GT
    flags |= (v - _ONES) & ~v
    v = w ^ _ALL_SLASH
    flags |= (v - _ONES) & ~v
    return _lowest_flagged_byte(flags & _HIGH)


def _lowest_flagged_byte(flags: np.ndarray) -> np.ndarray:
    """Index (0-7) of the lowest byte whose high bit is set in ``flags``, 8 when there is none."""
    lowest = flags & (~flags + np.uint64(1))  # the lowest set bit: 2**(8k + 7), or 0
    exponent = (lowest.astype(np.float64).view(np.int64) >> 52) - 1030  # exact for a power of two: 8k
    return np.minimum((exponent >> 3) & 15, 8)  # no bit: a large negative exponent, masked to 15


class _Names:
    """Tag name → code for whole arrays of tags at once: a direct-mapped table on a 64-bit hash.

    Codes: the sink index for a point tag, n_kinds + slot (N_SLOTS for time) for a value element,
    -1 for any other tag. Every row is confirmed against the stored name (length and bytes), so a
    hash collision cannot misread a tag; two names in one table slot change the table's salt.
    """

    _BITS = 12  # table slots: 4096, for the dozen or so distinct tag names of a file

    def __init__(self, spec: XmlSpec) -> None:
        self.spec = spec
        self.n_kinds = len(spec.point_tags)
        self.salt = np.uint64(0x9E3779B97F4A7C15)
        self.table = np.zeros(1 << self._BITS, dtype=np.intp)  # slot → entry; entry 0 matches nothing
        self.hashes: list[int] = [0]
        self.keys: list[tuple[int, int, int, int]] = [(0, 0, 0, 0)]
        self.raw: list[bytes] = [b""]
        self._columns()

    def _columns(self) -> None:
        """Per-entry arrays for the vectorised checks (rebuilt when names are added)."""
        self.words = np.array(self.keys, dtype=np.uint64).T.copy()
        self.lengths = np.array([len(r) for r in self.raw])
        self.lengths[0] = -1
        self.codes = np.array([-1] + [self._code_of(r) for r in self.raw[1:]])

    def lookup(self, words: list[np.ndarray], length: np.ndarray, long_rows: np.ndarray) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
        """(code, entry) per name. ``words``: the masked name words 0, 1 for every row and 2, 3 for the
        rows in ``long_rows`` only (names over 16 bytes)."""
        h = _hash(words, long_rows)
        if len(self.raw) == 1:  # a file's first tags hold nearly all its names: learn from a sample first
            self._learn(words, length, long_rows, h, np.arange(min(512, length.shape[0])))
        entry, known = self._find(words, length, long_rows, h)
        if not known.all():
            self._learn(words, length, long_rows, h, np.flatnonzero(~known))
            entry, known = self._find(words, length, long_rows, h)
            if not known.all():
                raise _Decline  # two tag names with one 64-bit hash: never seen, but stay exact
        return self.codes[entry], entry

    def _slots(self, h: np.ndarray) -> np.ndarray:
        return ((h * self.salt) >> np.uint64(64 - self._BITS)).astype(np.intp)

    def _find(self, words: list[np.ndarray], length: np.ndarray, long_rows: np.ndarray,
              h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        entry = self.table[self._slots(h)]
        known = self.lengths[entry] == length
        known &= self.words[0][entry] == words[0]
        known &= self.words[1][entry] == words[1]
        if long_rows.size:
            e = entry[long_rows]
            known[long_rows] &= (self.words[2][e] == words[2]) & (self.words[3][e] == words[3])
        return entry, known

    def _learn(self, words: list[np.ndarray], length: np.ndarray, long_rows: np.ndarray, h: np.ndarray,
               rows: np.ndarray) -> None:
        values, first = np.unique(h[rows], return_index=True)
        for value, r in zip(values.tolist(), rows[first].tolist(), strict=True):
            if value in self.hashes:
                continue
            k = int(np.searchsorted(long_rows, r))  # the row's place among the long names, if it is one
            k = k if k < long_rows.shape[0] and long_rows[k] == r else -1
            key = (int(words[0][r]), int(words[1][r]), int(words[2][k]) if k >= 0 else 0,
                   int(words[3][k]) if k >= 0 else 0)
            self.hashes.append(value)
            self.keys.append(key)
            self.raw.append(np.array(key, dtype="<u8").tobytes()[:int(length[r])])
        self._columns()
        for attempt in range(16):
            slots = self._slots(np.array(self.hashes[1:], dtype=np.uint64))
            if np.unique(slots).size == slots.size:
                break
            self.salt = np.uint64((int(self.salt) * 0x5851F42D4C957F2D + 2 * attempt + 1) % (1 << 64) | 1)
        else:
            raise _Decline  # practically impossible: sixteen salts, each with a few names in 4096 slots
        self.table.fill(0)
        self.table[slots] = np.arange(1, slots.size + 1)

    def _code_of(self, raw: bytes) -> int:
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Decline from None
        local = name[name.rfind(":") + 1:]
        if local in self.spec.point_tags:
            return self.spec.point_tags[local]
        if local in self.spec.fields:
            slot = self.spec.fields[local]
            return self.n_kinds + (N_SLOTS if slot == TIME else slot)
        return -1


def _hash(words: list[np.ndarray], long_rows: np.ndarray) -> np.ndarray:
    h = words[0] * _MIX[0]
    h ^= h >> np.uint64(31)
    h ^= words[1] * _MIX[1]
    if long_rows.size:
        h[long_rows] ^= (words[2] * _MIX[2]) ^ (words[3] * _MIX[3])
    return h


def _tag_names(reader: _Bytes, at: np.ndarray, names: _Names) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the start tags whose name begins at ``at``: (code, name length, name entry)."""

    def read(rows: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Name word k of the rows (masked) and where the name ends in it (8: it goes on)."""
        w = reader.word((at if rows is None else at[rows]) + 8 * k)
        end = _name_end(w)
        w &= _PREFIX_MASKS[end]
        return w, end

    w0, length = read(None, 0)
    w1 = np.zeros(at.shape[0], dtype=np.uint64)
    long_rows = np.zeros(0, dtype=np.intp)
    words = [w0, w1]
    rows = np.flatnonzero(length == 8)  # names of 8 bytes or more
    if rows.size:
        w, end = read(rows, 1)
        w1[rows] = w
        length[rows] += end
        long_rows = rows[end == 8]  # names of 16 bytes or more: words 2 and 3, for these rows only
        if long_rows.size:
            w2, end2 = read(long_rows, 2)
            length[long_rows] += end2
            more = end2 == 8
            w3 = np.zeros(long_rows.shape[0], dtype=np.uint64)
            if more.any():
                w3[more], end3 = read(long_rows[more], 3)
                if np.any(end3 == 8):
                    raise _Decline  # a tag name of 32 bytes or more
                length[long_rows[more]] += end3
            words += [w2, w3]
    code, entry = names.lookup(words, length, long_rows)
    return code, length, entry


def _scan(reader: _Bytes, lo: int, hi: int, names: _Names) -> _Chunk:
    """The points in [lo, hi) - a range that starts at a point and ends before one (or at the end)."""
    a = reader.a
    lt = np.flatnonzero(a[lo:hi] == _LT) + lo  # every tag, once comments, CDATA and PIs are taken out
    second = a[lt + 1]
    odd = (second == _BANG) | (second == _QUESTION)
    regions = None
    if odd.any():
        lt, second, regions = _without_odd(reader, lt, second, hi)
    is_end = second == _SLASH
    st_rows = np.flatnonzero(~is_end)
    code, name_len, entry = _tag_names(reader, lt[st_rows] + 1, names)
    n_kinds = names.n_kinds

    p_sel = (code >= 0) & (code < n_kinds)
    p_rows = st_rows[p_sel]
    starts = lt[p_rows]
    ends = _point_ends(reader, lt[is_end], [names.raw[i] for i in np.unique(entry[p_sel]).tolist()])
    n = starts.shape[0]
    if n == 0 or ends.shape[0] != n or np.any(ends <= starts) or np.any(starts[1:] <= ends[:-1]):
        raise _Decline  # nested or self-closing points

    amps = np.flatnonzero(a[lo:hi] == ord("&")) + lo if reader.data.find(b"&", lo, hi) != -1 else None
    columns = np.full((N_SLOTS, n), np.nan)
    bad = _coordinates(reader, starts + 1 + name_len[p_sel], amps, columns)

    f_sel = code >= n_kinds
    f_rows = st_rows[f_sel]
    f_pos = lt[f_rows]
    owner = np.searchsorted(starts, f_pos, side="right") - 1
    inside = (owner >= 0) & (f_pos < ends[np.maximum(owner, 0)])
    f_rows, owner = f_rows[inside], owner[inside]
    text_start = lt[f_rows] + 1 + name_len[f_sel][inside]
    if np.any(a[text_start] != _GT) or np.any(~is_end[f_rows + 1]):
        raise _Decline  # a value element with attributes, blanks in its tag, children or self-closing
    text_start += 1
    text_end = lt[f_rows + 1]
    if regions is not None and text_start.size:
        # Markup skipped above is harmless between elements (<cmt><![CDATA[…]]></cmt> in ExpertGPS points), not
        # inside a value's text: such a value is read through expat by gpxfast.
        holder = np.searchsorted(text_start, regions, side="right") - 1
        if np.any((holder >= 0) & (regions < text_end[np.maximum(holder, 0)])):
            raise _Decline
    _no_references(amps, text_start, text_end)
    slot = code[f_sel][inside] - n_kinds
    is_time = slot == N_SLOTS
    time = _times(reader, text_start[is_time], text_end[is_time], owner[is_time], n)
    num = ~is_time
    _assign_numbers(reader, text_start[num], text_end[num], owner[num], slot[num], columns)
    return _Chunk(columns=columns, time=time, kind=code[p_sel], bad=bad)


#: Markup that is not a tag, each ending at its first closer: in a document expat accepted, every "<!" or
#: "<?" opens one (a "<" cannot appear in text or attribute values), so a left-to-right scan finds them all.
_ODD_REGION = re.compile(rb"<!\[CDATA\[.*?\]\]>|<!--.*?-->|<\?.*?\?>", re.DOTALL)


def _without_odd(reader: _Bytes, lt: np.ndarray, second: np.ndarray, hi: int,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tags of [lt[0], hi) without the comments, CDATA sections and PIs (which may hold any "<"), and
    where those start. Exporters write them between and inside points (ExpertGPS: every track name and point
    comment in CDATA); the caller declines the slice when one lies inside the text of a value it reads, and
    so does this function when one is of another kind or runs past the slice."""
    spans = _odd_spans(reader, lt[(second == _BANG) | (second == _QUESTION)], hi)
    if spans is None:  # one inside another ("<!--" in a CDATA text): the left-to-right scan decides
        spans = np.array([m.span() for m in _ODD_REGION.finditer(reader.data, int(lt[0]), hi)], dtype=np.int64)
    if spans.size == 0:
        raise _Decline
    region_start, region_end = spans[:, 0], spans[:, 1]
    holder = np.searchsorted(region_start, lt, side="right") - 1
    keep = ~((holder >= 0) & (lt < region_end[np.maximum(holder, 0)]))
    lt, second = lt[keep], second[keep]
    if np.any((second == _BANG) | (second == _QUESTION)):
        raise _Decline  # a DTD, or markup running past the slice
    return lt, second, region_start


_LBRACKET, _RBRACKET, _DASH = 91, 93, 45


def _odd_spans(reader: _Bytes, opens: np.ndarray, hi: int) -> np.ndarray | None:
    """(start, end) of the comment / CDATA / PI opened at each of ``opens`` (each ending at the first closer
    after its opener), found with numpy instead of a regex walk over the text (ExpertGPS writes one per point).
    None when an opener may lie inside another region: only a left-to-right scan knows which "<!" is real then."""
    a = reader.a
    lo = int(opens[0])
    gts = np.flatnonzero(a[lo:hi] == _GT) + lo
    gts = gts[gts >= lo + 2]
    before1, before2 = a[gts - 1], a[gts - 2]
    third = a[np.minimum(opens + 2, a.shape[0] - 1)]
    is_pi = a[opens + 1] == _QUESTION
    is_comment = ~is_pi & (third == _DASH)
    is_cdata = ~is_pi & (third == _LBRACKET)  # past the root, "<![" opens a CDATA section
    if not (is_pi | is_comment | is_cdata).all():
        return None  # text inside a region ("<!x" in a CDATA section), or a declaration: the scan decides
    end = np.full(opens.shape[0], -1, dtype=np.int64)
    # The closer's ">" must lie past the opener: "<![CDATA[]]>" is 12 bytes, "<!---->" 7, "<??>" 4.
    for kind, closer, shortest in ((is_cdata, gts[(before1 == _RBRACKET) & (before2 == _RBRACKET)], 11),
                                   (is_comment, gts[(before1 == _DASH) & (before2 == _DASH)], 6),
                                   (is_pi, gts[before1 == _QUESTION], 3)):
        if kind.any():
            k = np.searchsorted(closer, opens[kind] + shortest)
            if np.any(k >= closer.shape[0]):
                return None  # an opener inside a region, or markup running past the slice: the scan decides
            end[kind] = closer[k] + 1
    if opens.shape[0] > 1 and np.any(opens[1:] < end[:-1]):
        return None
    return np.stack([opens, end], axis=1)


def _point_ends(reader: _Bytes, end_tags: np.ndarray, raw_names: list[bytes]) -> np.ndarray:
    """Offsets of the end tags (``</`` at ``end_tags``) closing one of the point tag names, in order."""
    a = reader.a
    last = a.shape[0] - 1
    at = end_tags + 2
    matched = np.zeros(end_tags.shape[0], dtype=bool)
    for raw in raw_names:
        k = len(raw)
        after = a[np.minimum(at + k, last)]
        # Cheap byte tests first (first byte of the name, a delimiter right after it), then the full name.
        rows = np.flatnonzero((a[at] == raw[0]) & ((after == _GT) | (after <= 32)))
        hit = np.ones(rows.shape[0], dtype=bool)
        for j in range(0, k, 8):
            piece = raw[j:j + 8]
            hit &= (reader.word(at[rows] + j) & _PREFIX_MASKS[len(piece)]) == _word_of(piece)
        matched[rows[hit]] = True
    return end_tags[matched]


def _no_references(amps: np.ndarray | None, start: np.ndarray, end: np.ndarray) -> None:
    """Decline when an entity or character reference lies in one of the [start, end) texts."""
    if amps is not None and np.any(np.searchsorted(amps, start) != np.searchsorted(amps, end)):
        raise _Decline


def _coordinates(reader: _Bytes, after_name: np.ndarray, amps: np.ndarray | None, columns: np.ndarray) -> str | None:
    """Fill LAT/LON from the point start tags; returns the first unreadable pair, as the engines report it."""
    a = reader.a
    bare = a[after_name] == _GT  # <trkpt>: no coordinates, which is not an error
    rows = np.flatnonzero(~bare)
    if rows.size == 0:
        return None
    at = after_name[rows]
    head = reader.word(at)
    v1 = at + 6
    words1, len1 = _quoted(reader, v1)
    q2 = v1 + len1
    mid = reader.word(q2)
    v2 = q2 + 7
    words2, len2 = _quoted(reader, v2)
    matched = np.zeros(rows.shape[0], dtype=bool)
    swapped = np.zeros(rows.shape[0], dtype=bool)
    for first_attr, between, is_swapped in _ATTR_SHAPES:
        ok = (head & _PREFIX_MASKS[6]) == _word_of(first_attr)
        ok &= (mid & _PREFIX_MASKS[7]) == _word_of(between)
        matched |= ok
        swapped |= ok & is_swapped
    if not matched.all() or np.any(len1 < 0) or np.any(len2 < 0) or np.any(a[v2 + len2 + 1] != _GT):
        raise _Decline  # another attribute layout: gpxfast reads it through expat
    _no_references(amps, np.concatenate([v1, v2]), np.concatenate([q2, v2 + len2]))
    num1, ok1 = _decimals(words1.view(np.uint8), len1)
    num2, ok2 = _decimals(words2.view(np.uint8), len2)
    bad = None
    for k in np.flatnonzero(~(ok1 & ok2)).tolist():  # the engines' rules: float() of expat's text, pair by pair
        t1 = _attr_text(reader.data, int(v1[k]), int(q2[k]))
        t2 = _attr_text(reader.data, int(v2[k]), int(v2[k] + len2[k]))
        try:
            num1[k], num2[k] = float(t1), float(t2)
        except ValueError:
            num1[k] = num2[k] = np.nan
            if bad is None:
                la, lo = (t2, t1) if swapped[k] else (t1, t2)
                bad = f"lat={la!r} lon={lo!r}"
    columns[LAT, rows] = np.where(swapped, num2, num1)
    columns[LON, rows] = np.where(swapped, num1, num2)
    return bad


def _word_of(text: bytes) -> np.uint64:
    return np.frombuffer(text.ljust(8, b"\0"), dtype="<u8")[0]


_ALL_QUOTES = _ONES * np.uint64(_QUOTE)


def _quoted(reader: _Bytes, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The attribute values starting at ``start``: (n, 3) words zeroed from the closing '"' on, and the
    value lengths (-1 when no '"' is within _COORD_WIDTH bytes). Zero-byte test as in _name_end."""
    n_words = _COORD_WIDTH // 8
    words = np.zeros((start.shape[0], n_words), dtype="<u8")
    length = np.full(start.shape[0], -1, dtype=np.int64)
    rows = np.arange(start.shape[0])
    for k in range(n_words):
        w = reader.word(start[rows] + 8 * k)
        v = w ^ _ALL_QUOTES
        end = _lowest_flagged_byte((v - _ONES) & ~v & _HIGH)
        words[rows, k] = w & _PREFIX_MASKS[end]
        done = end < 8
        length[rows[done]] = 8 * k + end[done]
        rows = rows[~done]
        if rows.size == 0:
            break
    return words, length


#: Digits converted in numpy: an integer of up to 18 digits is exact in int64 (below 2**63). Up to 2**53 it is
#: exact in float64 too and one division is the correctly rounded result; above, see :func:`_divide_exactly`.
_MAX_DIGITS = 18
_MAX_PATTERNS = 8  # number layouts converted in numpy per column; rarer ones go through float()
_POW10_INT = 10 ** np.arange(_MAX_DIGITS + 1, dtype=np.int64)
_POW10 = _POW10_INT.astype(np.float64)  # exact: 10**18 = 2**18 * 5**18 and 5**18 < 2**53
_POW5 = 5 ** np.arange(_MAX_DIGITS + 1, dtype=np.uint64)
_EXACT_INT = 1 << 53
_FRACTION_BITS = np.int64((1 << 52) - 1)
_HIDDEN_BIT = np.int64(1 << 52)


def _divide_exactly(mantissa: np.ndarray, places: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``mantissa / 10**places`` rounded to the nearest double (ties to even), as float() of the decimal text
    gives, for non-negative int64 mantissas; and which rows are proven (the others: the caller uses float()).

    Below 2**53 both operands are exact doubles and one division rounds correctly. Above (16-18 digit
    coordinates from phone apps) the quotient can be one unit in the last place off, so it, then its
    neighbours, are tested with integers: c = M * 2**E is the nearest double to x = N / 10**p exactly when
    |N * 2**-(E+p) - M * 5**p| <= 5**p / 2 (both sides of |x - c| <= ulp / 2 scaled by 2**-(E+p) / 5**p).
    That difference is at most a few times 5**p < 2**42, so wrapping uint64 arithmetic gets it exactly even
    though the two products overflow.
    """
    value = mantissa.astype(np.float64) / _POW10[places]
    ok = np.ones(mantissa.shape[0], dtype=bool)
    rows = np.flatnonzero(mantissa >= _EXACT_INT)
    if rows.size == 0:
        return value, ok
    ok[rows] = False
    approx = value[rows]
    for toward in (None, 0.0, np.inf):  # the quotient, then the double below it, then the one above
        candidate = approx if toward is None else np.nextafter(approx, toward)
        n = mantissa[rows].astype(np.uint64)
        pow5 = _POW5[places[rows]]
        bits = candidate.view(np.int64)
        m = ((bits & _FRACTION_BITS) | _HIDDEN_BIT).astype(np.uint64)
        k = (bits >> 52) - 1075 + places[rows]  # E + p
        up = np.maximum(k, 0).astype(np.uint64)  # k > 0 only for a few places: compare N with (M * 5**p) << k
        diff = (n << np.maximum(-k, 0).astype(np.uint64)) - ((m * pow5) << up)
        twice = np.abs((diff << np.uint64(1)).view(np.int64)).astype(np.uint64)
        half = pow5 << up
        nearest = (twice < half) | ((twice == half) & ((m & np.uint64(1)) == 0))  # a tie goes to the even one
        nearest &= m != np.uint64(1 << 52)  # at a power of two the doubles below are twice as close: float()
        value[rows[nearest]] = candidate[nearest]
        ok[rows[nearest]] = True
        rows, approx = rows[~nearest], approx[~nearest]
        if rows.size == 0:
            break
    return value, ok


def _decimals(text: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values of the texts shaped ``-?digits[.digits]`` with at most 18 digits, and which rows those are.

    ``text``: (n, width) bytes, each row a text from its first byte, zero past ``length``. Such a text
    is an integer (exact in int64) divided by an exact power of ten, rounded as float() rounds it (see
    :func:`_divide_exactly`). Rows are grouped by layout (length, dot, sign) - a column of one file
    has a handful - so each group is a small matrix product. Other rows: NaN and ok=False.
    """
    n = text.shape[0]
    value = np.full(n, np.nan)
    ok = np.zeros(n, dtype=bool)
    if n == 0:
        return value, ok
    whole_int = np.zeros(n, dtype=np.int64)  # the digits as one integer, and the count after the dot
    place = np.zeros(n, dtype=np.intp)
    width = int(min(text.shape[1], max(1, int(length.max()))))
    text = text[:, :width]
    is_dot = text == _DOT
    dot_at = np.where(is_dot.any(axis=1), is_dot.argmax(axis=1), -1)
    negative = text[:, 0] == _MINUS
    layout = ((np.minimum(length, width + 1) * 64 + dot_at + 1) * 2 + negative).astype(np.intp)
    counts = np.bincount(layout)
    patterns = np.flatnonzero(counts)
    order = np.argsort(layout, kind="stable") if patterns.size > 1 else None
    bounds = np.cumsum(counts[patterns]).tolist()
    for pattern, hi, seen in sorted(zip(patterns.tolist(), bounds, counts[patterns].tolist(), strict=True),
                                    key=lambda p: -p[2])[:_MAX_PATTERNS]:
        size, dot, sign = pattern // 128, (pattern // 2) % 64 - 1, pattern % 2
        int_end = dot if dot >= 0 else size
        if size > width or not 1 <= size - sign - (dot >= 0) <= _MAX_DIGITS:
            continue
        rows = order[hi - seen:hi] if order is not None else slice(None)
        block = text[rows] if order is not None else text
        # Integer dot products (numpy's own loop: a float matmul would wake BLAS threads for nothing).
        whole = block[:, sign:int_end] - np.uint8(_DIGIT0)  # non-digits wrap above 9
        good = (whole <= 9).all(axis=1)
        mantissa = np.dot(whole, _POW10_INT[int_end - sign - 1::-1]) if int_end > sign else np.zeros(seen, np.int64)
        places = size - dot - 1 if dot >= 0 else 0
        if places:
            frac = block[:, dot + 1:size] - np.uint8(_DIGIT0)
            good &= (frac <= 9).all(axis=1)
            mantissa = mantissa * _POW10_INT[places] + np.dot(frac, _POW10_INT[places - 1::-1])
        if good.all():
            whole_int[rows], place[rows], ok[rows] = mantissa, places, True
        else:
            keep = order[hi - seen:hi][good] if order is not None else np.flatnonzero(good)
            whole_int[keep], place[keep], ok[keep] = mantissa[good], places, True
    # One division for all layouts (its exactness check is a few dozen numpy calls).
    number, exact = _divide_exactly(whole_int, place)
    value = np.where(ok & exact, np.where(negative, -number, number), np.nan)
    ok &= exact
    if not ok.all():
        _long_decimals(text, length, value, ok)
    return value, ok


def _long_decimals(text: np.ndarray, length: np.ndarray, value: np.ndarray, ok: np.ndarray) -> None:
    """The rows left that are still plain ``-?digits[.digits]`` (more than 18 digits, or a quotient
    :func:`_divide_exactly` could not prove) converted by numpy's string cast, which rounds correctly like
    float()."""
    rest = np.flatnonzero(~ok)
    width = text.shape[1]
    block = text[rest]
    size = length[rest]
    at = np.arange(width)
    inside = at < size[:, None]
    digit = (block >= _DIGIT0) & (block <= _DIGIT0 + 9)
    dot = block == _DOT
    allowed = digit | dot | ((block == _MINUS) & (at == 0))
    plain = ((allowed | ~inside).all(axis=1) & (dot.sum(axis=1) <= 1) & digit.any(axis=1)
             & (size > 0) & (size <= width))
    if plain.any():
        rows = rest[plain]
        value[rows] = np.ascontiguousarray(text[rows]).view(f"S{width}").ravel().astype(np.float64)
        ok[rows] = True


def _texts(reader: _Bytes, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """(n, width) bytes of the texts [start, start + length) (width: the longest, at most _TEXT_WIDTH)."""
    n_words = max(1, (min(int(length.max()), _TEXT_WIDTH) + 7) // 8) if start.size else 1
    words = np.empty((start.shape[0], n_words), dtype="<u8")
    for k in range(n_words):
        words[:, k] = reader.word(start + 8 * k) & _PREFIX_MASKS[np.clip(length - 8 * k, 0, 8)]
    return words.view(np.uint8)


_ATTR_BLANKS = str.maketrans({"\t": " ", "\n": " "})


def _attr_text(data: bytes, start: int, end: int) -> str:
    """An attribute value as expat reports it: line ends normalised, then each blank a space."""
    text = data[start:end].decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n").translate(_ATTR_BLANKS)


def _fallback_float(text: bytes) -> float:
    """gpxfast's per-value rule: float() on the bytes, then on the text (non-ASCII digits), else NaN."""
    try:
        return float(text)
    except ValueError:
        try:
            return float(text.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return float("nan")


def _assign_numbers(reader: _Bytes, start: np.ndarray, end: np.ndarray, owner: np.ndarray, slot: np.ndarray,
                    columns: np.ndarray) -> None:
    """Write each point's first readable value per slot."""
    if start.size == 0:
        return
    length = end - start
    value, ok = _decimals(_texts(reader, start, length), length)
    for k in np.flatnonzero(~ok).tolist():
        value[k] = _fallback_float(reader.data[int(start[k]):int(end[k])])
    keep = ~np.isnan(value)
    if not keep.all():
        owner, slot, value = owner[keep], slot[keep], value[keep]
    key = owner * N_SLOTS + slot
    if key.shape[0] > 1 and not np.all(key[1:] > key[:-1]):  # several values of one slot in a point
        _, first = np.unique(key, return_index=True)
        owner, slot, value = owner[first], slot[first], value[first]
    columns[slot, owner] = value


def _times(reader: _Bytes, start: np.ndarray, end: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Epoch seconds per point from its first <time> (NaN when absent or unreadable)."""
    out = np.full(n, np.nan)
    if start.size == 0:
        return out
    if owner.shape[0] > 1 and np.any(owner[1:] == owner[:-1]):
        _, first = np.unique(owner, return_index=True)  # the first <time> wins, readable or not
        start, end, owner = start[first], end[first], owner[first]
    length = end - start
    fits = length <= _TIME_WIDTH
    n_words = max(3, (int(length[fits].max()) + 7) // 8 if fits.any() else 0)
    length = np.where(fits, length, 0)  # a row of zeros fails the fast check: parsed one by one below
    words = np.empty((start.shape[0], n_words), dtype="<u8")
    for k in range(n_words):
        words[:, k] = reader.word(start + 8 * k) & _PREFIX_MASKS[np.clip(length - 8 * k, 0, 8)]
    seconds, ok = parse_time_codes(words.view(np.uint8))
    for k in np.flatnonzero(~ok).tolist():
        seconds[k] = parse_time(reader.data[int(start[k]):int(end[k])].decode("utf-8", "replace"))
    out[owner] = seconds
    return out
