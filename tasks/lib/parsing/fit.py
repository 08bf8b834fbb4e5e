"""FIT (Garmin/ANT Flexible and Interoperable Transfer) parser, built on fitdecode.

``record`` messages become points: timestamp, position_lat/long (semicircles → degrees),
enhanced_altitude (else altitude), heart_rate, cadence (+ fractional_cadence), power, temperature.
``lap`` start times become laps, ``session`` sport (else ``sport`` message) the sport and ``file_id``
manufacturer/product the device. Chained FIT files (several files back to back) are read in full,
which fitdecode does by yielding a new header for each.

Integrity is strict: a bad header or file CRC, or a truncated file, rejects the upload even when most
records would be readable. A CRC mismatch means the bytes are not what the device wrote, and silently
keeping a partial or altered activity is worse than asking for a fresh export.
"""

from __future__ import annotations

import io
import math

import fitdecode
import numpy as np
from fitdecode import processors

from tasks.lib.parsing.common import (
    MAX_POINTS,
    clean_laps,
    clean_text,
    normalize_sport,
    resolve_cadence,
    too_many_points,
)
from tasks.lib.track import ParseError, Track

#: Seconds between the Unix epoch and the FIT epoch (1989-12-31T00:00:00Z).
FIT_EPOCH_OFFSET = 631_065_600
#: FIT date_time values below this are "seconds since device power-up", not wall-clock times.
_MIN_ABSOLUTE_FIT_TIME = 0x10000000
_SEMICIRCLE_TO_DEG = 180.0 / 2**31
_NAN = math.nan

_RECORD_FIELDS = frozenset({
    "timestamp", "position_lat", "position_long", "enhanced_altitude", "altitude", "heart_rate",
    "cadence", "fractional_cadence", "power", "temperature",
})


def _fit_time(value: object) -> float:
    if isinstance(value, int | float) and value >= _MIN_ABSOLUTE_FIT_TIME:
        return float(value) + FIT_EPOCH_OFFSET
    return _NAN


def _num(value: object, scale: float = 1.0) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) * scale
    return _NAN


def parse_fit(data: bytes | bytearray | memoryview) -> Track:
    """Parse FIT bytes into a raw Track; any decoding or integrity problem is a ParseError."""
    try:
        return _parse(bytes(data))
    except ParseError:
        raise
    except fitdecode.FitError as exc:
        raise ParseError(f"The FIT file is damaged: {_describe(exc)}") from None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, OverflowError, EOFError) as exc:
        # fitdecode trusts field definitions from the file; malformed ones surface as plain exceptions.
        raise ParseError(f"The FIT file is damaged: unreadable data ({type(exc).__name__})") from None


def _describe(exc: fitdecode.FitError) -> str:
    if isinstance(exc, fitdecode.FitCRCError):
        return "its checksum does not match, the file was altered or corrupted"
    if isinstance(exc, fitdecode.FitEOFError):
        return "it ends unexpectedly, the file is probably truncated"
    if isinstance(exc, fitdecode.FitHeaderError):
        return "its header is invalid"
    return str(exc).split("\n")[0][:200] or type(exc).__name__


def _parse(data: bytes) -> Track:
    if len(data) < 12 or data[8:12] != b".FIT":
        raise ParseError("The FIT file is damaged: its header is invalid")
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

    reader = fitdecode.FitReader(
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
                time.append(_fit_time(v.get("timestamp")))
                plat, plon = _num(v.get("position_lat")), _num(v.get("position_long"))
                lat.append(plat * _SEMICIRCLE_TO_DEG)
                lon.append(plon * _SEMICIRCLE_TO_DEG)
                alt = _num(v.get("enhanced_altitude"))
                ele.append(alt if alt == alt else _num(v.get("altitude")))
                hr.append(_num(v.get("heart_rate")))
                c = _num(v.get("cadence"))
                frac = _num(v.get("fractional_cadence"))
                cad.append(c + frac if frac == frac else c)
                power.append(_num(v.get("power")))
                temp.append(_num(v.get("temperature")))
            elif name == "lap" and len(laps) < 10_000:
                laps.append(_fit_time(_field(frame, "start_time")))
            elif name == "session" and session_sport is None:
                session_sport = _sport_of(frame)
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
    )


def _field(frame: fitdecode.FitDataMessage, name: str) -> object:
    return frame.get_value(name, fallback=None, raw_value=False)


def _sport_of(frame: fitdecode.FitDataMessage) -> str | None:
    """The FIT sport enum name, with the sub-sport where it is the meaningful part (strength)."""
    sport = _field(frame, "sport")
    sub = _field(frame, "sub_sport")
    if sport is None:
        return None
    if isinstance(sub, str) and sub in {"strength_training", "cardio_training"}:
        return "strength_training" if sub == "strength_training" else "other"
    if isinstance(sub, str) and sub in {"treadmill", "trail", "track", "street"} and sport == "running":
        return "running"
    return str(sport)


def _device_of(frame: fitdecode.FitDataMessage) -> str | None:
    product_name = _field(frame, "product_name")
    if isinstance(product_name, str) and product_name.strip():
        return clean_text(product_name)
    manufacturer = _field(frame, "manufacturer")
    product = _field(frame, "garmin_product")
    if product is None:
        product = _field(frame, "product")
    # Enum names are snake_case ("wahoo_fitness", "edge810"); unknown products stay numeric ids.
    parts = [str(p).replace("_", " ").title() for p in (manufacturer, product) if p is not None]
    return clean_text(" ".join(parts)) if parts else None
