"""ISO 8601 timestamps → epoch seconds (UTC, float).

Parsing one string at a time with ``datetime.fromisoformat(...).timestamp()`` costs ~2 µs, which is
a third of the whole GPX hot path. Activity files almost always write every timestamp in the same
``YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]`` layout, so :func:`parse_times` decodes a whole batch at once
with numpy on the character codes and only falls back to :func:`parse_time` for rows the fast path
cannot prove valid. Both paths give identical results; no per-string cache is kept, so memory is
bounded by the batch the caller passes in.

Timestamps without a zone are taken as UTC (what GPX 1.0/1.1 and TCX mandate and what devices mean).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

_NAN = math.nan
_fromiso = datetime.fromisoformat

# Character codes used by the vectorised path.
_ZERO, _DASH, _COLON, _PLUS, _DOT, _COMMA = 48, 45, 58, 43, 46, 44
_T, _t, _SPACE, _Z, _z = 84, 116, 32, 90, 122
_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
_DAYS_IN_MONTH = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def parse_time(text: str | None) -> float:
    """Epoch seconds for one ISO 8601 timestamp, or NaN when it is missing or unreadable."""
    if not text:
        return _NAN
    s = text.strip()
    if s[-1:] == "z":
        s = s[:-1] + "Z"
    try:
        dt = _fromiso(s)
    except ValueError:
        return _NAN
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return dt.timestamp()
    except (OverflowError, OSError, ValueError):
        return _NAN


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm, vectorised)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _is_digit(codes: np.ndarray) -> np.ndarray:
    return (codes >= _ZERO) & (codes <= _ZERO + 9)


def _fast_parse(strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised parse; returns (seconds, ok) where rows with ok=False still need the slow path."""
    arr = np.array(strings, dtype=str)
    width = arr.dtype.itemsize // 4
    if width < 19:
        return np.full(len(strings), _NAN), np.zeros(len(strings), dtype=bool)
    codes = arr.view(np.uint32).reshape(len(strings), width)
    if width >= 20 and codes.max() < 128:  # ASCII: the byte decoder, with its shortcut for the usual layout
        return parse_time_codes(codes.astype(np.uint8))
    return _parse_codes(codes.astype(np.int32))


def _valid(year: np.ndarray, month: np.ndarray, day: np.ndarray, hour: np.ndarray, minute: np.ndarray,
           second: np.ndarray) -> np.ndarray:
    """Which rows are a real date (leap years counted) and time of day: the one calendar rule of every decoder."""
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    dim = _DAYS_IN_MONTH[np.minimum(np.maximum(month, 0), 12)] - ((month == 2) & ~leap)
    return ((year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= dim)
            & (hour <= 23) & (minute <= 59) & (second <= 59))


def _parse_codes(codes: np.ndarray, length: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The vectorised parser on an (n, width) array of character codes, 0-padded on the right (``length``: the
    string lengths, when the caller has them)."""
    n, width = codes.shape
    if length is None:
        length = np.count_nonzero(codes, axis=1)  # XML text cannot contain NUL, so this is the length
    rows = np.arange(n)

    dig = codes[:, _DIGITS] - _ZERO
    ok = np.all((dig >= 0) & (dig <= 9), axis=1) & (length >= 19)
    ok &= (codes[:, 4] == _DASH) & (codes[:, 7] == _DASH) & (codes[:, 13] == _COLON) & (codes[:, 16] == _COLON)
    sep = codes[:, 10]
    ok &= (sep == _T) | (sep == _t) | (sep == _SPACE)

    year = dig[:, 0] * 1000 + dig[:, 1] * 100 + dig[:, 2] * 10 + dig[:, 3]
    month = dig[:, 4] * 10 + dig[:, 5]
    day = dig[:, 6] * 10 + dig[:, 7]
    hour = dig[:, 8] * 10 + dig[:, 9]
    minute = dig[:, 10] * 10 + dig[:, 11]
    second = dig[:, 12] * 10 + dig[:, 13]
    ok &= _valid(year, month, day, hour, minute, second)

    # Zone suffix: "Z", "±HH:MM", "±HHMM" or "±HH", checked from the end of each string. The six characters
    # from the end are gathered once each (a 2-D gather per call is most of this function's time).
    tail = {k: codes[rows, np.minimum(np.maximum(length - k, 0), width - 1)] for k in range(1, 7)}

    def at(offset_from_end: int) -> np.ndarray:
        return tail[offset_from_end]

    def sign_at(k: int) -> np.ndarray:
        c = at(k)
        return ((c == _PLUS) | (c == _DASH)) & (length - k >= 19)

    last = at(1)
    is_z = (last == _Z) | (last == _z)
    dg = {k: _is_digit(at(k)) for k in (1, 2, 3, 4, 5)}
    colon = ~is_z & sign_at(6) & (at(3) == _COLON) & dg[1] & dg[2] & dg[4] & dg[5]
    compact = ~is_z & ~colon & sign_at(5) & dg[1] & dg[2] & dg[3] & dg[4]
    hours_only = ~is_z & ~colon & ~compact & sign_at(3) & dg[1] & dg[2]
    end = np.where(is_z, length - 1, np.where(colon, length - 6, np.where(compact, length - 5,
                                                                      np.where(hours_only, length - 3, length))))

    def two(k: int) -> np.ndarray:
        return (at(k) - _ZERO) * 10 + (at(k - 1) - _ZERO)

    off_h = np.where(colon, two(5), np.where(compact, two(4), np.where(hours_only, two(2), 0)))
    off_m = np.where(colon | compact, two(2), 0)
    sign_char = np.where(colon, at(6), np.where(compact, at(5), at(3)))
    sign = np.where(sign_char == _DASH, -1, 1)
    has_off = colon | compact | hours_only
    ok &= ~has_off | ((off_h <= 23) & (off_m <= 59))
    offset = np.where(has_off, sign * (off_h * 3600 + off_m * 60), 0)

    # Optional fraction between position 19 and the zone: "." or "," then at least one digit.
    frac = np.zeros(n)
    has_frac = end > 19
    if has_frac.any():
        mark = codes[:, 19]
        ok &= ~has_frac | (((mark == _DOT) | (mark == _COMMA)) & (end >= 21))
        scale = 0.1
        for j in range(20, width):
            inside = j < end
            if not inside.any():
                break
            c = codes[:, j]
            ok &= ~inside | _is_digit(c)
            frac += np.where(inside, (c - _ZERO) * scale, 0.0)
            scale /= 10.0
        # fromisoformat keeps microseconds only; truncate the same way so both paths agree.
        frac = np.floor(frac * 1e6 + 1e-6) / 1e6
    else:
        ok &= end == 19

    days = _days_from_civil(year, month, day)
    # int64: the codes are int32, and days * 86400 overflows int32 outside 1901-2038.
    seconds = (days.astype(np.int64) * 86400 + hour * 3600 + minute * 60 + second - offset).astype(np.float64) + frac
    return np.where(ok, seconds, _NAN), ok


#: Batches smaller than this are parsed string by string (same results, see parse_time). One string costs
#: ~0.5-1 µs, the vectorised decoder ~0.1 ms fixed for the plain "...Z" layout and ~0.2-0.3 ms with fractions or
#: zone offsets (several passes over the codes), so below about 160 strings the loop is the cheaper one.
SCALAR_BELOW = 160


def parse_times(strings: Sequence[str | None]) -> np.ndarray:
    """Epoch seconds for a batch of timestamps (NaN for missing/unreadable ones)."""
    n = len(strings)
    out = np.full(n, _NAN)
    present = [i for i, s in enumerate(strings) if s]
    if not present:
        return out
    values = [s.strip() for s in strings if s]  # the strings at ``present``, in order
    if len(values) < SCALAR_BELOW:
        # A handful of times (a short file, a batch's tail): the vectorised decoder's fixed cost of a few dozen
        # numpy calls is more than parsing them one by one.
        out[present] = [parse_time(v) for v in values]
        return out
    fast, ok = _fast_parse(values)
    idx = np.asarray(present)
    out[idx] = fast
    for k in np.flatnonzero(~ok):
        out[idx[k]] = parse_time(values[k])
    return out


def parse_time_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised parse of an (n, width) uint8 matrix of timestamp bytes, 0-padded on the right.

    Returns (seconds, ok); rows with ok=False (anything the fast layout check cannot prove, a
    too-narrow matrix included) must go through :func:`parse_time` one by one, as
    :func:`parse_times_bytes` does. Lets callers that already hold the bytes in numpy skip building
    one bytes object per timestamp.
    """
    n, width = codes.shape
    if width < 20:
        return np.full(n, _NAN), np.zeros(n, dtype=bool)
    plain = _parse_plain_utc(codes)
    if plain is not None:
        return plain, np.ones(n, dtype=bool)
    length = np.count_nonzero(codes, axis=1)  # XML text cannot contain NUL, so this is the length
    size = int(length[0]) if n else 0
    if (length == size).all():
        fixed = _parse_fixed_layout(codes, size)
        if fixed is not None:
            return fixed, np.ones(n, dtype=bool)
    return _parse_codes(codes.astype(np.int32), length)


# "YYYY-MM-DDTHH:MM:SSZ": separator columns and values, and the weights turning the 14 digits into
# year, month, day, hour, minute, second with one small integer matrix product.
_PLAIN_SEP_COLS = np.array([4, 7, 10, 13, 16, 19])
_PLAIN_SEPS = np.array([_DASH, _DASH, _T, _COLON, _COLON, _Z], dtype=np.uint8)
_PLAIN_WEIGHTS = np.zeros((14, 6), dtype=np.int64)
for _col, (_field, _weight) in enumerate([(0, 1000), (0, 100), (0, 10), (0, 1), (1, 10), (1, 1), (2, 10), (2, 1),
                                          (3, 10), (3, 1), (4, 10), (4, 1), (5, 10), (5, 1)]):
    _PLAIN_WEIGHTS[_col, _field] = _weight


def _prefix_fields(codes: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """(year, month, day, hour, minute, second) of every row's ``YYYY-MM-DDTHH:MM:SS`` columns, or None when one of
    them is not a digit (the fixed-column decoders then leave the batch to _parse_codes)."""
    digits = codes[:, _DIGITS] - np.uint8(_ZERO)  # bytes below '0' wrap to large values
    if (digits > 9).any():
        return None
    return tuple(np.dot(digits, _PLAIN_WEIGHTS).T)  # int64: no BLAS call


def _parse_plain_utc(codes: np.ndarray) -> np.ndarray | None:
    """Epoch seconds when *every* row is exactly ``YYYY-MM-DDTHH:MM:SSZ`` and valid, else None.

    The layout nearly every device writes, decoded with a fraction of _parse_codes' work; the values
    are those _parse_codes gives (same calendar arithmetic, no zone offset, no fraction).
    """
    if codes.shape[1] > 20 and codes[:, 20:].any():
        return None
    if not (codes[:, _PLAIN_SEP_COLS] == _PLAIN_SEPS).all():
        return None
    fields = _prefix_fields(codes)
    if fields is None:
        return None
    year, month, day, hour, minute, second = fields
    if not _valid(year, month, day, hour, minute, second).all():
        return None
    days = _days_from_civil(year, month, day)
    return (days * 86400 + hour * 3600 + minute * 60 + second).astype(np.float64)


#: Columns of a "YYYY-MM-DDTHH:MM:SS" prefix checked for their separator (the date/time one separately).
_PREFIX_SEP_COLS = np.array([4, 7, 13, 16])
_PREFIX_SEPS = np.array([_DASH, _DASH, _COLON, _COLON], dtype=np.uint8)


def _parse_fixed_layout(codes: np.ndarray, size: int) -> np.ndarray | None:
    """Epoch seconds when every row (all ``size`` characters long) is ``YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`` and
    valid, else None.

    What exporters write besides the plain layout (milliseconds, a zone offset) is usually one length for the
    whole file: then every character has a fixed column, so the fields are column slices and one small integer
    matrix product instead of _parse_codes' per-row gathers of the zone from the end (half its time). Fractions of
    varying length are left to _parse_codes: decoding each length apart costs more than its gathers. The
    arithmetic is _parse_codes' own, step for step (the fraction summed digit by digit with the same scales, then
    truncated to microseconds), so the values are identical.
    """
    if size < 20 or size > codes.shape[1]:
        return None
    last = codes[:, size - 1]
    if ((last == _Z) | (last == _z)).all():
        end, zone = size - 1, False
    elif size >= 25 and (codes[:, size - 3] == _COLON).all():
        end, zone = size - 6, True
    else:
        return None  # a compact or hours-only offset, no zone, or mixed zones: the general decoder
    if end != 19 and end < 21:
        return None
    sep = codes[:, 10]
    if not ((codes[:, _PREFIX_SEP_COLS] == _PREFIX_SEPS).all() and ((sep == _T) | (sep == _t) | (sep == _SPACE)).all()):
        return None
    fields = _prefix_fields(codes)
    if fields is None:
        return None
    year, month, day, hour, minute, second = fields
    ok = _valid(year, month, day, hour, minute, second)
    offset: np.ndarray | int = 0
    if zone:
        sign = codes[:, end]
        zone_digits = codes[:, [end + 1, end + 2, end + 4, end + 5]] - np.uint8(_ZERO)
        if not ((sign == _PLUS) | (sign == _DASH)).all() or (zone_digits > 9).any():
            return None
        zone_digits = zone_digits.astype(np.int64)
        off_h = zone_digits[:, 0] * 10 + zone_digits[:, 1]
        off_m = zone_digits[:, 2] * 10 + zone_digits[:, 3]
        ok &= (off_h <= 23) & (off_m <= 59)
        offset = np.where(sign == _DASH, -1, 1) * (off_h * 3600 + off_m * 60)
    if not ok.all():
        return None
    frac: np.ndarray | float = 0.0
    if end > 19:
        mark = codes[:, 19]
        fraction = codes[:, 20:end] - np.uint8(_ZERO)
        if not ((mark == _DOT) | (mark == _COMMA)).all() or (fraction > 9).any():
            return None
        # _parse_codes' sum: digit times 0.1, 0.01 (0.1 / 10), … added left to right, then truncated.
        total = np.zeros(codes.shape[0])
        scale = 0.1
        for j in range(end - 20):
            total += fraction[:, j] * scale
            scale /= 10.0
        frac = np.floor(total * 1e6 + 1e-6) / 1e6
    days = _days_from_civil(year, month, day)
    return (days * 86400 + hour * 3600 + minute * 60 + second - offset).astype(np.float64) + frac


def parse_times_bytes(values: Sequence[bytes]) -> np.ndarray:
    """Like :func:`parse_times` for ASCII/UTF-8 byte strings (the GPX fast path's tokens)."""
    n = len(values)
    if n == 0:
        return np.zeros(0)
    arr = np.array(values, dtype=bytes)
    width = arr.dtype.itemsize
    if width < 19:
        fast, ok = np.full(n, _NAN), np.zeros(n, dtype=bool)
    else:
        fast, ok = _parse_codes(arr.view(np.uint8).reshape(n, width).astype(np.int32))
    for k in np.flatnonzero(~ok).tolist():
        fast[k] = parse_time(values[k].decode("utf-8", "replace"))
    return fast
