"""Weekly summaries: for each athlete, at the local weekday and time they chose (default Monday 08:00), the
seven local days before it — stored once and pushed once.

Built for millions of athletes without a beat entry per athlete: each athlete's next slot is kept as an instant
(``training_settings.next_summary_at``, recomputed when the slot or the time zone changes), so a tick is one
indexed range scan of who is due. The tick leases the due rows (pushes their slot 15 minutes on) and sends them
in chunks; a chunk computes every athlete's figures in a few grouped queries (no query per athlete), inserts the
summaries with ``ON CONFLICT DO NOTHING`` on (athlete, week) — exactly one per week under two beats, a
redelivered chunk or a lost one retried after its lease — notifies those it inserted, and moves each athlete's
slot to the next week. DST changes are handled by computing each slot as local wall time in the athlete's zone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain import clock
from domain.algorithms import training
from domain.notifications.outbox import notify_each
from domain.pagination import decode_cursor, encode_cursor
from models import TrainingSettings, User, WeeklySummary, db

#: Athletes sent per chunk task, and leased per tick.
CHUNK = 200
TICK_LIMIT = 20_000
#: A due athlete's slot is moved this far on while their chunk runs; a lost chunk is retried after it.
LEASE = timedelta(minutes=15)


def _slot_time(settings: TrainingSettings) -> time:
    hh, mm = settings.summary_time.split(":")
    return time(int(hh), int(mm))


def next_slot(settings: TrainingSettings, timezone: str, after: datetime) -> datetime:
    return training.next_weekly_slot(after, timezone, settings.summary_weekday, _slot_time(settings))


def reschedule(user: User) -> None:
    """Recompute the athlete's next slot (a new time zone, weekday or time), in the caller's transaction."""
    settings = db.session.get(TrainingSettings, user.id)
    if settings is not None:
        settings.next_summary_at = next_slot(settings, user.preferences.timezone, clock.now())


def schedule_missing(now: datetime, batch: int = 5000) -> int:
    """Give athletes without a slot their first one (new accounts, and every account after this feature
    arrived), in batches: a settings row where there is none, then the slot from their time zone."""
    db.session.execute(text("""
        INSERT INTO training_settings (user_id)
        SELECT u.id FROM users u WHERE NOT EXISTS (SELECT 1 FROM training_settings t WHERE t.user_id = u.id)
        ORDER BY u.id LIMIT :n ON CONFLICT DO NOTHING"""), {"n": batch})
    rows = db.session.execute(
        select(TrainingSettings, User).join(User, User.id == TrainingSettings.user_id)
        .where(TrainingSettings.next_summary_at.is_(None)).limit(batch)).all()
    for settings, user in rows:
        settings.next_summary_at = next_slot(settings, user.preferences.timezone, now)
    db.session.commit()
    return len(rows)


def lease_due(now: datetime, limit: int = TICK_LIMIT) -> list[int]:
    """The athletes whose slot has come, leased (slot moved on by LEASE) so the next tick skips them."""
    ids = list(db.session.scalars(text("""
        UPDATE training_settings SET next_summary_at = :lease
        WHERE user_id IN (SELECT user_id FROM training_settings WHERE next_summary_at <= :now
                          ORDER BY next_summary_at LIMIT :n FOR UPDATE SKIP LOCKED)
        RETURNING user_id"""), {"now": now, "lease": now + LEASE, "n": limit}))
    db.session.commit()
    return sorted(ids)


# --- one chunk -----------------------------------------------------------------------------------------------

def _week_of(now: datetime, settings: TrainingSettings, timezone: str) -> date:
    """The first day of the seven local days the summary due at ``now`` covers: the week before the slot's day
    (the slot due now is the one at or before ``now``)."""
    slot = next_slot(settings, timezone, now - timedelta(days=7))
    if slot > now:  # not yet reached this week's slot (a lease retry): the previous one
        slot -= timedelta(days=7)
    return slot.astimezone(ZoneInfo(timezone)).date() - timedelta(days=7)


#: Each athlete's week as a row (user_id, lo, hi) from the parallel arrays :users, :starts, :ends: the one
#: table the chunk's grouped queries join against.
_WEEKS = """
    WITH w AS (SELECT * FROM unnest(CAST(:users AS bigint[]), CAST(:starts AS timestamptz[]),
                                    CAST(:ends AS timestamptz[])) AS w(user_id, lo, hi))"""

_TOTALS_SQL = text(_WEEKS + """
    SELECT w.user_id, a.sport_type, (a.start_time >= w.lo) AS this_week, count(*) AS n,
           sum(a.distance_m) AS distance_m, sum(a.moving_time_s) AS moving_time_s,
           sum(coalesce(a.elevation_gain_m, 0)) AS elevation_gain_m, max(a.distance_m) AS longest_m
    FROM w JOIN activities a ON a.user_id = w.user_id
          AND a.start_time >= w.lo - interval '28 days' AND a.start_time < w.hi
    GROUP BY w.user_id, a.sport_type, (a.start_time >= w.lo)""")

_ACHIEVEMENTS_SQL = text(_WEEKS + """
    SELECT w.user_id, count(*) FILTER (WHERE x.kind = 'pr') AS prs, count(*) AS achievements
    FROM w JOIN achievements x ON x.user_id = w.user_id AND x.created_at >= w.lo AND x.created_at < w.hi
    GROUP BY w.user_id""")

_DAYS_SQL = text("""
    WITH w AS (SELECT * FROM unnest(CAST(:users AS bigint[]), CAST(:first AS date[]), CAST(:last AS date[]))
               AS w(user_id, d0, d1))
    SELECT w.user_id, sum(t.load) AS load,
           (array_agg(t.fitness ORDER BY t.day DESC))[1] AS fitness,
           (array_agg(t.form ORDER BY t.day DESC))[1] AS form
    FROM w JOIN training_days t ON t.user_id = w.user_id AND t.day BETWEEN w.d0 AND w.d1
    GROUP BY w.user_id""")


#: Counted sleep (one session per night: device > manual > estimated) and food energy logged, per athlete's week.
_SLEEP_SQL = text(_WEEKS + """,
    nights AS (
        SELECT DISTINCT ON (s.user_id, coalesce(s.night_of, s.end_at::date::text)) s.user_id,
               extract(epoch FROM s.end_at - s.start_at) / 60.0 AS minutes
        FROM w JOIN sleep_sessions s ON s.user_id = w.user_id AND s.end_at >= w.lo AND s.end_at < w.hi
        ORDER BY s.user_id, coalesce(s.night_of, s.end_at::date::text),
                 CASE s.source WHEN 'healthkit' THEN 0 WHEN 'health_connect' THEN 0 WHEN 'manual' THEN 1 ELSE 2 END,
                 s.end_at - s.start_at DESC)
    SELECT user_id, count(*) AS nights, avg(minutes) AS avg_min FROM nights GROUP BY user_id""")

_FOOD_SQL = text(_WEEKS + """
    SELECT w.user_id, count(DISTINCT (m.eaten_at AT TIME ZONE 'UTC')::date) AS days,
           sum((i.nutrients->>'energy_kcal')::float) AS kcal
    FROM w JOIN meals m ON m.user_id = w.user_id AND m.eaten_at >= w.lo AND m.eaten_at < w.hi
    JOIN meal_items i ON i.meal_id = m.id
    GROUP BY w.user_id""")


def build(users: Sequence[tuple[User, TrainingSettings]], now: datetime) -> list[dict[str, Any]]:
    """The summaries of these athletes for the week due at ``now``: a few grouped queries for all of them."""
    weeks = {u.id: _week_of(now, s, u.preferences.timezone) for u, s in users}
    tz = {u.id: u.preferences.timezone for u, _ in users}
    ids = [u.id for u, _ in users]

    def bound(uid: int, days: int) -> datetime:
        return datetime.combine(weeks[uid] + timedelta(days=days), time(), ZoneInfo(tz[uid]))

    params = {"users": ids, "starts": [bound(i, 0) for i in ids], "ends": [bound(i, 7) for i in ids]}
    sports: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    before: dict[int, dict[str, dict[str, float]]] = defaultdict(dict)
    for r in db.session.execute(_TOTALS_SQL, params):
        figures = {"count": int(r.n), "distance_m": round(float(r.distance_m or 0), 1),
                   "moving_time_s": round(float(r.moving_time_s or 0)),
                   "elevation_gain_m": round(float(r.elevation_gain_m or 0), 1),
                   "longest_m": round(float(r.longest_m or 0), 1)}
        (sports if r.this_week else before)[r.user_id][r.sport_type] = figures
    awards = {r.user_id: (int(r.prs), int(r.achievements)) for r in db.session.execute(_ACHIEVEMENTS_SQL, params)}
    sleep = {r.user_id: r for r in db.session.execute(_SLEEP_SQL, params)}
    food = {r.user_id: r for r in db.session.execute(_FOOD_SQL, params)}
    days = {r.user_id: r for r in db.session.execute(_DAYS_SQL, {
        "users": ids, "first": [weeks[i] for i in ids], "last": [weeks[i] + timedelta(days=6) for i in ids]})}
    out = []
    for uid in ids:
        this, prior = sports.get(uid, {}), before.get(uid, {})
        total = _sum(this.values())
        prior_avg = {k: v / 4.0 for k, v in _sum(prior.values()).items()}
        change = {k: (round(100.0 * (total[k] - prior_avg[k]) / prior_avg[k], 1) if prior_avg.get(k) else None)
                  for k in ("distance_m", "moving_time_s")}
        prs, achievements = awards.get(uid, (0, 0))
        day = days.get(uid)
        totals = {"by_sport": this, "count": int(total["count"]), "distance_m": round(total["distance_m"], 1),
                  "moving_time_s": round(total["moving_time_s"]),
                  "elevation_gain_m": round(total["elevation_gain_m"], 1)}
        body = {"change_vs_4_weeks_pct": change, "four_week_average": {k: round(v, 1) for k, v in prior_avg.items()},
                "prs": prs, "achievements": achievements,
                "load": round(float(day.load), 1) if day and day.load is not None else 0.0,
                "fitness": round(float(day.fitness), 1) if day and day.fitness is not None else None,
                "form": round(float(day.form), 1) if day and day.form is not None else None,
                "sleep": ({"nights": int(sleep[uid].nights), "avg_minutes": round(float(sleep[uid].avg_min))}
                          if uid in sleep else None),
                "nutrition": ({"days_logged": int(food[uid].days),
                               "avg_kcal_per_logged_day": round(float(food[uid].kcal or 0) / int(food[uid].days))}
                              if uid in food and food[uid].days else None)}
        out.append({"user_id": uid, "week_start": weeks[uid], "timezone": tz[uid], "totals": totals, "body": body})
    return out


def _sum(items: Any) -> dict[str, float]:
    keys = ("count", "distance_m", "moving_time_s", "elevation_gain_m")
    acc = dict.fromkeys(keys, 0.0)
    for figures in items:
        for k in keys:
            acc[k] += float(figures[k])
    return acc


def _push_text(s: dict[str, Any], units: str) -> tuple[str, str]:
    t = s["totals"]
    if not t["count"]:
        return "Your week", "No activities last week. A fresh week starts now."
    distance = t["distance_m"] / (1609.344 if units == "imperial" else 1000.0)
    unit = "mi" if units == "imperial" else "km"
    hours = t["moving_time_s"] / 3600.0
    word = "activity" if t["count"] == 1 else "activities"
    return "Your week", f"{t['count']} {word}, {distance:.1f} {unit}, {hours:.1f} h."


def run_chunk(user_ids: Sequence[int], now: datetime | None = None) -> int:
    """Store and notify the summaries of these (leased) athletes and move their slots on; returns how many
    summaries this run inserted (0 for athletes who already have this week's)."""
    now = now or clock.now()
    users = [(u, s) for u, s in db.session.execute(select(User, TrainingSettings).join(
        TrainingSettings, TrainingSettings.user_id == User.id).where(User.id.in_(list(user_ids))))]
    if not users:
        return 0
    summaries = build(users, now)
    inserted = {r.user_id: r.id for r in db.session.execute(
        pg_insert(WeeklySummary).values(summaries).on_conflict_do_nothing()
        .returning(WeeklySummary.user_id, WeeklySummary.id))}
    by_user = {s["user_id"]: s for s in summaries}
    slots = {user.id: next_slot(settings, user.preferences.timezone, now) for user, settings in users}
    # One statement each for the slots and the notifications: a chunk is hundreds of athletes.
    db.session.execute(text("""
        UPDATE training_settings t SET next_summary_at = s.at
        FROM unnest(CAST(:ids AS bigint[]), CAST(:ats AS timestamptz[])) AS s(user_id, at)
        WHERE t.user_id = s.user_id"""), {"ids": list(slots), "ats": list(slots.values())})
    units = {user.id: user.preferences.units for user, _ in users}
    items = []
    for user_id, summary_id in inserted.items():
        title, body = _push_text(by_user[user_id], units[user_id])
        week = by_user[user_id]["week_start"].isoformat()
        items.append((user_id, f"weekly:{week}", {"title": title, "body": body, "summary_id": summary_id,
                                                  "week_start": week}))
    notify_each("weekly_summary", items)
    db.session.commit()
    return len(inserted)


# --- reading -------------------------------------------------------------------------------------------------

def listing(viewer: User, cursor: str | None, limit: int) -> dict[str, Any]:
    query = select(WeeklySummary).where(WeeklySummary.user_id == viewer.id)
    after = decode_cursor(cursor, 1)
    if after is not None:
        query = query.where(WeeklySummary.week_start < date.fromisoformat(str(after[0])))
    rows = list(db.session.scalars(query.order_by(WeeklySummary.week_start.desc()).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].week_start.isoformat()) if len(rows) > limit else None
    return {"items": [{"id": r.id, "week_start": r.week_start, "timezone": r.timezone, "totals": r.totals,
                       **r.body, "created_at": r.created_at} for r in rows[:limit]], "next_cursor": next_cursor}


def count_due(now: datetime) -> int:
    return int(db.session.scalar(select(func.count()).select_from(TrainingSettings)
                                 .where(TrainingSettings.next_summary_at <= now)) or 0)


def clear_leases(user_ids: Sequence[int]) -> None:
    """Make leased athletes due again now (a chunk that could not be sent)."""
    db.session.execute(update(TrainingSettings).where(TrainingSettings.user_id.in_(list(user_ids)))
                       .values(next_summary_at=clock.now()))
    db.session.commit()
