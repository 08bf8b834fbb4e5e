"""FIT (Garmin/ANT Flexible and Interoperable Transfer) parser.

``record`` messages become points: timestamp, position_lat/long (semicircles → degrees),
enhanced_altitude (else altitude), heart_rate, cadence (+ fractional_cadence), power, temperature.
``lap`` start times become laps, ``session`` sport (else ``sport`` message) the sport, ``file_id``
manufacturer/product the device and the session totals (distance, timer time, calories) the
track's totals. Chained FIT files (several files back to back) are read in full.

Files are decoded by :mod:`domain.algorithms.parsing.fitfast` (numpy; two orders of magnitude faster). The few
files it does not reproduce exactly (malformed definitions, exotic developer data) are decoded with fitdecode,
which stays the reference: both paths give the same Track and the same error messages.

A field whose declared size is not a multiple of its base type's size (COROS watches write a 1-byte
``event.data``, a uint32) is read as bytes, as python-fitparse and the FIT SDK do: such a value is not a
number, so a record field declared that way is simply missing. Everything else stays strict.

Integrity is strict: a bad header or file CRC, or a truncated file, rejects the upload even when most
records would be readable. A CRC mismatch means the bytes are not what the device wrote, and silently
keeping a partial or altered activity is worse than asking for a fresh export.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import struct
from typing import Any

import fitdecode
import numpy as np
from fitdecode import processors

from domain.algorithms.parsing import fitfast
from domain.algorithms.parsing.common import (
    MAX_POINTS,
    clean_laps,
    normalize_sport,
    resolve_cadence,
    too_many_points,
)
from domain.algorithms.parsing.fitfast import (
    DAMAGED,
    FIT_EPOCH_OFFSET,
    MAX_LAPS,
    MAX_SESSIONS,
    MSG_CRC,
    MSG_EOF,
    MSG_HEADER,
    SEMICIRCLE_TO_DEG,
    add_session_totals,
    device_label,
    fit_time,
    sport_label,
)
from domain.algorithms.track import ParseError, Track

__all__ = ["FIT_EPOCH_OFFSET", "parse_fit", "parse_fit_fitdecode"]

log = logging.getLogger(__name__)

_NAN = math.nan

_RECORD_FIELDS = fitfast.RECORD_TARGETS


class LenientSizeReader(fitdecode.FitReader):
    """fitdecode's reader in strict mode, except that an odd field size falls back to bytes.

    fitdecode only offers that fallback with *all* its checks relaxed (``ErrorHandling.IGNORE``), which would
    also accept undefined developer fields; so IGNORE is set while a definition message is read, and RAISE is
    put back for the developer-field lookups made inside it. (Both methods are checked by fitprofile.)
    """

    def _read_definition_message(self, *args: Any, **kwargs: Any) -> Any:
        self.error_handling = fitdecode.ErrorHandling.IGNORE
        try:
            return super()._read_definition_message(*args, **kwargs)
        finally:
            self.error_handling = fitdecode.ErrorHandling.RAISE

    def _get_dev_type(self, *args: Any, **kwargs: Any) -> Any:
        previous, self.error_handling = self.error_handling, fitdecode.ErrorHandling.RAISE
        try:
            return super()._get_dev_type(*args, **kwargs)
        finally:
            self.error_handling = previous


def _num(value: object, scale: float = 1.0) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) * scale
    return _NAN


def parse_fit(data: bytes | bytearray | memoryview) -> Track:
    """Parse FIT bytes into a raw Track; any decoding or integrity problem is a ParseError."""
    payload = bytes(data)
    try:
        return fitfast.parse(payload)
    except (ParseError, MemoryError):
        raise
    except fitfast.Unsupported:
        pass
    except Exception:
        # A defect in the fast decoder must not cost the athlete the upload: the reference decides.
        log.warning("fast FIT decoder failed; decoding with fitdecode", exc_info=True)
    return parse_fit_fitdecode(payload)


def parse_fit_fitdecode(data: bytes | bytearray | memoryview) -> Track:
    """The fitdecode-based parser: the reference for :mod:`fitfast` and its fallback (~200 µs/record)."""
    try:
        return _parse(bytes(data))
    except ParseError:
        raise
    except fitdecode.FitError as exc:
        raise ParseError(_describe(exc)) from None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, OverflowError, EOFError,
            AssertionError, struct.error) as exc:
        # fitdecode trusts field definitions from the file; malformed ones surface as plain exceptions
        # (an assertion when a record runs past the declared data size, struct.error for odd headers).
        raise ParseError(f"{DAMAGED}unreadable data ({type(exc).__name__})") from None


def _describe(exc: fitdecode.FitError) -> str:
    if isinstance(exc, fitdecode.FitCRCError):
        return MSG_CRC
    if isinstance(exc, fitdecode.FitEOFError):
        return MSG_EOF
    if isinstance(exc, fitdecode.FitHeaderError):
        return MSG_HEADER
    return DAMAGED + (str(exc).split("\n")[0][:200] or type(exc).__name__)


def _parse(data: bytes) -> Track:
    if len(data) < 12 or data[8:12] != b".FIT":
        raise ParseError(MSG_HEADER)
    time: list[float] = []
    lat: list[float] = []
    lon: list[float] = []
    ele: list[float] = []
    hr: list[float] = []
    cad: list[float] = []
    power: list[float] = []
    temp: list[float] = []
    laps: list[float] = []
    session_sport: str | None = None
    sport_msg: str | None = None
    device: str | None = None
    sessions = 0
    totals: dict[str, float] = {}

    reader = LenientSizeReader(
        io.BytesIO(data), processor=processors.DataProcessorBase(),
        check_crc=fitdecode.CrcCheck.RAISE, error_handling=fitdecode.ErrorHandling.RAISE,
    )
    with reader:
        for frame in reader:
            if frame.frame_type != fitdecode.FIT_FRAME_DATA:
                continue
            name = frame.name
            if name == "record":
                if len(time) >= MAX_POINTS:
                    raise too_many_points()
                v = {f.name: f.value for f in frame.fields if f.name in _RECORD_FIELDS}
                time.append(fit_time(v.get("timestamp")))
                plat, plon = _num(v.get("position_lat")), _num(v.get("position_long"))
                lat.append(plat * SEMICIRCLE_TO_DEG)
                lon.append(plon * SEMICIRCLE_TO_DEG)
                alt = _num(v.get("enhanced_altitude"))
                ele.append(alt if alt == alt else _num(v.get("altitude")))
                hr.append(_num(v.get("heart_rate")))
                c = _num(v.get("cadence"))
                frac = _num(v.get("fractional_cadence"))
                cad.append(c + frac if frac == frac else c)
                power.append(_num(v.get("power")))
                temp.append(_num(v.get("temperature")))
            elif name == "lap" and len(laps) < MAX_LAPS:
                laps.append(fit_time(_field(frame, "start_time")))
            elif name == "session" and sessions < MAX_SESSIONS:
                sessions += 1
                if session_sport is None:
                    session_sport = _sport_of(frame)
                add_session_totals(totals, functools.partial(_field, frame))
            elif name == "sport" and sport_msg is None:
                sport_msg = _sport_of(frame)
            elif name == "file_id" and device is None:
                device = _device_of(frame)

    if not time:
        raise ParseError("The file contains no track points")
    sport = normalize_sport(session_sport or sport_msg)
    cadence = np.asarray(cad)
    return Track(
        time=np.asarray(time), lat=np.asarray(lat), lon=np.asarray(lon), ele=np.asarray(ele),
        hr=np.asarray(hr), cadence=resolve_cadence(cadence, np.full(cadence.shape, _NAN), sport),
        power=np.asarray(power), temp=np.asarray(temp), laps=clean_laps(laps), sport=sport, device=device,
        totals=totals,
    )


def _field(frame: fitdecode.FitDataMessage, name: str) -> object:
    return frame.get_value(name, fallback=None, raw_value=False)


def _sport_of(frame: fitdecode.FitDataMessage) -> str | None:
    return sport_label(_field(frame, "sport"), _field(frame, "sub_sport"))


def _device_of(frame: fitdecode.FitDataMessage) -> str | None:
    return device_label(_field(frame, "product_name"), _field(frame, "manufacturer"),
                        _field(frame, "garmin_product"), _field(frame, "product"))
