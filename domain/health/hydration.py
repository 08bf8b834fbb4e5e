"""Water: drinks logged, the day's goal (baseline by sex + the day's sweat loss), progress, and reminders.

Reminders are a beat job (``health.hydration_reminders``): for each athlete who tracks water, in *their* time
zone at the development-clock-aware "now" (``domain.clock``), ``domain.algorithms.hydration.reminder_due``
decides; the slot row (unique per athlete and local hour) is inserted first, so two beats or a redelivered
task send nothing twice; the notification goes through the one outbox (in-app + push, preferences and quiet
hours honoured there too) in the same transaction.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from domain import clock
from domain.algorithms import hydration
from domain.health import common
from domain.health.meals import check_days
from domain.notifications import outbox
from models import Activity, HealthProfile, HydrationReminder, User, WaterLog, db

REMINDER_KIND = "hydration_reminder"
#: Athletes who logged a drink this recently get reminders (someone who never logs water is never nagged).
ACTIVE_WITHIN = timedelta(days=7)


def serialize(log: WaterLog) -> dict[str, Any]:
    return {"id": log.id, "ml": log.ml, "drink": log.drink, "drunk_at": log.drunk_at, "source": log.source,
            "created_at": log.created_at}


def create_water(user: User, data: dict[str, Any]) -> WaterLog:
    log = WaterLog(user_id=user.id, ml=data["ml"], drink=data.get("drink") or "water",
                   drunk_at=common.check_time(data["drunk_at"], "drunk_at"))
    db.session.add(log)
    db.session.commit()
    return log


def get_water(user: User, water_id: int) -> WaterLog:
    return common.owned(WaterLog, water_id, user, "Drink")


def update_water(user: User, water_id: int, changes: dict[str, Any]) -> WaterLog:
    log = get_water(user, water_id)
    if "drunk_at" in changes:
        changes["drunk_at"] = common.check_time(changes["drunk_at"], "drunk_at")
    for key, value in changes.items():
        setattr(log, key, value)
    db.session.commit()
    return log


def delete_water(user: User, water_id: int) -> None:
    db.session.delete(get_water(user, water_id))
    db.session.commit()


def list_water(user: User, args: dict[str, Any]) -> dict[str, Any]:
    query = select(WaterLog).where(WaterLog.user_id == user.id)
    if args.get("from") is not None:
        query = query.where(WaterLog.drunk_at >= args["from"])
    if args.get("to") is not None:
        query = query.where(WaterLog.drunk_at < args["to"])
    return common.page(query, WaterLog.drunk_at, WaterLog.id, args.get("cursor"), args["limit"], serialize)


def drunk_ml(user_id: int, start: datetime, end: datetime) -> int:
    return int(db.session.scalar(select(func.coalesce(func.sum(WaterLog.ml), 0)).where(
        WaterLog.user_id == user_id, WaterLog.drunk_at >= start, WaterLog.drunk_at < end)) or 0)


def sweat_ml(user_id: int, start: datetime, end: datetime) -> float:
    rows = db.session.execute(select(Activity.sport_type, Activity.moving_time_s, Activity.elapsed_time_s,
                                     Activity.avg_temp)
                              .where(Activity.user_id == user_id, Activity.start_time >= start,
                                     Activity.start_time < end)).all()
    return sum(hydration.sweat_loss_ml(r.sport_type, r.moving_time_s or r.elapsed_time_s, r.avg_temp) for r in rows)


def goal_for(user: User, prof: HealthProfile, start: datetime, end: datetime) -> dict[str, Any]:
    sweat = sweat_ml(user.id, start, end)
    return {"baseline_ml": prof.water_goal_ml or hydration.baseline_ml(user.sex), "sweat_ml": round(sweat),
            "goal_ml": hydration.daily_goal_ml(user.sex, sweat, prof.water_goal_ml)}


def hydration_days(user: User, first: date, last: date) -> dict[str, Any]:
    check_days(first, last)
    zone = common.zone_of(user)
    prof = common.profile(user)
    db.session.commit()
    days = []
    day = first
    while day <= last:
        start, end = common.local_day_bounds(day, zone)
        goal = goal_for(user, prof, start, end)
        drunk = drunk_ml(user.id, start, end)
        days.append({"date": day.isoformat(), "drunk_ml": drunk, **goal,
                     "progress": round(drunk / goal["goal_ml"], 3) if goal["goal_ml"] else None})
        day += timedelta(days=1)
    return {"items": days, "next_cursor": None}


# -- reminders ------------------------------------------------------------------------------------------------

def _candidates(now: datetime) -> list[int]:
    recent = select(WaterLog.user_id).where(WaterLog.drunk_at >= now - ACTIVE_WITHIN).distinct()
    disabled = select(HealthProfile.user_id).where(HealthProfile.reminders_enabled.is_(False))
    return sorted(db.session.scalars(select(User.id).where(User.id.in_(recent), User.id.not_in(disabled))))


def remind_user(user_id: int, now: datetime) -> bool:
    """Send this athlete's reminder for ``now`` if one is due; True when one was sent (by this call)."""
    user = db.session.get(User, user_id)
    if user is None:
        return False
    prof = common.profile(user)
    zone = common.zone_of(user)
    local_now = now.astimezone(zone)
    start, end = common.local_day_bounds(local_now.date(), zone)
    last_sent = db.session.scalar(select(func.max(HydrationReminder.sent_at))
                                  .where(HydrationReminder.user_id == user.id))
    facts = hydration.ReminderFacts(
        local_now=local_now, goal_ml=goal_for(user, prof, start, end)["goal_ml"],
        drunk_ml=drunk_ml(user.id, start, min(end, now + timedelta(seconds=1))),
        wake_start=prof.wake_start, wake_end=prof.wake_end,
        quiet_start=user.preferences.quiet_hours_start, quiet_end=user.preferences.quiet_hours_end,
        every_h=prof.reminder_every_h, last_sent_at=last_sent)
    due = hydration.reminder_due(facts)
    if due is None:
        db.session.commit()
        return False
    slot, behind = due
    claimed = db.session.execute(insert(HydrationReminder).values(
        user_id=user.id, slot=slot, sent_at=now, behind_ml=behind).on_conflict_do_nothing().returning(
        HydrationReminder.id)).scalar()
    if claimed is None:
        db.session.rollback()
        return False
    outbox.notify(user.id, REMINDER_KIND, f"hydration:{slot}", payload={
        "title": "Time to drink", "text": f"You are about {behind} ml behind today's goal.",
        "behind_ml": behind, "slot": slot})
    db.session.commit()
    return True


def send_reminders(now: datetime | None = None) -> int:
    """One pass over the athletes who track water; returns how many reminders were sent."""
    moment = (now or clock.now()).astimezone(UTC)
    sent = 0
    for user_id in _candidates(moment):
        sent += remind_user(user_id, moment)
    return sent
