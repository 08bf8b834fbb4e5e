"""A Track as a FIT activity file: what watches, Garmin Connect and most training platforms import natively.

Messages, in the order a device writes them: ``file_id`` (an activity, manufacturer "development"), a timer
start ``event``, one ``record`` per point (timestamp, position in semicircles, altitude and enhanced altitude,
heart rate, cadence — per foot for foot sports, as devices record it —, distance, power, temperature), the
timer stop ``event``, one ``lap`` per lap the file reported (one otherwise), a ``session`` and an ``activity``.
Missing values get FIT's invalid value for their type, so a reader skips them. The header and the file carry
their CRCs. Records are packed with numpy (one structured array), so a long ride costs milliseconds.

FIT timestamps are whole seconds: sub-second times are rounded. Pure: same track, same bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

import numpy as np

from domain.algorithms.geo import known_positions
from domain.algorithms.parsing.fitfast import FIT_EPOCH_OFFSET, crc16
from domain.algorithms.track import Track
from domain.algorithms.writer_common import cadence_as_written, distance_along, lap_bounds

__all__ = ["to_fit"]

PROFILE_VERSION = 2132
# Base types: (code, numpy dtype, invalid value).
ENUM, SINT8, UINT8, UINT16, SINT32, UINT32, UINT32Z = (
    (0x00, "u1", 0xFF), (0x01, "i1", 0x7F), (0x02, "u1", 0xFF), (0x84, "<u2", 0xFFFF),
    (0x85, "<i4", 0x7FFFFFFF), (0x86, "<u4", 0xFFFFFFFF), (0x8C, "<u4", 0))
BaseType = tuple[int, str, int]
#: FIT sport / sub_sport of our sport types.
SPORTS = {"running": (1, 0), "cycling": (2, 0), "swimming": (5, 0), "walking": (11, 0), "hiking": (17, 0),
          "strength": (10, 20), "other": (0, 0)}
SEMICIRCLES = 2**31 / 180.0

# (name, field number, base type) per message; the numbers are the FIT profile's.
FILE_ID = (0, [("type", 0, ENUM), ("manufacturer", 1, UINT16), ("product", 2, UINT16),
               ("serial_number", 3, UINT32Z), ("time_created", 4, UINT32)])
EVENT = (21, [("timestamp", 253, UINT32), ("event", 0, ENUM), ("event_type", 1, ENUM)])
RECORD = (20, [("timestamp", 253, UINT32), ("position_lat", 0, SINT32), ("position_long", 1, SINT32),
               ("altitude", 2, UINT16), ("heart_rate", 3, UINT8), ("cadence", 4, UINT8), ("distance", 5, UINT32),
               ("power", 7, UINT16), ("temperature", 13, SINT8), ("enhanced_altitude", 78, UINT32)])
LAP = (19, [("message_index", 254, UINT16), ("timestamp", 253, UINT32), ("event", 0, ENUM),
            ("event_type", 1, ENUM), ("start_time", 2, UINT32), ("total_elapsed_time", 7, UINT32),
            ("total_timer_time", 8, UINT32), ("total_distance", 9, UINT32), ("sport", 25, ENUM)])
SESSION = (18, [("message_index", 254, UINT16), ("timestamp", 253, UINT32), ("event", 0, ENUM),
                ("event_type", 1, ENUM), ("start_time", 2, UINT32), ("sport", 5, ENUM), ("sub_sport", 6, ENUM),
                ("total_elapsed_time", 7, UINT32), ("total_timer_time", 8, UINT32), ("total_distance", 9, UINT32),
                ("first_lap_index", 25, UINT16), ("num_laps", 26, UINT16)])
ACTIVITY = (34, [("timestamp", 253, UINT32), ("total_timer_time", 0, UINT32), ("num_sessions", 1, UINT16),
                 ("type", 2, ENUM), ("event", 3, ENUM), ("event_type", 4, ENUM)])
Message = tuple[int, list[tuple[str, int, BaseType]]]


def _definition(local: int, message: Message) -> bytes:
    number, fields = message
    out = struct.pack("<BBBHB", 0x40 | local, 0, 0, number, len(fields))
    return out + b"".join(struct.pack("<BBB", num, np.dtype(bt[1]).itemsize, bt[0]) for _, num, bt in fields)


def _dtype(message: Message) -> np.dtype:
    return np.dtype([("header", "u1")] + [(name, bt[1]) for name, _, bt in message[1]])


def _rows(local: int, message: Message, rows: Sequence[Mapping[str, float | int | None]]) -> bytes:
    """Data messages of one type: every field of every row, a missing value written as the type's invalid one."""
    out = np.zeros(len(rows), dtype=_dtype(message))
    out["header"] = local
    for name, _, bt in message[1]:
        out[name] = [bt[2] if row.get(name) is None else row[name] for row in rows]
    return out.tobytes()


def _scaled(values: np.ndarray, scale: float, offset: float, bt: BaseType, low: float, high: float) -> np.ndarray:
    """Values as the integers FIT stores ((v + offset) × scale), the invalid value where missing or out of range."""
    raw = np.round((values + offset) * scale)
    ok = np.isfinite(raw) & (raw >= low) & (raw <= high)
    return np.where(ok, raw, bt[2]).astype(bt[1])


def _records(track: Track, sport: str | None, dist: np.ndarray, local: int) -> bytes:
    n = len(track)
    out = np.zeros(n, dtype=_dtype(RECORD))
    out["header"] = local
    out["timestamp"] = _fit_times(track.time)
    ok = known_positions(track.lat, track.lon)
    out["position_lat"] = np.where(ok, np.round(np.nan_to_num(track.lat) * SEMICIRCLES), SINT32[2])
    out["position_long"] = np.where(ok, np.round(np.nan_to_num(track.lon) * SEMICIRCLES), SINT32[2])
    out["altitude"] = _scaled(track.ele, 5, 500, UINT16, 0, 0xFFFE)
    out["enhanced_altitude"] = _scaled(track.ele, 5, 500, UINT32, 0, 0xFFFFFFFE)
    out["heart_rate"] = _scaled(track.hr, 1, 0, UINT8, 0, 254)
    out["cadence"] = _scaled(cadence_as_written(track, sport), 1, 0, UINT8, 0, 254)
    out["distance"] = _scaled(dist, 100, 0, UINT32, 0, 0xFFFFFFFE)
    out["power"] = _scaled(track.power, 1, 0, UINT16, 0, 0xFFFE)
    out["temperature"] = _scaled(track.temp, 1, 0, SINT8, -127, 126)
    return out.tobytes()


def _fit_times(t: np.ndarray) -> np.ndarray:
    return np.clip(np.round(t) - FIT_EPOCH_OFFSET, 0, 0xFFFFFFFE).astype("<u4")


def to_fit(track: Track, sport: str | None = None) -> bytes:
    sport = sport or track.sport or "other"
    if len(track) == 0:
        raise ValueError("a FIT activity needs at least one point")
    times = _fit_times(track.time)
    start, end = int(times[0]), int(times[-1])
    dist = distance_along(track)
    fit_sport, sub_sport = SPORTS.get(sport, (0, 0))
    laps = lap_bounds(track)
    body = [_definition(0, FILE_ID), _rows(0, FILE_ID, [
                {"type": 4, "manufacturer": 255, "product": 0, "serial_number": 1, "time_created": start}]),
            _definition(1, EVENT), _rows(1, EVENT, [{"timestamp": start, "event": 0, "event_type": 0}]),
            _definition(2, RECORD), _records(track, sport, dist, 2),
            _rows(1, EVENT, [{"timestamp": end, "event": 0, "event_type": 4}])]  # timer stop_all
    lap_rows = []
    for k, (a, b) in enumerate(laps):
        seconds = float(track.time[b - 1] - track.time[a])
        lap_rows.append({"message_index": k, "timestamp": int(times[b - 1]), "event": 9, "event_type": 1,
                         "start_time": int(times[a]), "total_elapsed_time": round(seconds * 1000),
                         "total_timer_time": round(seconds * 1000),
                         "total_distance": round(float(dist[b - 1] - dist[a]) * 100), "sport": fit_sport})
    body += [_definition(3, LAP), _rows(3, LAP, lap_rows)]
    elapsed_ms = round(float(track.time[-1] - track.time[0]) * 1000)
    body += [_definition(4, SESSION), _rows(4, SESSION, [{
        "message_index": 0, "timestamp": end, "event": 8, "event_type": 1, "start_time": start, "sport": fit_sport,
        "sub_sport": sub_sport, "total_elapsed_time": elapsed_ms, "total_timer_time": elapsed_ms,
        "total_distance": round(float(dist[-1]) * 100), "first_lap_index": 0, "num_laps": len(laps)}])]
    body += [_definition(5, ACTIVITY), _rows(5, ACTIVITY, [{
        "timestamp": end, "total_timer_time": elapsed_ms, "num_sessions": 1, "type": 0, "event": 26,
        "event_type": 1}])]
    data = b"".join(body)
    header = struct.pack("<BBHI4s", 14, 0x20, PROFILE_VERSION, len(data), b".FIT")
    header += struct.pack("<H", crc16(header))
    return header + data + struct.pack("<H", crc16(header + data))
