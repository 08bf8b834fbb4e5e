"""Planned workouts: the athlete's own calendar, a reminder before each, and "done" when a matching activity lands.

Reminders are found by a beat scan of what is due (``remind_at <= now``, not yet reminded), never by Celery ETAs:
a redelivered ETA task would remind twice, and a long ETA sits in the worker's memory through restarts. The scan
claims each due row under ``FOR UPDATE SKIP LOCKED`` and marks it reminded in the transaction that writes the
notification, whose dedupe key makes a second write a no-op whatever happens around it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select

from domain import clock
from domain.algorithms import training
from domain.algorithms.metrics import sport_family
from domain.errors import refuse
from domain.notifications.outbox import notify
from domain.pagination import decode_cursor, encode_cursor
from models import Activity, PlannedWorkout, User, db

#: A reminder that comes due more than this long after its workout started is dropped, not sent (beat was down).
STALE_REMINDER = timedelta(hours=1)
#: How far ahead and behind a plan may be dated.
PLAN_HORIZON = timedelta(days=366 * 2)
PLAN_PAST = timedelta(days=31)
#: Rows claimed per scan.
SCAN_BATCH = 500


def serialize(p: PlannedWorkout) -> dict[str, Any]:
    return {"id": p.id, "sport_type": p.sport_type, "planned_at": p.planned_at, "duration_s": p.duration_s,
            "distance_m": p.distance_m, "notes": p.notes, "remind_before_min": p.remind_before_min,
            "remind_at": p.remind_at, "reminded_at": p.reminded_at, "completed_activity_id": p.completed_activity_id,
            "status": "done" if p.completed_activity_id else ("missed" if p.planned_at < clock.now()
                                                              - timedelta(days=1) else "planned"),
            "created_at": p.created_at}


def _check_time(planned_at: datetime) -> None:
    now = clock.now()
    if planned_at > now + PLAN_HORIZON:
        refuse(422, "A workout can be planned at most two years ahead.",
               errors={"json": {"planned_at": ["Too far in the future."]}})
    if planned_at < now - PLAN_PAST:
        refuse(422, "A workout can't be planned more than a month in the past.",
               errors={"json": {"planned_at": ["Too far in the past."]}})


def _remind_at(p: PlannedWorkout) -> datetime | None:
    return p.planned_at - timedelta(minutes=p.remind_before_min) if p.remind_before_min is not None else None


def create(viewer: User, data: dict[str, Any]) -> PlannedWorkout:
    _check_time(data["planned_at"])
    plan = PlannedWorkout(user_id=viewer.id, sport_type=data["sport_type"], planned_at=data["planned_at"],
                          duration_s=data.get("duration_s"), distance_m=data.get("distance_m"),
                          notes=data.get("notes") or "", remind_before_min=data.get("remind_before_min"))
    plan.remind_at = _remind_at(plan)
    db.session.add(plan)
    db.session.commit()
    return plan


def get_own(viewer: User, plan_id: int) -> PlannedWorkout:
    plan = db.session.get(PlannedWorkout, plan_id)
    if plan is None or plan.user_id != viewer.id:
        refuse(404, "Planned workout not found.")
    return plan


def update(viewer: User, plan_id: int, changes: dict[str, Any]) -> PlannedWorkout:
    plan = get_own(viewer, plan_id)
    if "planned_at" in changes:
        _check_time(changes["planned_at"])
    for key, value in changes.items():
        setattr(plan, key, value if key != "notes" else (value or ""))
    remind_at = _remind_at(plan)
    if remind_at != plan.remind_at:
        # A moved plan (or reminder) is reminded again at its new time.
        plan.remind_at, plan.reminded_at = remind_at, None
    db.session.commit()
    return plan


def delete(viewer: User, plan_id: int) -> None:
    db.session.delete(get_own(viewer, plan_id))
    db.session.commit()


def listing(viewer: User, args: dict[str, Any]) -> dict[str, Any]:
    query = select(PlannedWorkout).where(PlannedWorkout.user_id == viewer.id)
    if args.get("from"):
        query = query.where(PlannedWorkout.planned_at >= args["from"])
    if args.get("to"):
        query = query.where(PlannedWorkout.planned_at <= args["to"])
    after = decode_cursor(args.get("cursor"), 2)
    if after is not None:
        ts, last = datetime.fromisoformat(after[0]), int(after[1])
        query = query.where(or_(PlannedWorkout.planned_at > ts,
                                and_(PlannedWorkout.planned_at == ts, PlannedWorkout.id > last)))
    limit = args["limit"]
    rows = list(db.session.scalars(query.order_by(PlannedWorkout.planned_at, PlannedWorkout.id).limit(limit + 1)))
    next_cursor = (encode_cursor(rows[limit - 1].planned_at.isoformat(), rows[limit - 1].id)
                   if len(rows) > limit else None)
    return {"items": [serialize(p) for p in rows[:limit]], "next_cursor": next_cursor}


# --- reminders -----------------------------------------------------------------------------------------------

def _reminder_text(plan: PlannedWorkout, timezone: str) -> tuple[str, str]:
    local = plan.planned_at.astimezone(ZoneInfo(timezone))
    what = plan.sport_type.replace("_", " ")
    parts = []
    if plan.distance_m:
        parts.append(f"{plan.distance_m / 1000:.1f} km")
    if plan.duration_s:
        parts.append(f"{round(plan.duration_s / 60)} min")
    detail = f" ({', '.join(parts)})" if parts else ""
    return f"Planned {what} at {local:%H:%M}", f"Your {what}{detail} starts at {local:%H:%M}."


def send_due_reminders(now: datetime | None = None, batch: int = SCAN_BATCH) -> int:
    """Notify the athletes whose reminders are due (one transaction per batch); returns how many were sent."""
    now = now or clock.now()
    plans = list(db.session.scalars(
        select(PlannedWorkout).where(PlannedWorkout.reminded_at.is_(None), PlannedWorkout.remind_at <= now)
        .order_by(PlannedWorkout.remind_at).limit(batch).with_for_update(skip_locked=True)))
    sent = 0
    for plan in plans:
        plan.reminded_at = now
        if plan.completed_activity_id is not None or now - plan.planned_at > STALE_REMINDER:
            continue  # already done, or long gone: a reminder now would only confuse
        owner = db.session.get(User, plan.user_id)
        assert owner is not None
        title, body = _reminder_text(plan, owner.preferences.timezone)
        key = f"planned:{plan.id}:{plan.remind_at.isoformat() if plan.remind_at else ''}"
        if notify(plan.user_id, "workout_reminder", key, payload={
                "title": title, "body": body, "planned_workout_id": plan.id,
                "planned_at": plan.planned_at.isoformat()}) is not None:
            sent += 1
    db.session.commit()
    return sent


# --- done ----------------------------------------------------------------------------------------------------

def match_completed(user_id: int, activity_ids: Iterable[int], timezone: str) -> int:
    """Mark the athlete's open plans done by these activities: same local day, same sport family."""
    done = 0
    for activity in db.session.scalars(select(Activity).where(Activity.id.in_(list(activity_ids)),
                                                              Activity.user_id == user_id)):
        zone = activity.timezone or timezone
        day = training.local_date(activity.start_time, zone)
        tz = ZoneInfo(zone)
        lo = datetime.combine(day, datetime.min.time(), tz)
        hi = lo + timedelta(days=1)
        family = sport_family(activity.sport_type)
        for plan in db.session.scalars(select(PlannedWorkout).where(
                PlannedWorkout.user_id == user_id, PlannedWorkout.completed_activity_id.is_(None),
                PlannedWorkout.planned_at >= lo, PlannedWorkout.planned_at < hi).order_by(PlannedWorkout.planned_at)):
            if sport_family(plan.sport_type) == family:
                plan.completed_activity_id = activity.id
                done += 1
                break
    return done
