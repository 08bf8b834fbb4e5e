"""The insights operations the tasks and views call: one function per use."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from domain.errors import refuse
from domain.insights import cards, loads, planned, summaries
from models import TrainingSettings, User, db

SETTINGS_FIELDS = ("max_hr", "resting_hr", "threshold_hr", "ftp_w", "summary_weekday", "summary_time")


def refresh(user_id: int, activity_ids: Sequence[int]) -> None:
    """The ``analytics.refresh`` job: loads, the series from the marked day, cards, plans done."""
    user = db.session.get(User, user_id)
    if user is None:
        return
    _, changed = loads.refresh(user_id, activity_ids)
    today = loads.today_for(user)
    cards.update_cards(user, changed, today)
    planned.match_completed(user_id, changed, user.preferences.timezone)
    db.session.commit()


def settings(user: User) -> dict[str, Any]:
    row = loads.settings_of(user.id)
    db.session.commit()
    return {**{f: getattr(row, f) for f in SETTINGS_FIELDS}, "next_summary_at": row.next_summary_at,
            "defaults": {"resting_hr": 60, "max_hr": "208 − 0.7 × age (Tanaka)",
                         "threshold_hr": "resting + 85 % of the heart-rate reserve"}}


def update_settings(user: User, changes: dict[str, Any]) -> dict[str, Any]:
    row = loads.settings_of(user.id)
    max_hr = changes.get("max_hr", row.max_hr)
    resting = changes.get("resting_hr", row.resting_hr)
    threshold = changes.get("threshold_hr", row.threshold_hr)
    if max_hr and resting and resting >= max_hr:
        refuse(422, "Resting heart rate must be below maximum heart rate.",
               errors={"json": {"resting_hr": ["Must be below max_hr."]}})
    if max_hr and threshold and threshold > max_hr:
        refuse(422, "Threshold heart rate can't be above maximum heart rate.",
               errors={"json": {"threshold_hr": ["Must not exceed max_hr."]}})
    for key, value in changes.items():
        setattr(row, key, value)
    if {"summary_weekday", "summary_time"} & set(changes):
        summaries.reschedule(user)
    if {"max_hr", "resting_hr", "threshold_hr", "ftp_w"} & set(changes):
        # Every load depends on them: recompute all of the athlete's (in the background).
        loads.rebuild_later(user.id)
    db.session.commit()
    return settings(user)


def fitness(user: User, start: date | None, end: date | None) -> dict[str, Any]:
    today = loads.today_for(user)
    end = end or today
    start = start or end - timedelta(days=89)
    if start > end:
        refuse(422, "`from` must not be after `to`.", errors={"query": {"from": ["After `to`."]}})
    if (end - start).days >= loads.MAX_RANGE_DAYS:
        refuse(422, f"Ask for at most {loads.MAX_RANGE_DAYS} days at a time.",
               errors={"query": {"from": ["Range too long."]}})
    return {"items": loads.fitness(user, start, end), "today": today.isoformat()}


def settings_row(user_id: int) -> TrainingSettings:
    return loads.settings_of(user_id)
