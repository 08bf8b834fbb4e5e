""""Now" for scheduled work: the real time, or in development and tests the development clock.

``flask --app webapp dev-clock set 2026-12-05T07:00:00+09:00`` stores an offset from the real time in Redis, so
the web, worker and beat processes all see the same shifted "now" (and it keeps running from there, as a
clock should); ``dev-clock reset`` removes it. Beat jobs and reminders read ``now()`` instead of the system
time, so a developer drives a day of reminders in seconds instead of waiting for it. Production never reads
the offset, and the command refuses to set one there.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, has_app_context

from domain.errors import refuse
from models.redis_store import redis_store

OFFSET_KEY = "devclock:offset_s"
SETTABLE_ENVS = ("development", "testing")


def _settable() -> bool:
    return has_app_context() and current_app.config.get("APP_ENV") in SETTABLE_ENVS


def offset_s() -> float:
    if not _settable():
        return 0.0
    raw = redis_store.client.get(OFFSET_KEY)
    return float(raw) if raw is not None else 0.0


def now() -> datetime:
    """The aware UTC time scheduled work should act on."""
    real = datetime.now(UTC)
    shift = offset_s()
    return real if shift == 0.0 else datetime.fromtimestamp(real.timestamp() + shift, UTC)


def set_now(moment: datetime) -> float:
    """Make ``now()`` return ``moment`` from here on (the clock keeps running); returns the offset in seconds."""
    if not _settable():
        refuse(403, "The development clock can only be set in development or testing.")
    if moment.tzinfo is None:
        refuse(422, "Give the time with its UTC offset (2026-12-05T07:00:00+09:00 or …Z).")
    shift = moment.timestamp() - datetime.now(UTC).timestamp()
    redis_store.client.set(OFFSET_KEY, repr(shift))
    return shift


def reset() -> None:
    if not _settable():
        refuse(403, "The development clock can only be set in development or testing.")
    redis_store.client.delete(OFFSET_KEY)
