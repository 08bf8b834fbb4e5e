"""Fast FIT decoding: one cheap framing pass in Python, then numpy per record layout.

fitdecode builds a Python object for every field of every message (~200 µs per record), which is
far too slow for bulk ingest. FIT is a stream of small records whose layout is fixed by earlier
definition messages, so most of the work can be done column-wise:

1. A framing pass walks the records in order. For a data message it only looks its header byte up
   in a 256-entry table (size, kind, sink) and, for ``record`` messages, appends the offset to the
   list of its layout. Definitions, developer-field descriptions and the few metadata messages
   (file_id, session, sport, lap) take a slower exact path.
2. Every ``record`` layout is then decoded with numpy: the bytes of each needed field are gathered
   for all its messages at once and converted, with the base type's invalid value becoming NaN.

Integrity is checked like fitdecode's strict mode (``CrcCheck.RAISE`` / ``ErrorHandling.RAISE``),
in the same stream order, so a damaged file gets the same message either way: header CRC, file CRC
(computed with numpy in blocks, see :func:`crc16`), truncation, and chained files. Anything whose
exact fitdecode outcome this module does not reproduce (malformed definitions, undefined local
messages, developer fields that shadow standard names, component fields with odd types, ...) raises
:class:`Unsupported`, and the caller decodes the file with fitdecode instead. Those are corrupt or
exotic files; the common ones never leave the fast path.
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from domain.algorithms.parsing import fitprofile
from domain.algorithms.parsing.common import (
    MAX_POINTS,
    clean_laps,
    clean_text,
    normalize_sport,
    resolve_cadence,
    too_many_points,
)
from domain.algorithms.track import ParseError, Track

#: Seconds between the Unix epoch and the FIT epoch (1989-12-31T00:00:00Z).
FIT_EPOCH_OFFSET = 631_065_600
#: FIT date_time values below this are "seconds since device power-up", not wall-clock times.
MIN_ABSOLUTE_FIT_TIME = 0x10000000
SEMICIRCLE_TO_DEG = 180.0 / 2**31
#: Only the first this many lap messages are read (a bound on work for hostile files).
MAX_LAPS = 10_000
#: Only the first this many session messages contribute totals.
MAX_SESSIONS = 10_000

DAMAGED = "The FIT file is damaged: "
MSG_CRC = DAMAGED + "its checksum does not match, the file was altered or corrupted"
MSG_EOF = DAMAGED + "it ends unexpectedly, the file is probably truncated"
MSG_HEADER = DAMAGED + "its header is invalid"

_NAN = math.nan
_BYTE = fitprofile.BASE_TYPE_BYTE
_BASE_TYPES = fitprofile.BASE_TYPES
_MESSAGES = fitprofile.MESSAGE_TYPES

# Global message numbers.
_FILE_ID, _SPORT, _SESSION, _LAP, _RECORD = 0, 12, 18, 19, 20
_FIELD_DESCRIPTION, _DEVELOPER_DATA_ID = 206, 207
_HR = fitprofile.MESG_NUM_HR
_TIMESTAMP = fitprofile.FIELD_NUM_TIMESTAMP  # 253 in every message

#: record field names Track columns are built from.
RECORD_TARGETS = frozenset({
    "timestamp", "position_lat", "position_long", "enhanced_altitude", "altitude", "heart_rate",
    "cadence", "fractional_cadence", "power", "temperature",
})
#: Field names read from the metadata messages.
_META_NAMES: dict[int, frozenset[str]] = {
    _FILE_ID: frozenset({"manufacturer", "product", "garmin_product", "product_name"}),
    _SPORT: frozenset({"sport", "sub_sport"}),
    _SESSION: frozenset({"sport", "sub_sport", "total_distance", "total_timer_time", "total_calories"}),
    _LAP: frozenset({"start_time"}),
    _RECORD: RECORD_TARGETS,
}
_INTEREST = frozenset(_META_NAMES)

# numpy dtype code and invalid raw value per numeric base type (None: floats, NaN is invalid).
# Mirrors the ``parse`` lambdas of fitprofile.BASE_TYPES; a test keeps the two in step.
_NUMERIC: dict[int, tuple[str, int | None]] = {
    0x00: ("u1", 0xFF), 0x01: ("i1", 0x7F), 0x02: ("u1", 0xFF),
    0x83: ("i2", 0x7FFF), 0x84: ("u2", 0xFFFF), 0x85: ("i4", 0x7FFFFFFF), 0x86: ("u4", 0xFFFFFFFF),
    0x88: ("f4", None), 0x89: ("f8", None),
    0x0A: ("u1", 0), 0x8B: ("u2", 0), 0x8C: ("u4", 0),
    0x8E: ("i8", 0x7FFF_FFFF_FFFF_FFFF), 0x8F: ("u8", 0xFFFF_FFFF_FFFF_FFFF), 0x90: ("u8", 0),
}
_INTEGER = frozenset(k for k, (code, _) in _NUMERIC.items() if code[0] in "iu")

# Message kinds in the framing table.
_SKIP, _REC_TS, _REC, _TS, _SPECIAL = range(5)
#: The framing pass checks the point cap (and so bounds memory) at least every this many bytes.
_CHUNK = 1 << 20


class Unsupported(Exception):
    """This file needs fitdecode to reproduce its exact outcome (internal signal, never user-facing)."""


# --------------------------------------------------------------------------- shared value rules


def fit_time(value: object) -> float:
    """Epoch seconds of a FIT date_time value; NaN when missing or relative to device power-up."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= MIN_ABSOLUTE_FIT_TIME:
        return float(value) + FIT_EPOCH_OFFSET
    return _NAN


def sport_label(sport: object, sub_sport: object) -> str | None:
    """The FIT sport enum name, with the sub-sport where it is the meaningful part (strength)."""
    if sport is None:
        return None
    if isinstance(sub_sport, str) and sub_sport in {"strength_training", "cardio_training"}:
        return "strength_training" if sub_sport == "strength_training" else "other"
    if isinstance(sub_sport, str) and sub_sport in {"treadmill", "trail", "track", "street"} and sport == "running":
        return "running"
    return str(sport)


def device_label(product_name: object, manufacturer: object, garmin_product: object,
                 product: object) -> str | None:
    """Device name from file_id: the product name when given, else "<Manufacturer> <Product>"."""
    if isinstance(product_name, str) and product_name.strip():
        return clean_text(product_name)
    if garmin_product is None:
        garmin_product = product
    # Enum names are snake_case ("wahoo_fitness", "edge810"); unknown products stay numeric ids.
    parts = [str(p).replace("_", " ").title() for p in (manufacturer, garmin_product) if p is not None]
    return clean_text(" ".join(parts)) if parts else None


#: session field → (Track.totals key); values are already scaled to m, s and kcal by the profile.
SESSION_TOTALS = (("total_distance", "distance_m"), ("total_timer_time", "duration_s"),
                  ("total_calories", "energy_kcal"))


def add_session_totals(totals: dict[str, float], get: Callable[[str], object]) -> None:
    """Add one session's totals (a multisport file has one session per leg, so they are summed)."""
    for name, key in SESSION_TOTALS:
        value = get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            totals[key] = totals.get(key, 0.0) + float(value)


# --------------------------------------------------------------------------- CRC


def _byte_table() -> np.ndarray:
    """CRC-16/ARC (the FIT CRC: reflected polynomial 0xA001, init 0) one-byte step table."""
    crc = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        crc = np.where(crc & 1, (crc >> 1) ^ 0xA001, crc >> 1)
    return crc.astype(np.uint16)


_T8 = _byte_table()
_T8_LIST = [int(x) for x in _T8]


def _word_table() -> np.ndarray:
    """State after feeding two zero bytes, for every 16-bit state.

    With init 0 and no final xor the CRC is linear, and feeding a little-endian word ``w`` is
    ``crc = T16[crc ^ w]``: a whole 16-bit step is one table lookup.
    """
    x = np.arange(1 << 16, dtype=np.uint32)
    for _ in range(2):
        x = _T8[x & 0xFF].astype(np.uint32) ^ (x >> 8)
    return x.astype(np.uint16)


_T16 = _word_table()


#: Words per block in :func:`crc16`: few numpy steps per block, many blocks side by side.
_CRC_BLOCK_WORDS = 16


@lru_cache(maxsize=64)
def _skip_table(words: int) -> np.ndarray:
    """State after feeding ``words`` zero words, for every 16-bit state (by repeated squaring)."""
    if words == 1:
        return _T16
    half = _skip_table(words // 2)
    table = half[half]
    return _T16[table] if words & 1 else table


def crc16(data: bytes, start: int = 0, end: int | None = None) -> int:
    """FIT CRC of ``data[start:end]`` (same value as fitdecode.utils.compute_crc).

    Long inputs are cut into equal blocks whose CRCs are computed side by side with numpy, one word
    column per step, then folded pairwise: two neighbouring spans combine as ``skip(left) ^ right``,
    ``skip`` feeding as many zero words as the right span holds. Zero bytes in front do not change a
    CRC with init 0, which is how the input is padded to a power-of-two number of blocks.
    """
    end = len(data) if end is None else end
    n = end - start
    if n < 2048:
        crc = 0
        table = _T8_LIST
        for b in data[start:end]:
            crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
        return crc
    words = _CRC_BLOCK_WORDS
    blocks = 1 << (-(-n // (2 * words)) - 1).bit_length()
    padded = np.zeros(blocks * 2 * words, dtype=np.uint8)
    padded[padded.shape[0] - n:] = np.frombuffer(data, dtype=np.uint8, count=n, offset=start)
    columns = np.ascontiguousarray(padded.view("<u2").reshape(blocks, words).T)
    crcs = np.zeros(blocks, dtype=np.uint16)
    for column in columns:
        np.bitwise_xor(crcs, column, out=crcs)
        np.take(_T16, crcs, out=crcs)
    span = words
    while crcs.shape[0] > 1:
        crcs = _skip_table(span)[crcs[0::2]] ^ crcs[1::2]
        span *= 2
    return int(crcs[0])


# --------------------------------------------------------------------------- definitions


@dataclass(eq=False)
class _Definition:
    """One definition message, with what the framing pass and the decoders need."""

    global_num: int
    endian: str
    #: (field number, size, effective base type identifier) of the standard fields, in file order.
    fields: tuple[tuple[int, int, int], ...]
    #: (developer data index, field number, size, base type, name) of the developer fields.
    dev_fields: tuple[tuple[int, int, int, fitprofile.BaseType, object], ...]
    size: int = 0
    offsets: tuple[int, ...] = ()
    kind: int = _SKIP
    #: Set when reading a message of this layout would make fitdecode fail or diverge.
    broken: bool = False
    #: Offsets into the message and base types of the standard timestamp (253) fields.
    ts_fields: tuple[tuple[int, int], ...] = ()
    sink: Callable[[int], None] | None = None


#: A dispatch-table entry: (message size, kind, record sink, definition), indexed by record header byte.
_Entry = tuple[int, int, Callable[[int], None] | None, _Definition]


def _field_is_single_int(ident: int, size: int) -> bool:
    return ident in _INTEGER and size == _BASE_TYPES[ident].size


@lru_cache(maxsize=4096)
def _standard_field_breaks(global_num: int, num: int, size: int, ident: int) -> bool:
    """Whether fitdecode may raise (or expand into a name we read) for this field declaration."""
    mesg = _MESSAGES.get(global_num)
    fld = mesg.fields.get(num) if mesg else None
    if num == _TIMESTAMP and not _field_is_single_int(ident, size):
        return True  # feeds the compressed-timestamp accumulator with a non-integer
    if fld is None or mesg is None:
        return False
    if global_num == _HR and num == fitprofile.FIELD_NUM_HR_EVENT_TIMESTAMP_12:
        return True  # fitdecode asserts on its own state here
    names = _META_NAMES.get(global_num, frozenset())
    candidates = [fld, *(fld.subfields or ())]
    single_int = _field_is_single_int(ident, size)
    plain_array = ident not in (_BYTE.identifier, 0x07) and ident in _BASE_TYPES and size != _BASE_TYPES[ident].size
    for cand in candidates:
        for comp in cand.components or ():
            if comp.def_num not in mesg.fields:
                return True
            if plain_array or (comp.accumulate and not single_int and ident != _BYTE.identifier):
                return True  # tuples with None, or accumulating floats/strings, raise in fitdecode
            if cand is not fld and comp.accumulate:
                return True  # sub-field accumulators are never initialised in fitdecode
            # A component that expands into a name we read: only altitude → enhanced_altitude, from
            # a plain number, is decoded column-wise.
            altitude = global_num == _RECORD and num == 2 and comp.def_num == 78 and (
                single_int or ident in (0x88, 0x89))
            if mesg.fields[comp.def_num].name in names and not altitude:
                return True
    return global_num == _RECORD and fld.name in RECORD_TARGETS and bool(fld.type.enum or fld.subfields)


def _dev_breaks(size: int, base: fitprofile.BaseType, num: int) -> bool:
    # fitdecode reads int(size / base.size) values: zero of them raises, a remainder misframes.
    count = int(size / base.size)
    return count == 0 or count * base.size != size or num == _TIMESTAMP


# --------------------------------------------------------------------------- raw values (exact path)


def _raw(base: fitprofile.BaseType, endian: str, data: bytes, pos: int, size: int) -> object:
    """One field's raw value exactly as fitdecode computes it (tuple for arrays, None when invalid)."""
    values = struct.unpack_from(f"{endian}{int(size / base.size)}{base.fmt}", data, pos)
    if base.identifier == _BYTE.identifier:
        return base.parse(values)
    if len(values) > 1:
        return tuple(base.parse(v) for v in values)
    return base.parse(values[0])


def _scale_offset(fld: Any, value: object) -> object:
    """``value`` with the scale and offset of ``fld``, a fitdecode Field or SubField (fitdecode is untyped)."""
    if isinstance(value, tuple):
        return tuple(_scale_offset(fld, v) for v in value)
    if isinstance(value, int | float):
        scale, offset = fld.scale, fld.offset
        if scale:
            value = float(value) / scale
        if offset:
            value = value - offset
    return value


@dataclass
class _Fields:
    """Decoded fields of one message: (name, parent name, value, raw value), in fitdecode's order."""

    items: list[tuple[object, object, object, object]]

    def value(self, name: str) -> object:
        for own, parent, value, _ in self.items:
            if name in (own, parent):
                return value
        return None

    def raw(self, name: str) -> tuple[bool, object]:
        for own, parent, _, raw in self.items:
            if name in (own, parent):
                return True, raw
        return False, None


def _decode_message(d: _Definition, data: bytes, pos: int) -> _Fields:
    """Slow exact decode of one message (metadata and developer-field descriptions only)."""
    raws: list[object] = []
    p = pos + 1
    for _, size, ident in d.fields:
        raws.append(_raw(_BASE_TYPES[ident], d.endian, data, p, size))
        p += size
    mesg = _MESSAGES.get(d.global_num)
    items: list[tuple[object, object, object, object]] = []
    for (num, _, _), raw in zip(d.fields, raws, strict=True):
        fld = mesg.fields.get(num) if mesg else None
        if fld is None:
            items.append((f"unknown_{num}", None, raw, raw))
            continue
        parent = None
        for sub in fld.subfields or ():
            if any(n == ref.def_num and ref.raw_value == r
                   for ref in sub.ref_fields for (n, _, _), r in zip(d.fields, raws, strict=True)):
                fld, parent = sub, fld
                break
        items.append((fld.name, parent.name if parent else None, _scale_offset(fld, fld.render(raw)), raw))
    for _, _, size, base, name in d.dev_fields:
        raw = _raw(base, d.endian, data, p, size)
        p += size
        items.append((name, None, raw, raw))
    return _Fields(items)


# --------------------------------------------------------------------------- record columns


@dataclass
class _Source:
    """Where one record target comes from in a layout: a field, or the altitude component of one."""

    offset: int
    size: int
    ident: int
    scale: float | None
    offset_value: float | None
    mask16: bool = False


def _record_plan(d: _Definition) -> dict[str, _Source | None]:
    """For each target name, the source fitdecode's ``{f.name: f.value}`` ends up with (last wins)."""
    mesg = _MESSAGES[_RECORD]
    plan: dict[str, _Source | None] = {}
    for (num, size, ident), off in zip(d.fields, d.offsets, strict=True):
        fld = mesg.fields.get(num)
        if fld is None:
            continue
        numeric = ident in _NUMERIC and size == _BASE_TYPES[ident].size
        for comp in fld.components or ():
            name = mesg.fields[comp.def_num].name
            if name in RECORD_TARGETS:  # only altitude → enhanced_altitude (checked in the definition)
                plan[name] = _Source(off, size, ident, comp.scale, comp.offset, mask16=ident in _INTEGER)
        if fld.name in RECORD_TARGETS:
            plan[fld.name] = _Source(off, size, ident, fld.scale, fld.offset) if numeric else None
    for _, _, _, _, name in d.dev_fields:
        if name in RECORD_TARGETS:
            raise Unsupported  # guarded in the definition already
    return plan


def _gather(buf: np.ndarray, offs: np.ndarray, src: _Source, endian: str) -> np.ndarray:
    """The field's values for all messages at ``offs`` as float64, invalid → NaN, scale applied."""
    code, invalid = _NUMERIC[src.ident]
    dtype = np.dtype(endian + code)
    n = offs.shape[0]
    start = int(offs[0]) + src.offset if n else 0
    stride = int(offs[1] - offs[0]) if n > 1 else 1
    if n and stride > 0 and int(offs[-1] - offs[0]) == stride * (n - 1) and np.all(np.diff(offs) == stride):
        # One evenly spaced run (the usual case): a strided view, no copy.
        raw = np.ndarray((n,), dtype=dtype, buffer=buf, offset=start, strides=(stride,))
    else:
        idx = (offs + src.offset)[:, None] + np.arange(src.size)
        raw = np.ascontiguousarray(buf[idx]).view(dtype).reshape(n)
    if invalid is None:
        values = raw.astype(np.float64)
        bad = np.isnan(values)
    else:
        bad = raw == raw.dtype.type(invalid)
        if src.mask16:  # fitdecode's component render keeps the low 16 bits
            wide = np.uint64 if code == "u8" else np.int64
            raw = raw.astype(wide) & wide(0xFFFF)
        values = raw.astype(np.float64)
    if src.scale:
        values = values / src.scale
    if src.offset_value:
        values = values - src.offset_value
    values[bad] = _NAN
    return values


# --------------------------------------------------------------------------- the framing pass


@dataclass
class _State:
    """Everything collected while walking the file."""

    groups: dict[tuple[object, ...], tuple[_Definition, array]] = field(default_factory=dict)
    compressed_pos: list[int] = field(default_factory=list)
    compressed_ts: list[int] = field(default_factory=list)
    laps: list[float] = field(default_factory=list)
    session_sport: str | None = None
    sport_msg: str | None = None
    device: str | None = None
    sessions: int = 0
    totals: dict[str, float] = field(default_factory=dict)


class _Walker:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.n = len(data)
        self.state = _State()
        self.definitions: dict[tuple[int, bytes], _Definition] = {}
        #: Bumped whenever developer-field descriptions change, so cached definitions using them expire.
        self.dev_generation = 0
        self._reset_file()

    def _reset_file(self) -> None:
        self.table: list[_Entry | None] = [None] * 256
        self.dev_types: dict[int, dict[int, tuple[fitprofile.BaseType, object]]] = {}
        self.acc = 0
        self.acc_pos = -1
        self.dev_generation += 1

    # ---- errors, always after the point cap (fitdecode would have stopped there first)

    def _record_count(self) -> int:
        return sum(len(offs) for _, offs in self.state.groups.values())

    def _fail(self, message: str) -> ParseError:
        if self._record_count() > MAX_POINTS:
            return too_many_points()
        return ParseError(message)

    def _unsupported(self) -> Exception:
        if self._record_count() > MAX_POINTS:
            return too_many_points()
        return Unsupported()

    # ---- files

    def run(self) -> _State:
        data, n = self.data, self.n
        pos = 0
        while True:
            if pos == n and pos > 0:
                break
            if n - pos < 12:
                raise self._fail(MSG_HEADER)
            header_size = data[pos]
            (body_size,) = struct.unpack_from("<I", data, pos + 4)
            if header_size < 12 or data[pos + 8:pos + 12] != b".FIT":
                raise self._fail(MSG_HEADER)
            extra = header_size - 12
            if extra:
                if extra < 2:
                    raise self._fail(MSG_HEADER)
                if pos + header_size > n:
                    raise self._fail(MSG_EOF)
                if extra > 2:
                    raise self._unsupported()  # fitdecode fails on such a header with struct.error
                (header_crc,) = struct.unpack_from("<H", data, pos + 12)
                if header_crc and crc16(data, pos, pos + 12) != header_crc:
                    raise self._fail(MSG_CRC)
            self._reset_file()
            body_end = pos + header_size + body_size
            self._body(pos + header_size, body_end)
            if body_end + 2 > n:
                raise self._fail(MSG_EOF)
            (file_crc,) = struct.unpack_from("<H", data, body_end)
            if crc16(data, pos, body_end) != file_crc:
                raise self._fail(MSG_CRC)
            pos = body_end + 2
        if self._record_count() > MAX_POINTS:
            raise too_many_points()
        return self.state

    def _body(self, pos: int, end: int) -> None:
        data = self.data
        table = self.table
        ts_pos = -1
        ts_entry: _Entry | None = None
        n = self.n
        stop = min(end, n)
        while pos < stop:
            limit = min(stop, pos + _CHUNK)
            while pos < limit:
                entry = table[data[pos]]
                if entry is None:
                    pos = self._definition(pos, end)
                    continue
                nxt = pos + entry[0]
                if nxt > end or nxt > n:
                    raise self._overrun(entry, nxt)
                kind = entry[1]
                if kind == _REC_TS:
                    entry[2](pos)  # type: ignore[misc]  # record kinds always have a sink; no check in this loop
                    ts_pos, ts_entry = pos, entry
                elif kind == _TS:
                    ts_pos, ts_entry = pos, entry
                elif kind == _REC:
                    entry[2](pos)  # type: ignore[misc]  # record kinds always have a sink; no check in this loop
                elif kind == _SPECIAL:
                    ts_pos, ts_entry = self._special(pos, entry, ts_pos, ts_entry)
                pos = nxt
            if self._record_count() > MAX_POINTS:
                raise too_many_points()
        if pos < end:
            raise self._fail(MSG_EOF)  # the data stops before the declared end of the records

    def _overrun(self, entry: _Entry, nxt: int) -> Exception:
        if entry[3].broken or nxt <= self.n:
            # Reading this layout fails differently, or the record runs past the declared data size
            # (fitdecode trips an assertion): let fitdecode have its say.
            return self._unsupported()
        return self._fail(MSG_EOF)

    # ---- definitions

    def _need(self, end: int) -> None:
        if end > self.n:
            raise self._fail(MSG_EOF)

    def _definition(self, pos: int, end: int) -> int:
        data = self.data
        header = data[pos]
        if header & 0x80 or not header & 0x40:
            raise self._unsupported()  # a data message whose local type was never defined
        local = header & 0x0F
        # Devices repeat the same few definitions (sometimes thousands of times): reuse the parsed
        # one when its bytes are the same (and, with developer fields, their descriptions too).
        key = self._definition_key(pos)
        if key is not None:
            cached = self.definitions.get(key)
            if cached is not None:
                stop = pos + 1 + len(key[1])
                if stop > end:
                    raise self._unsupported()
                self._install(local, cached)
                return stop
        p = pos + 1
        self._need(p + 5)
        endian = "<" if not data[p + 1] else ">"
        global_num, count = struct.unpack_from(endian + "HB", data, p + 2)
        p += 5
        fields: list[tuple[int, int, int]] = []
        for _ in range(count):
            self._need(p + 3)
            num, size, base_num = data[p], data[p + 1], data[p + 2]
            p += 3
            base = _BASE_TYPES.get(base_num, _BYTE)
            if size % base.size:
                base = _BYTE  # read as bytes, like fit.LenientSizeReader (COROS writes such fields)
            fields.append((num, size, base.identifier))
        dev_fields: list[tuple[int, int, int, fitprofile.BaseType, object]] = []
        if header & 0x20:
            self._need(p + 1)
            dev_count = data[p]
            p += 1
            for _ in range(dev_count):
                self._need(p + 3)
                num, size, index = data[p], data[p + 1], data[p + 2]
                p += 3
                described = self.dev_types.get(index, {}).get(num)
                if described is None:
                    raise self._unsupported()  # fitdecode: developer field not described
                dev_fields.append((index, num, size, described[0], described[1]))
        if p > end:
            raise self._unsupported()  # the definition runs past the data size (fitdecode asserts)
        d = self._build(global_num, endian, fields, dev_fields)
        if key is not None and len(self.definitions) < 4096:
            self.definitions[key] = d
        self._install(local, d)
        return p

    def _definition_key(self, pos: int) -> tuple[int, bytes] | None:
        """Cache key of the definition at ``pos``, or None when its bytes are not all there."""
        data, n = self.data, self.n
        if pos + 5 >= n:
            return None
        stop = pos + 6 + 3 * data[pos + 5]
        generation = -1
        if data[pos] & 0x20:
            if stop >= n:
                return None
            stop += 1 + 3 * data[stop]
            generation = self.dev_generation
        if stop > n:
            return None
        return generation, data[pos + 1:stop]

    def _build(self, global_num: int, endian: str, fields: list[tuple[int, int, int]],
               dev_fields: list[tuple[int, int, int, fitprofile.BaseType, object]]) -> _Definition:
        d = _Definition(global_num, endian, tuple(fields), tuple(dev_fields))
        offsets = []
        off = 1
        for _, size, _ in fields:
            offsets.append(off)
            off += size
        d.offsets = tuple(offsets)
        d.size = off + sum(size for _, _, size, _, _ in dev_fields)
        d.ts_fields = tuple((o, ident) for (num, _, ident), o in zip(fields, offsets, strict=True)
                            if num == _TIMESTAMP)
        names = _META_NAMES.get(global_num)
        d.broken = (
            any(size == 0 for _, size, _ in fields)
            or any(_standard_field_breaks(global_num, num, size, ident) for num, size, ident in fields)
            or any(_dev_breaks(size, base, num) for _, num, size, base, _ in dev_fields)
            or (names is not None and any(name in names for *_, name in dev_fields))
            or (global_num in (_FIELD_DESCRIPTION, _DEVELOPER_DATA_ID) and bool(dev_fields))
        )
        if d.broken:
            d.kind = _SPECIAL
        elif global_num == _RECORD:
            key = (endian, d.fields, d.size)
            group = self.state.groups.get(key)
            if group is None:
                group = self.state.groups[key] = (d, array("q"))
            d.sink = group[1].append
            d.kind = _REC_TS if d.ts_fields else _REC
        elif global_num in _INTEREST or global_num in (_FIELD_DESCRIPTION, _DEVELOPER_DATA_ID):
            d.kind = _SPECIAL
        elif d.ts_fields:
            d.kind = _TS
        return d

    def _install(self, local: int, d: _Definition) -> None:
        normal = (d.size, d.kind, d.sink, d)
        for h in (local, local | 0x10, local | 0x20, local | 0x30):
            self.table[h] = normal
        if local < 4:
            base = 0x80 | (local << 5)
            self.table[base:base + 32] = [(d.size, _SPECIAL, d.sink, d)] * 32

    # ---- messages that need more than an offset

    def _special(self, pos: int, entry: _Entry, ts_pos: int, ts_entry: _Entry | None,
                 ) -> tuple[int, _Entry | None]:
        d = entry[3]
        if d.broken:
            raise self._unsupported()
        if d.ts_fields:
            ts_pos, ts_entry = pos, entry
        header = self.data[pos]
        if header & 0x80:
            if ts_pos > self.acc_pos and ts_entry is not None:
                raw = self._last_timestamp(ts_pos, ts_entry[3])
                if raw is None:
                    raise self._unsupported()  # an invalid timestamp keeps an older value: rare, not tracked
                self.acc = raw
            offset = header & 0x1F
            value = offset + (self.acc & ~0x1F)
            if offset < (self.acc & 0x1F):
                value += 0x20
            self.acc, self.acc_pos = value, pos
            if d.global_num == _RECORD:
                d.sink(pos)  # type: ignore[misc]  # a record layout always has its sink
                self.state.compressed_pos.append(pos)
                self.state.compressed_ts.append(value)
            elif d.global_num in _INTEREST or d.global_num in (_FIELD_DESCRIPTION, _DEVELOPER_DATA_ID):
                self._message(pos, d)
        elif d.global_num == _RECORD:
            d.sink(pos)  # type: ignore[misc]  # a record layout always has its sink
        else:
            self._message(pos, d)
        return ts_pos, ts_entry

    def _message(self, pos: int, d: _Definition) -> None:
        try:
            self._decode_special(pos, d)
        except (ParseError, Unsupported):
            raise
        except Exception:
            # Not anticipated by this decoder: fitdecode decides what this message means.
            raise self._unsupported() from None

    def _last_timestamp(self, pos: int, d: _Definition) -> int | None:
        """The value fitdecode's accumulator holds after message ``pos``: its last valid timestamp."""
        value = None
        for off, ident in d.ts_fields:
            invalid = _NUMERIC[ident][1]
            (raw,) = struct.unpack_from(d.endian + _BASE_TYPES[ident].fmt, self.data, pos + off)
            if raw != invalid:
                value = raw
        return value

    def _decode_special(self, pos: int, d: _Definition) -> None:
        st = self.state
        g = d.global_num
        if g == _LAP:
            if len(st.laps) < MAX_LAPS:
                st.laps.append(fit_time(_decode_message(d, self.data, pos).value("start_time")))
        elif g == _SESSION:
            if st.sessions < MAX_SESSIONS:
                st.sessions += 1
                fields = _decode_message(d, self.data, pos)
                if st.session_sport is None:
                    st.session_sport = sport_label(fields.value("sport"), fields.value("sub_sport"))
                add_session_totals(st.totals, fields.value)
        elif g == _SPORT:
            if st.sport_msg is None:
                fields = _decode_message(d, self.data, pos)
                st.sport_msg = sport_label(fields.value("sport"), fields.value("sub_sport"))
        elif g == _FILE_ID:
            if st.device is None:
                f = _decode_message(d, self.data, pos)
                st.device = device_label(f.value("product_name"), f.value("manufacturer"),
                                         f.value("garmin_product"), f.value("product"))
        elif g == _DEVELOPER_DATA_ID:
            found, index = _decode_message(d, self.data, pos).raw("developer_data_index")
            if not found or type(index) is not int:
                raise self._unsupported()
            self.dev_types[index] = {}
            self.dev_generation += 1
        elif g == _FIELD_DESCRIPTION:
            self._field_description(_decode_message(d, self.data, pos))

    def _field_description(self, fields: _Fields) -> None:
        found, index = fields.raw("developer_data_index")
        if not found or type(index) is not int or index not in self.dev_types:
            raise self._unsupported()
        found, num = fields.raw("field_definition_number")
        if not found or type(num) is not int:
            raise self._unsupported()
        _, base_id = fields.raw("fit_base_type_id")
        if base_id is None:
            base = _BYTE
        elif type(base_id) is int and base_id in _BASE_TYPES:
            base = _BASE_TYPES[base_id]
        else:
            raise self._unsupported()
        _, name = fields.raw("field_name")
        self.dev_types[index][num] = (base, name)
        self.dev_generation += 1


# --------------------------------------------------------------------------- assembling the track


def _columns(data: bytes, state: _State) -> dict[str, np.ndarray]:
    buf = np.frombuffer(data, dtype=np.uint8)
    parts = [(d, np.frombuffer(offs, dtype=np.int64)) for d, offs in state.groups.values() if len(offs)]
    n = sum(len(o) for _, o in parts)
    if n == 0:
        return {}
    all_offs = np.concatenate([o for _, o in parts])
    order = np.argsort(all_offs, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    out = {name: np.full(n, _NAN) for name in RECORD_TARGETS}
    start = 0
    for d, offs in parts:
        where = rank[start:start + len(offs)]
        start += len(offs)
        for name, src in _record_plan(d).items():
            if src is not None:
                out[name][where] = _gather(buf, offs, src, d.endian)
    if state.compressed_pos:
        idx = np.searchsorted(all_offs[order], np.asarray(state.compressed_pos, dtype=np.int64))
        out["timestamp"][idx] = np.asarray(state.compressed_ts, dtype=np.float64)
    return out


def _fit_times(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(values >= MIN_ABSOLUTE_FIT_TIME, values + FIT_EPOCH_OFFSET, _NAN)


def parse(data: bytes) -> Track:
    """Decode FIT bytes into a raw Track (same result as the fitdecode-based parser).

    Raises ParseError for damaged files (with fitdecode's strict-mode messages) and Unsupported when
    the file must be decoded by fitdecode to get the exact same outcome.
    """
    if len(data) < 12 or data[8:12] != b".FIT":
        raise ParseError(MSG_HEADER)
    state = _Walker(data).run()
    cols = _columns(data, state)
    if not cols:
        raise ParseError("The file contains no track points")
    enh, alt = cols["enhanced_altitude"], cols["altitude"]
    cad, frac = cols["cadence"], cols["fractional_cadence"]
    sport = normalize_sport(state.session_sport or state.sport_msg)
    cadence = np.where(np.isnan(frac), cad, cad + frac)
    return Track(
        time=_fit_times(cols["timestamp"]),
        lat=cols["position_lat"] * SEMICIRCLE_TO_DEG, lon=cols["position_long"] * SEMICIRCLE_TO_DEG,
        ele=np.where(np.isnan(enh), alt, enh), hr=cols["heart_rate"],
        cadence=resolve_cadence(cadence, np.full(cadence.shape, _NAN), sport),
        power=cols["power"], temp=cols["temperature"], laps=clean_laps(state.laps), sport=sport,
        device=state.device, totals=dict(state.totals),
    )
