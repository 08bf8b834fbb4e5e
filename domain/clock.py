"""The time that beat jobs, reminders and summaries see: real time, or in development a shifted one.

``flask --app webapp dev-clock set 2026-12-07T07:59:30+09:00`` stores an offset in Redis so that every process
of the stack (web, workers, beat ticks) sees that moment now and time running on from it; ``dev-clock reset``
removes it. Checks of Monday-morning summaries and reminders then run in seconds. Production never reads the
offset (and the command refuses to set one there), so a stray key can't move a real deployment's clock.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, has_app_context

from models.redis_store import redis_store

OFFSET_KEY = "devclock:offset_s"


def _enabled() -> bool:
    return has_app_context() and current_app.config.get("APP_ENV") in ("development", "testing")


def offset_s() -> float:
    if not _enabled():
        return 0.0
    raw = redis_store.client.get(OFFSET_KEY)
    return float(raw) if raw is not None else 0.0


def now() -> datetime:
    """The current instant (UTC, aware) as the stack's jobs should see it."""
    real = datetime.now(UTC)
    shift = offset_s()
    return real if not shift else datetime.fromtimestamp(real.timestamp() + shift, UTC)


def set_now(moment: datetime) -> float:
    """Shift the clock so that it reads ``moment`` now (development and tests only); returns the offset."""
    if not _enabled():
        raise PermissionError("the development clock can't be set in this environment")
    if moment.tzinfo is None:
        raise ValueError("give the moment with its UTC offset, e.g. 2026-12-07T08:00:00+01:00")
    shift = moment.timestamp() - datetime.now(UTC).timestamp()
    redis_store.client.set(OFFSET_KEY, repr(shift))
    return shift


def reset() -> None:
    redis_store.client.delete(OFFSET_KEY)
