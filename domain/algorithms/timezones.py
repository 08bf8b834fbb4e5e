"""Which time zone an activity happened in, and its start as a wall-clock time there.

The zone comes from the start position through an offline lookup (tzfpy: the timezone-boundary-builder polygons
compiled into the wheel, no network, microseconds a call), so an athlete who travels gets "Morning Run" for a run
at 7 am where they ran, not where their profile says they live. Without a position (a treadmill, a manual entry)
the profile's zone is the best guess.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzfpy import get_tz

__all__ = ["local_start", "resolve_timezone", "strava_timezone", "timezone_at", "utc_offset_s"]

FALLBACK = "UTC"


def _known(name: str | None) -> str | None:
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def timezone_at(lat: float | None, lng: float | None) -> str | None:
    """The IANA zone at a position (``Etc/GMT±n`` at sea), or None without a usable position."""
    if lat is None or lng is None or not (math.isfinite(lat) and math.isfinite(lng)):
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0):
        return None
    return _known(get_tz(lng, lat))


def resolve_timezone(lat: float | None, lng: float | None, profile_timezone: str | None) -> str:
    """The zone of the start position, else the athlete's profile zone, else UTC."""
    return timezone_at(lat, lng) or _known(profile_timezone) or FALLBACK


def local_start(start: datetime, tz_name: str) -> datetime:
    """``start`` (aware, any zone) as a naive wall-clock time in ``tz_name``."""
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return start.astimezone(ZoneInfo(_known(tz_name) or FALLBACK)).replace(tzinfo=None)


def utc_offset_s(start: datetime, tz_name: str) -> float:
    """Seconds ``tz_name`` was ahead of UTC at ``start`` (daylight saving included)."""
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    offset = start.astimezone(ZoneInfo(_known(tz_name) or FALLBACK)).utcoffset() or timedelta(0)
    return offset.total_seconds()


def strava_timezone(start: datetime, tz_name: str) -> str:
    """Strava's spelling of an activity's zone: ``(GMT+01:00) Europe/Paris``."""
    total = int(utc_offset_s(start, tz_name)) // 60
    sign = "+" if total >= 0 else "-"
    hours, minutes = divmod(abs(total), 60)
    return f"(GMT{sign}{hours:02d}:{minutes:02d}) {_known(tz_name) or FALLBACK}"
