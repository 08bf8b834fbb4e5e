"""What every health module shares: ownership (404 for anyone else), time checks, pages, the athlete's facts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import BigInteger, BindParameter, DateTime, Select, bindparam, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import InstrumentedAttribute

from domain import clock
from domain.errors import refuse
from domain.pagination import decode_cursor, encode_cursor
from models import BodyMetric, HealthProfile, User, db

T = TypeVar("T")

#: How far ahead of "now" a timestamp may be: phones' clocks drift and time zones are confused, but a record
#: from next week is a bug or a lie.
MAX_FUTURE = timedelta(hours=24)
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)


def invalid(field: str, message: str) -> NoReturn:
    refuse(422, message, errors={"json": {field: [message]}})


def check_time(value: datetime, field: str, now: datetime | None = None) -> datetime:
    """``value`` in UTC, or a 422: no offset, in the future (``now``: the caller's, read once per batch), or
    before 1900."""
    if value.tzinfo is None:
        invalid(field, "Give the time with its UTC offset.")
    if value > (now or clock.now()) + MAX_FUTURE:
        invalid(field, "In the future.")
    if value < EARLIEST:
        invalid(field, "Too far in the past.")
    return value.astimezone(UTC)


def check_span(start: datetime, end: datetime, max_span: timedelta, label: str) -> None:
    if end <= start:
        invalid("end", "Must be after start.")
    if end - start > max_span:
        invalid("end", f"{label} can't be longer than {int(max_span.total_seconds() // 3600)} hours.")


def owned(model: type[T], record_id: int, user: User, label: str) -> T:
    """The athlete's own record, or 404: another athlete's id gets the same answer as one that doesn't exist."""
    row = db.session.get(model, record_id)
    if row is None or getattr(row, "user_id", None) != user.id:
        refuse(404, f"{label} not found.")
    return row


def page(query: Select[Any], at: InstrumentedAttribute[Any], key: InstrumentedAttribute[Any], cursor: str | None,
         limit: int, serialize: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """Newest first, keyset on (time, id): stable while rows are added."""
    after = decode_cursor(cursor, 2)
    if after is not None:
        try:
            moment, last_id = datetime.fromisoformat(str(after[0])), int(after[1])
        except (TypeError, ValueError):
            refuse(400, "Invalid cursor: start from the first page.")
        query = query.where(tuple_(at, key) < tuple_(moment, last_id))
    rows: Sequence[Any] = db.session.scalars(query.order_by(at.desc(), key.desc()).limit(limit + 1)).all()
    items = [serialize(row) for row in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = encode_cursor(getattr(last, at.key).isoformat(), getattr(last, key.key)) if last else None
    return {"items": items, "next_cursor": next_cursor}


def zone_of(user: User) -> ZoneInfo:
    try:
        return ZoneInfo(user.preferences.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def check_zone(name: str, field: str = "timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        invalid(field, "Unknown time zone.")


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants of a local day's start and the next day's (23 or 25 hours apart across DST)."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=zone).astimezone(UTC)
    return start, end


def profile(user: User) -> HealthProfile:
    """The athlete's health profile, made with the defaults on first use (safe under concurrent first uses)."""
    found = db.session.get(HealthProfile, user.id)
    if found is None:
        db.session.execute(insert(HealthProfile).values(user_id=user.id).on_conflict_do_nothing())
        found = db.session.get(HealthProfile, user.id)
        assert found is not None
    return found


def _latest(user_id: int | BindParameter[int], kind: str, before: datetime | BindParameter[datetime] | None) -> Any:
    query = select(BodyMetric.value).where(BodyMetric.user_id == user_id, BodyMetric.kind == kind)
    if before is not None:
        query = query.where(BodyMetric.measured_at < before)
    return query.order_by(BodyMetric.measured_at.desc(), BodyMetric.id.desc()).limit(1)


def latest_metric(user_id: int, kind: str, before: datetime | None = None) -> float | None:
    return db.session.scalar(_latest(user_id, kind, before))


def body_on(user_id: int, moment: datetime) -> tuple[float | None, float | None]:
    """(weight kg, height cm) as last measured before ``moment``; the height falls back to the health profile's.
    One query: ingest asks this for every activity (its energy)."""
    row = db.session.execute(_BODY_ON, {"user_id": user_id, "moment": moment}).one()
    return row[0], row[1]


def _body_on() -> Any:
    user_id, moment = bindparam("user_id", type_=BigInteger), bindparam("moment", type_=DateTime(timezone=True))
    return select(
        _latest(user_id, "weight", moment).scalar_subquery(),
        func.coalesce(_latest(user_id, "height", moment).scalar_subquery(),
                      select(HealthProfile.height_cm).where(HealthProfile.user_id == user_id).scalar_subquery()))


#: Prepared once: every upload asks it.
_BODY_ON = _body_on()


def age_on(user: User, day: date) -> int | None:
    return day.year - user.birth_year if user.birth_year else None
