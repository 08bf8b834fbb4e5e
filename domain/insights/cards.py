"""Insight cards: rule-based, with the numbers behind them, one per rule and occasion (the ``key``), dismissable.

Rules read the athlete's stored series and activities after each refresh; a rule that fires again for the same
occasion (same week, same activity) writes nothing, so re-running a refresh never duplicates a card.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain import clock
from domain.algorithms import training
from domain.algorithms.metrics import sport_family
from domain.errors import refuse
from domain.insights import loads, recovery
from domain.pagination import decode_cursor, encode_cursor
from models import Activity, Insight, TrainingDay, User, db

#: Fitness must have moved by this share in 4 weeks (from at least MIN_FITNESS) for a card.
FITNESS_CHANGE = 0.10
MIN_FITNESS = 10.0
#: Fitness gained per week above which the load is rising faster than most athletes adapt to.
RAMP_WARNING = 8.0
#: Sleep under this for three nights while the week's load rose by SLEEP_LOAD_RISE: a card.
SHORT_SLEEP_MIN = 6 * 60
SLEEP_LOAD_RISE = 0.30
#: Form below this: deep fatigue.
FORM_WARNING = -30.0
#: "Longest since": only when the last longer one is at least this long ago.
LONGEST_GAP = timedelta(days=30)

_NOUN = {"cycling": "ride", "running": "run", "swimming": "swim", "walking": "walk", "hiking": "hike"}


def _distance(m: float, units: str) -> str:
    return f"{m / 1609.344:.1f} mi" if units == "imperial" else f"{m / 1000:.1f} km"


def candidates(user: User, activity_ids: Iterable[int], today: date) -> list[dict[str, Any]]:
    """The cards the rules give now (before deduplication)."""
    units = user.preferences.units
    out: list[dict[str, Any]] = []
    now_day, month_ago = loads.series_at(user.id, today), loads.series_at(user.id, today - timedelta(days=28))
    week = training.week_start(today).isoformat()
    if now_day is not None and month_ago is not None and month_ago.fitness >= MIN_FITNESS:
        change = (now_day.fitness - month_ago.fitness) / month_ago.fitness
        if abs(change) >= FITNESS_CHANGE:
            word = "up" if change > 0 else "down"
            out.append({"kind": "fitness_trend", "key": f"fitness_{word}:{week}",
                        "title": f"Fitness {word} {abs(change) * 100:.0f} % in 4 weeks",
                        "body": f"Your fitness went from {month_ago.fitness:.1f} to {now_day.fitness:.1f} since "
                                f"{month_ago.day:%d %B}.",
                        "evidence": {"fitness_then": round(month_ago.fitness, 1),
                                     "date_then": month_ago.day.isoformat(),
                                     "fitness_now": round(now_day.fitness, 1), "date_now": now_day.day.isoformat(),
                                     "change_pct": round(change * 100, 1)}})
    if now_day is not None and now_day.ramp is not None and now_day.ramp > RAMP_WARNING:
        out.append({"kind": "ramp", "key": f"ramp:{week}", "title": "Load rising fast",
                    "body": f"Fitness rose {now_day.ramp:.1f} points in 7 days; more than {RAMP_WARNING:.0f} a week "
                            "is more than most athletes adapt to. Plan an easier day.",
                    "evidence": {"ramp": round(now_day.ramp, 1), "threshold": RAMP_WARNING,
                                 "date": now_day.day.isoformat()}})
    if now_day is not None and now_day.form < FORM_WARNING:
        out.append({"kind": "fatigue", "key": f"fatigue:{week}", "title": "Deep fatigue",
                    "body": f"Form is {now_day.form:.0f}: fatigue ({now_day.fatigue:.0f}) is well above fitness "
                            f"({now_day.fitness:.0f}). Recovery days bring it back.",
                    "evidence": {"form": round(now_day.form, 1), "fatigue": round(now_day.fatigue, 1),
                                 "fitness": round(now_day.fitness, 1), "threshold": FORM_WARNING}})
    card = _short_sleep_under_rising_load(user, today)
    if card is not None:
        out.append(card)
    for activity in db.session.scalars(select(Activity).where(Activity.id.in_(list(activity_ids)),
                                                              Activity.user_id == user.id)):
        card = _longest_since(activity, units)
        if card is not None:
            out.append(card)
    return out


def _short_sleep_under_rising_load(user: User, today: date) -> dict[str, Any] | None:
    """"Under 6 h of sleep three nights running while load rose 30 %": the last three mornings' counted sleep
    all short, and the last 7 days' load at least 30 % above the 7 before."""
    from_day = today - timedelta(days=13)
    loads = {d.day: d.load for d in db.session.scalars(select(TrainingDay).where(
        TrainingDay.user_id == user.id, TrainingDay.day >= from_day, TrainingDay.day <= today))}
    recent = sum(v for d, v in loads.items() if d > today - timedelta(days=7))
    before = sum(v for d, v in loads.items() if d <= today - timedelta(days=7))
    if before <= 0 or recent < before * (1 + SLEEP_LOAD_RISE):
        return None
    nights = {m: minutes for m, minutes, _ in recovery.nights(user, today, ZoneInfo(user.preferences.timezone), 3)}
    last3 = [nights.get(today - timedelta(days=i)) for i in range(3)]
    if any(m is None or m >= SHORT_SLEEP_MIN for m in last3):
        return None
    rise = (recent - before) / before * 100
    hours = ", ".join(f"{m / 60:.1f}" for m in last3 if m is not None)
    return {"kind": "sleep_load", "key": f"sleep_load:{today.isoformat()}",
            "title": f"Under {SHORT_SLEEP_MIN // 60} h of sleep three nights running while load rose {rise:.0f} %",
            "body": f"Last three nights: {hours} h. Your load in the last 7 days was {recent:.0f}, against "
                    f"{before:.0f} the week before. Sleep is when training turns into fitness.",
            "evidence": {"nights_hours": [round((m or 0) / 60, 2) for m in last3], "load_7d": round(recent, 1),
                         "load_prior_7d": round(before, 1), "rise_pct": round(rise, 1)}}


def _longest_since(activity: Activity, units: str) -> dict[str, Any] | None:
    """"Longest ride since March": the last activity of the same family at least as long, if long enough ago."""
    if not activity.distance_m:
        return None
    family = sport_family(activity.sport_type)
    sports = [s for s in ("running", "cycling", "swimming", "walking", "hiking", "strength", "other")
              if sport_family(s) == family]
    longer = db.session.execute(select(Activity.start_time, Activity.distance_m).where(
        Activity.user_id == activity.user_id, Activity.sport_type.in_(sports), Activity.id != activity.id,
        Activity.start_time < activity.start_time, Activity.distance_m >= activity.distance_m)
        .order_by(Activity.start_time.desc()).limit(1)).first()
    earlier = db.session.scalar(select(Activity.id).where(
        Activity.user_id == activity.user_id, Activity.sport_type.in_(sports),
        Activity.start_time < activity.start_time - LONGEST_GAP).limit(1))
    if earlier is None:
        return None  # no history long enough to be "since" anything
    noun = _NOUN.get(activity.sport_type, "activity")
    if longer is None:
        title, since = f"Longest {noun} yet", None
    elif activity.start_time - longer.start_time >= LONGEST_GAP:
        title, since = f"Longest {noun} since {longer.start_time:%B %Y}", longer.start_time
    else:
        return None
    return {"kind": "longest", "key": f"longest:{activity.id}", "title": title,
            "body": f"{activity.name}: {_distance(activity.distance_m, units)}.",
            "evidence": {"activity_id": activity.id, "distance_m": round(activity.distance_m, 1),
                         "previous_longer_at": since.isoformat() if since else None,
                         "previous_longer_m": round(longer.distance_m, 1) if longer else None}}


def update_cards(user: User, activity_ids: Iterable[int], today: date) -> int:
    """Write the cards the rules give now (deduplicated by key); returns how many are new."""
    cards = candidates(user, activity_ids, today)
    if not cards:
        return 0
    rows = db.session.execute(pg_insert(Insight).values([{"user_id": user.id, **c} for c in cards])
                              .on_conflict_do_nothing().returning(Insight.id)).all()
    return len(rows)


def serialize(card: Insight) -> dict[str, Any]:
    return {"id": card.id, "kind": card.kind, "title": card.title, "body": card.body, "evidence": card.evidence,
            "created_at": card.created_at, "dismissed": card.dismissed_at is not None}


def listing(viewer: User, cursor: str | None, limit: int, include_dismissed: bool = False) -> dict[str, Any]:
    query = select(Insight).where(Insight.user_id == viewer.id)
    if not include_dismissed:
        query = query.where(Insight.dismissed_at.is_(None))
    after = decode_cursor(cursor, 2)
    if after is not None:
        ts, last = datetime.fromisoformat(after[0]), int(after[1])
        query = query.where(or_(Insight.created_at < ts, and_(Insight.created_at == ts, Insight.id < last)))
    rows = list(db.session.scalars(query.order_by(Insight.created_at.desc(), Insight.id.desc()).limit(limit + 1)))
    next_cursor = (encode_cursor(rows[limit - 1].created_at.isoformat(), rows[limit - 1].id)
                   if len(rows) > limit else None)
    return {"items": [serialize(c) for c in rows[:limit]], "next_cursor": next_cursor}


def dismiss(viewer: User, insight_id: int) -> Insight:
    card = db.session.get(Insight, insight_id)
    if card is None or card.user_id != viewer.id:
        refuse(404, "Insight not found.")
    db.session.execute(update(Insight).where(Insight.id == card.id, Insight.dismissed_at.is_(None))
                       .values(dismissed_at=clock.now()))
    db.session.commit()
    db.session.refresh(card)
    return card
