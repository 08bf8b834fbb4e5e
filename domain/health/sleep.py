"""Sleep sessions: manual, estimated from phone use, imported with stages; one night counted once.

Estimates: the app posts device interaction events; every batch recomputes the estimate of each night its
events touch (so late events correct an earlier estimate), one ``estimated`` session per athlete and night
(a unique key). The night is the athlete's night window (``health_profiles.night_start``–``night_end``, local
time), named by the date of the morning it ends on.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert

from domain.algorithms import sleep as estimator
from domain.algorithms.hydration import parse_hhmm
from domain.errors import refuse
from domain.health import common
from models import DeviceEvent, HealthProfile, SleepSession, User, db

MAX_SLEEP = timedelta(hours=24)
MAX_EVENTS = 5000
MAX_BATCH_SPAN = timedelta(days=7)


def _lock_athlete(user: User) -> None:
    """Serialize this athlete's sleep writes, so two concurrent requests can't both pass the overlap check."""
    db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('sleep'), CAST(:id AS integer))"),
                       {"id": user.id % 2_000_000_000})


def _counted(user_id: int, sessions: list[SleepSession]) -> set[int]:
    if not sessions:
        return set()
    lo = min(s.start_at for s in sessions) - MAX_SLEEP
    hi = max(s.end_at for s in sessions) + MAX_SLEEP
    around = db.session.scalars(select(SleepSession).where(SleepSession.user_id == user_id,
                                                           SleepSession.end_at > lo, SleepSession.start_at < hi))
    return estimator.counted_sessions(estimator.Night(s.id, s.source, s.start_at, s.end_at) for s in around)


def serialize(session: SleepSession, counted: bool | None = None) -> dict[str, Any]:
    if counted is None:
        counted = session.id in _counted(session.user_id, [session])
    return {
        "id": session.id, "source": session.source, "start": session.start_at, "end": session.end_at,
        "duration_min": round((session.end_at - session.start_at).total_seconds() / 60, 1),
        "quality": session.quality, "notes": session.notes, "stages": session.stages or [],
        "uncertainty_min": session.uncertainty_min, "confidence": session.confidence,
        "night_of": session.night_of, "counted": counted,
        "created_at": session.created_at, "updated_at": session.updated_at,
    }


def _check_manual_overlap(user: User, start: datetime, end: datetime, exclude_id: int | None = None) -> None:
    query = select(SleepSession.id).where(SleepSession.user_id == user.id, SleepSession.source == "manual",
                                          SleepSession.start_at < end, SleepSession.end_at > start)
    if exclude_id is not None:
        query = query.where(SleepSession.id != exclude_id)
    if db.session.scalar(query.limit(1)) is not None:
        refuse(409, "This overlaps another sleep session you entered.",
               errors={"json": {"start": ["Overlaps another manual session."]}})


def create_sleep(user: User, data: dict[str, Any]) -> SleepSession:
    start, end = common.check_time(data["start"], "start"), common.check_time(data["end"], "end")
    common.check_span(start, end, MAX_SLEEP, "A sleep session")
    _lock_athlete(user)
    _check_manual_overlap(user, start, end)
    session = SleepSession(user_id=user.id, source="manual", start_at=start, end_at=end,
                           quality=data.get("quality"), notes=data.get("notes"), stages=[])
    db.session.add(session)
    db.session.commit()
    return session


def get_sleep(user: User, sleep_id: int) -> SleepSession:
    return common.owned(SleepSession, sleep_id, user, "Sleep session")


def update_sleep(user: User, sleep_id: int, changes: dict[str, Any]) -> SleepSession:
    session = get_sleep(user, sleep_id)
    if ("start" in changes or "end" in changes) and session.source != "manual":
        refuse(422, "Only sessions you entered can be moved; estimated and imported ones keep their times.",
               errors={"json": {"start": ["Not a manual session."]}})
    start = common.check_time(changes.pop("start"), "start") if "start" in changes else session.start_at
    end = common.check_time(changes.pop("end"), "end") if "end" in changes else session.end_at
    common.check_span(start, end, MAX_SLEEP, "A sleep session")
    if session.source == "manual":
        _lock_athlete(user)
        _check_manual_overlap(user, start, end, exclude_id=session.id)
    session.start_at, session.end_at = start, end
    for key, value in changes.items():
        setattr(session, key, value)
    session.updated_at = datetime.now(UTC)
    db.session.commit()
    return session


def delete_sleep(user: User, sleep_id: int) -> None:
    db.session.delete(get_sleep(user, sleep_id))
    db.session.commit()


def list_sleep(user: User, args: dict[str, Any]) -> dict[str, Any]:
    query = select(SleepSession).where(SleepSession.user_id == user.id)
    if args.get("from") is not None:
        query = query.where(SleepSession.end_at > args["from"])
    if args.get("to") is not None:
        query = query.where(SleepSession.start_at < args["to"])
    if args.get("source"):
        query = query.where(SleepSession.source == args["source"])
    result = common.page(query, SleepSession.start_at, SleepSession.id, args.get("cursor"), args["limit"],
                         lambda s: s)
    sessions: list[SleepSession] = result["items"]
    counted = _counted(user.id, sessions)
    result["items"] = [serialize(s, s.id in counted) for s in sessions]
    return result


# -- estimated from phone use ---------------------------------------------------------------------------------

def night_window(prof: HealthProfile, morning: date, zone: Any) -> tuple[datetime, datetime]:
    """The UTC bounds of the night that ends on ``morning`` (local wall-clock window, DST-aware)."""
    start_t, end_t = parse_hhmm(prof.night_start), parse_hhmm(prof.night_end)
    evening = morning - timedelta(days=1) if start_t >= end_t else morning
    start = datetime.combine(evening, start_t, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(morning, end_t, tzinfo=zone).astimezone(UTC)
    return start, end


def _mornings(prof: HealthProfile, zone: Any, first: datetime, last: datetime) -> list[date]:
    """The nights (by morning) whose window contains any instant in [first, last]."""
    days = []
    day = first.astimezone(zone).date() - timedelta(days=1)
    while day <= last.astimezone(zone).date() + timedelta(days=1):
        start, end = night_window(prof, day, zone)
        if start <= last and first < end:
            days.append(day)
        day += timedelta(days=1)
    return days


def record_events(user: User, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Store a batch of interaction events (in time order; duplicates ignored) and re-estimate their nights."""
    if len(events) > MAX_EVENTS:
        refuse(422, f"At most {MAX_EVENTS} events per batch.", errors={"json": {"events": ["Too many."]}})
    stamps = [common.check_time(e["at"], "at") for e in events]
    if any(b < a for a, b in pairwise(stamps)):
        refuse(422, "Events must be in time order, oldest first.", errors={"json": {"events": ["Out of order."]}})
    if stamps and stamps[-1] - stamps[0] > MAX_BATCH_SPAN:
        # Each night a batch touches is estimated again: a batch is a few nights, not years.
        refuse(422, "One batch covers at most 7 days of events.", errors={"json": {"events": ["Spans too long."]}})
    if not events:
        return {"accepted": 0, "sessions": []}
    rows = [{"user_id": user.id, "type": e["type"], "at": at} for e, at in zip(events, stamps, strict=True)]
    db.session.execute(insert(DeviceEvent).values(rows).on_conflict_do_nothing())
    prof = common.profile(user)
    zone = common.zone_of(user)
    _lock_athlete(user)
    sessions = [s for day in _mornings(prof, zone, stamps[0], stamps[-1])
                if (s := _estimate_night(user, prof, zone, day)) is not None]
    db.session.commit()
    return {"accepted": len(rows), "sessions": [serialize(s) for s in sessions]}


def _estimate_night(user: User, prof: HealthProfile, zone: Any, morning: date) -> SleepSession | None:
    start, end = night_window(prof, morning, zone)
    events = db.session.execute(select(DeviceEvent.at, DeviceEvent.type).where(
        DeviceEvent.user_id == user.id, DeviceEvent.at >= start, DeviceEvent.at < end)).all()
    estimate = estimator.estimate_sleep([(e.at, e.type) for e in events], start, end)
    key = morning.isoformat()
    if estimate is None:
        db.session.execute(delete(SleepSession).where(SleepSession.user_id == user.id,
                                                      SleepSession.source == "estimated",
                                                      SleepSession.night_of == key))
        return None
    values = {"start_at": estimate.start, "end_at": estimate.end, "uncertainty_min": estimate.uncertainty_min,
              "confidence": estimate.confidence}
    stmt = insert(SleepSession).values(user_id=user.id, source="estimated", night_of=key, stages=[], **values)
    stmt = stmt.on_conflict_do_update(index_elements=["user_id", "night_of"],
                                      index_where=text("source = 'estimated'"),
                                      set_={**values, "updated_at": datetime.now(UTC)})
    session_id = db.session.execute(stmt.returning(SleepSession.id)).scalar_one()
    session = db.session.get(SleepSession, session_id)
    if session is not None:
        db.session.refresh(session)
    return session

