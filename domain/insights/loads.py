"""Per-activity training load and the athlete's daily fitness / fatigue / form series, kept current incrementally.

Every path that adds, changes or deletes an activity marks the athlete's ``series_stale_from`` back to that day
in its transaction (a durable mark, like a segment's stale boards) and the ``analytics.refresh`` job recomputes
the series from the marked day only (each day depends on the day before, so everything after it changes and
nothing before it does), then clears the mark. A lost message leaves the mark: the beat sweeper sends the job
again. ``insights-rebuild`` recomputes everything from the activities.

Ingest computes the new activity's load itself, from the track it has in memory (decoding the stored stream
again in the job would parse the same points twice), and stores it ``pending``: the next refresh takes every
pending load of the athlete, so one job covers a burst of uploads. Ingest therefore sends the job only when
the series was clean before it (a refresh is already on its way otherwise); edits and deletions name their
activity and always send one.

The series is stored up to the athlete's last day with a load; every reader continues it without load to the
day it asks about (:func:`series_at`, :func:`fitness`), so an old activity rewrites the days up to the
athlete's latest one, not every day up to today.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain import clock, jobs
from domain.algorithms import training
from domain.algorithms.streams import decode_track
from domain.algorithms.track import Track
from domain.health import meals
from models import Activity, ActivityLoad, ActivityStream, TrainingDay, TrainingSettings, User, db
from models.db import on_commit, staged, table_of

#: Samples with a heart rate that make a heart-rate based load (fewer: the average heart rate, if any).
MIN_HR_SAMPLES = 60


# --- marking -------------------------------------------------------------------------------------------------

def settings_of(user_id: int) -> TrainingSettings:
    """The athlete's training settings row (created with the defaults on first use)."""
    db.session.execute(pg_insert(TrainingSettings).values(user_id=user_id).on_conflict_do_nothing())
    row = db.session.get(TrainingSettings, user_id)
    assert row is not None
    return row


def _locked_settings(user_id: int) -> TrainingSettings:
    """The athlete's settings row, locked until the caller's commit: one refresh or rebuild at a time."""
    # One statement when the row exists (every time but the first).
    row = db.session.scalars(_LOCKED_SETTINGS, {"user_id": user_id}).first()
    if row is None:
        settings_of(user_id)
        row = db.session.scalars(_LOCKED_SETTINGS, {"user_id": user_id}).one()
    return row


#: Every upload takes it: prepared once.
_LOCKED_SETTINGS = (select(TrainingSettings).where(TrainingSettings.user_id == bindparam("user_id")).with_for_update()
                    .execution_options(populate_existing=True))


def _mark_stale(settings: TrainingSettings, day: date) -> bool:
    """The series is out of date from ``day`` on (the earliest mark wins; ``stale_since`` keeps the oldest
    unswept change). ``settings`` is locked by the caller. Returns whether the series was clean before."""
    marked = settings.series_stale_from
    settings.series_stale_from = day if marked is None else min(day, marked)
    settings.stale_since = settings.stale_since or clock.now()
    return marked is None


def _send_after_commit(user_id: int, activity_id: int | None = None) -> None:
    pending: dict[int, set[int]] = staged(db.session, "analytics", dict)
    pending.setdefault(user_id, set())
    if activity_id is not None:
        pending[user_id].add(activity_id)


def activity_changed(user_id: int, day: date, activity_id: int | None = None) -> None:
    """In the caller's transaction: the athlete's series is out of date from ``day`` on (and, if given, this
    activity's load); the refresh job is sent after the commit. Locks the athlete's settings row until the
    commit, as a running refresh does."""
    _mark_stale(_locked_settings(user_id), day)
    _send_after_commit(user_id, activity_id)


def activity_ingested(activity: Activity, track: Track) -> None:
    """In the ingest transaction: the new activity's load from the track in memory, stored ``pending``, and
    the series marked stale from its day. The refresh is sent after the commit only if the series was clean:
    otherwise the job the earlier change sent has not run yet (its lock would have made this wait), and it
    will take this pending load too. Locks the athlete's settings row until the commit."""
    owner = db.session.get(User, activity.user_id)
    assert owner is not None
    settings = _locked_settings(owner.id)
    values = _write_load(activity, owner, settings, track, owner.preferences.timezone)
    if _mark_stale(settings, values["day"]):
        _send_after_commit(owner.id)


def _send(pending: dict[int, set[int]]) -> None:
    for user_id, activity_ids in sorted(pending.items()):
        jobs.send(jobs.ANALYTICS_REFRESH, user_id, sorted(activity_ids))


on_commit("analytics", _send)


def rebuild_later(user_id: int) -> None:
    """After the athlete's heart-rate or power settings changed: every load and the series, after the commit."""
    pending: set[int] = staged(db.session, "analytics-rebuild", set)
    pending.add(user_id)


on_commit("analytics-rebuild", lambda ids: [jobs.send(jobs.ANALYTICS_REBUILD, uid) for uid in sorted(ids)])


def activity_stored(activity: Activity, timezone: str) -> None:
    """An activity was added or changed (ingest, a manual entry, an edit)."""
    activity_changed(activity.user_id, training.local_date(activity.start_time, activity.timezone or timezone),
                     activity.id)


def activity_removed(activity: Activity, timezone: str) -> None:
    """Before deleting an activity: the day its load counted on (as stored, in case the time zone changed)."""
    day = db.session.scalar(select(ActivityLoad.day).where(ActivityLoad.activity_id == activity.id))
    activity_changed(activity.user_id, day or training.local_date(activity.start_time, activity.timezone or timezone))


# --- per activity --------------------------------------------------------------------------------------------

def load_values(activity: Activity, owner: User, settings: TrainingSettings, track: Any | None,
                timezone: str) -> dict[str, Any]:
    """The ``activity_loads`` row of an activity (what it measured, the load on one scale, the energy)."""
    year = activity.start_time.year
    max_hr = training.max_hr_of(settings.max_hr, owner.birth_year, year)
    resting = float(settings.resting_hr or training.DEFAULT_RESTING_HR)
    threshold = float(settings.threshold_hr or training.default_threshold_hr(resting, max_hr))
    minutes = (activity.moving_time_s or activity.elapsed_time_s or 0.0) / 60.0
    # The day where it happened (the activity's own zone, as its start_date_local), else the athlete's.
    out: dict[str, Any] = {"activity_id": activity.id, "user_id": owner.id,
                           "day": training.local_date(activity.start_time, activity.timezone or timezone)}
    trimp = power = None
    if track is not None and np.sum(np.isfinite(track.hr) & (track.hr > 0)) >= MIN_HR_SAMPLES:
        bounds = training.zone_bounds(max_hr, settings.threshold_hr)
        out["hr_zones"] = training.time_in_zones(track.time, track.hr, bounds)
        out["zone_bounds"] = bounds
        trimp = training.banister_trimp(track.time, track.hr, resting, max_hr, owner.sex)
    elif activity.avg_hr:
        # Banister's original form: the session's mean heart rate for its duration.
        hrr = float(training.hr_reserve(activity.avg_hr, resting, max_hr))
        trimp = minutes * hrr * float(training.trimp_weight(hrr, owner.sex))
    if trimp is not None:
        out["trimp"] = round(trimp, 2)
        out["hrss"] = round(training.hrss(trimp, resting, max_hr, threshold, owner.sex), 2)
    if track is not None and settings.ftp_w and np.isfinite(track.power).sum() >= 30:
        np_watts = training.normalized_power(track.time, track.power)
        if np_watts:
            power = training.power_tss(activity.moving_time_s or activity.elapsed_time_s, np_watts, settings.ftp_w)
            out["power_tss"] = round(power, 2)
    if activity.perceived_exertion:
        out["srpe"] = round(training.srpe(activity.perceived_exertion, minutes), 1)
    if power is not None:
        out["load"], out["method"] = power, "power"
    elif "hrss" in out:
        out["load"], out["method"] = out["hrss"], "heart_rate"
    elif activity.perceived_exertion:
        out["load"], out["method"] = training.srpe_load(activity.perceived_exertion, minutes), "rpe"
    else:
        out["load"], out["method"] = training.estimated_load(minutes), "estimated"
    out["load"] = round(float(out["load"]), 2)
    out["energy_kcal"], out["energy_method"] = _energy(activity, owner)
    return out


def _energy(activity: Activity, owner: User) -> tuple[float | None, str | None]:
    kcal, method = meals.activity_energy(activity, owner)  # the one energy rule (nutrition targets use it too)
    return round(kcal, 1), method


#: Every column an ``activity_loads`` row sets (a recomputed row clears what no longer applies).
_LOAD_COLUMNS = ("user_id", "day", "load", "method", "trimp", "hrss", "power_tss", "srpe", "hr_zones", "zone_bounds",
                 "energy_kcal", "energy_method")


def store_load(activity_id: int, timezone: str | None = None, settings: TrainingSettings | None = None,
               ) -> dict[str, Any] | None:
    """Compute and store (replace) one activity's load from its stored stream, ``pending`` until the next
    refresh puts it in the series; returns the row's values, None when the activity is gone."""
    activity = db.session.get(Activity, activity_id)
    if activity is None:
        return None
    owner = db.session.get(User, activity.user_id)
    assert owner is not None
    settings = settings or settings_of(owner.id)
    stream = db.session.get(ActivityStream, activity.id)
    track = decode_track(stream.data) if stream is not None else None
    return _write_load(activity, owner, settings, track, timezone or owner.preferences.timezone)


def _write_load(activity: Activity, owner: User, settings: TrainingSettings, track: Any | None,
                timezone: str) -> dict[str, Any]:
    values = load_values(activity, owner, settings, track, timezone)
    values = {"activity_id": activity.id, **{k: values.get(k) for k in _LOAD_COLUMNS}, "pending": True}
    db.session.execute(_UPSERT_LOAD, values)
    return values


def _upsert_load() -> Any:
    """One activity's load, written or rewritten; prepared once, the values coming as parameters (it runs for
    every upload)."""
    stmt = pg_insert(table_of(ActivityLoad))
    columns = {k: stmt.excluded[k] for k in (*_LOAD_COLUMNS, "pending")}
    return stmt.on_conflict_do_update(index_elements=["activity_id"], set_={**columns, "computed_at": func.now()})


_UPSERT_LOAD = _upsert_load()


# --- the series ----------------------------------------------------------------------------------------------

def today_for(user: User) -> date:
    return training.local_date(clock.now(), user.preferences.timezone)


_WRITE_DAYS = text("""
    INSERT INTO training_days (user_id, day, load, fitness, fatigue, form, ramp, acwr, monotony, strain)
    SELECT :u, * FROM unnest(CAST(:day AS date[]), CAST(:load AS float8[]), CAST(:fitness AS float8[]),
                             CAST(:fatigue AS float8[]), CAST(:form AS float8[]), CAST(:ramp AS float8[]),
                             CAST(:acwr AS float8[]), CAST(:monotony AS float8[]), CAST(:strain AS float8[]))""")


def recompute_series(user_id: int, from_day: date) -> int:
    """Recompute the stored series from ``from_day`` to the athlete's last day with a load (later days are
    the series continued without load, computed by the readers); returns the days written. Continues from
    the stored day before, so the result equals a full rebuild."""
    history = [_as_day(r) for r in db.session.scalars(
        select(TrainingDay).where(TrainingDay.user_id == user_id, TrainingDay.day < from_day)
        .order_by(TrainingDay.day.desc()).limit(7))][::-1]
    if history and (from_day - history[-1].day).days > 1:
        from_day = history[-1].day + timedelta(days=1)  # the stored series ended earlier: fill the decay gap
    loads = list(db.session.execute(
        select(ActivityLoad.day, func.sum(ActivityLoad.load)).where(
            ActivityLoad.user_id == user_id, ActivityLoad.day >= from_day).group_by(ActivityLoad.day)))
    db.session.execute(delete(TrainingDay).where(TrainingDay.user_id == user_id, TrainingDay.day >= from_day))
    if not loads:
        return 0  # nothing from here on: the readers continue the stored series without load
    # Without history the series starts at the first load (before it, everything is 0).
    start = from_day if history else min(d for d, _ in loads)
    end = max(d for d, _ in loads)
    fit0 = history[-1].fitness if history else 0.0
    fat0 = history[-1].fatigue if history else 0.0
    days = training.series(start, training.daily_loads(start, end, ((d, float(v)) for d, v in loads)),
                           fit0, fat0, history)
    # One statement with arrays: an executemany of thousands of rows (a backfill) costs far more in the worker.
    columns = {name: [getattr(d, name) for d in days] for name in _DAY_FIELDS}
    db.session.execute(_WRITE_DAYS, {"u": user_id, **columns})
    return len(days)


_DAY_FIELDS = ("day", "load", "fitness", "fatigue", "form", "ramp", "acwr", "monotony", "strain")


def _tail(user_id: int, day: date) -> list[training.Day]:
    """The up to 7 stored days on or before ``day``, oldest first."""
    return [training.Day(*r) for r in db.session.execute(_TAIL_SQL, {"u": user_id, "hi": day})][::-1]


def _continued(tail: Sequence[training.Day], day: date) -> list[training.Day]:
    """The days after the stored ``tail`` up to ``day``, the series continued without load (none when the tail
    reaches ``day``)."""
    gap = (day - tail[-1].day).days
    return training.series(tail[-1].day + timedelta(days=1), [0.0] * gap, tail[-1].fitness, tail[-1].fatigue,
                           tail) if gap > 0 else []


def series_at(user_id: int, day: date) -> training.Day | None:
    """The athlete's series on ``day``: the stored day, or the last stored one before it continued without load;
    None before the series starts."""
    tail = _tail(user_id, day)
    if not tail:
        return None
    return (_continued(tail, day) or tail)[-1]


def _as_day(row: TrainingDay) -> training.Day:
    return training.Day(row.day, row.load, row.fitness, row.fatigue, row.form, row.ramp, row.acwr, row.monotony,
                        row.strain)


def refresh(user_id: int, activity_ids: Iterable[int]) -> tuple[date | None, list[int]]:
    """The job: the loads of the named activities (edits), then the series from the earliest day that changed,
    taking every pending load of the athlete (ingest stored them); returns that day and every activity whose
    load entered the series (the named and the pending ones).

    The athlete's settings row is locked for the whole run: two refreshes of one athlete run one after the
    other, and a change committed meanwhile waits for this commit, then marks its own day and sends its own
    refresh. So the mark can be cleared here without losing one."""
    user = db.session.get(User, user_id)
    if user is None:
        return None, []
    settings = _locked_settings(user_id)
    ids = list(activity_ids)
    # An edit may move an activity to another day: both days change.
    days = list(db.session.scalars(select(ActivityLoad.day).where(ActivityLoad.activity_id.in_(ids)))) if ids else []
    for activity_id in ids:
        row = store_load(activity_id, user.preferences.timezone, settings)
        if row is not None:
            days.append(row["day"])
    pending = list(db.session.execute(
        update(ActivityLoad).where(ActivityLoad.user_id == user_id, ActivityLoad.pending.is_(True))
        .values(pending=False).returning(ActivityLoad.activity_id, ActivityLoad.day)))
    days += [day for _, day in pending]
    start = min([d for d in (settings.series_stale_from, *days) if d is not None], default=None)
    if start is not None:
        recompute_series(user_id, start)
    settings.series_stale_from, settings.stale_since = None, None
    return start, sorted(set(ids) | {activity_id for activity_id, _ in pending})


def rebuild(user_id: int) -> int:
    """Every load and the whole series of one athlete, from the activities (the backfill)."""
    user = db.session.get(User, user_id)
    if user is None:
        return 0
    settings = _locked_settings(user_id)
    ids = list(db.session.scalars(select(Activity.id).where(Activity.user_id == user_id)))
    db.session.execute(delete(ActivityLoad).where(ActivityLoad.user_id == user_id))
    for activity_id in ids:
        store_load(activity_id, user.preferences.timezone, settings)
    db.session.execute(delete(TrainingDay).where(TrainingDay.user_id == user_id))
    db.session.execute(update(ActivityLoad).where(ActivityLoad.user_id == user_id).values(pending=False))
    first = db.session.scalar(select(func.min(ActivityLoad.day)).where(ActivityLoad.user_id == user_id))
    if first is not None:
        recompute_series(user_id, first)
    db.session.execute(update(TrainingSettings).where(TrainingSettings.user_id == user_id)
                       .values(series_stale_from=None, stale_since=None))
    return len(ids)


def sweep_stale(older_than_s: float = 120.0, batch: int = 500) -> int:
    """Send the refresh again for athletes whose series has been marked stale for a while (a lost message)."""
    cutoff = clock.now() - timedelta(seconds=older_than_s)
    ids = list(db.session.scalars(select(TrainingSettings.user_id).where(TrainingSettings.stale_since < cutoff)
                                  .order_by(TrainingSettings.stale_since).limit(batch)))
    db.session.commit()
    for user_id in ids:
        jobs.send(jobs.ANALYTICS_REFRESH, user_id, [])
    return len(ids)


# --- reading -------------------------------------------------------------------------------------------------

#: The longest range one fitness request may ask for.
MAX_RANGE_DAYS = 366 * 6


_ITEM_KEYS = ("date", "load", "fitness", "fatigue", "form", "ramp", "acwr", "monotony", "strain")
#: The stored days of a range, rounded as served, by PostgreSQL (rounding 1,826 days × 8 values in Python
#: costs more than the query).
_RANGE_SQL = text("""
    SELECT to_char(day, 'YYYY-MM-DD'), round(load::numeric, 1)::float8, round(fitness::numeric, 1)::float8,
           round(fatigue::numeric, 1)::float8, round(form::numeric, 1)::float8, round(ramp::numeric, 1)::float8,
           round(acwr::numeric, 2)::float8, round(monotony::numeric, 2)::float8, round(strain::numeric)::float8
    FROM training_days WHERE user_id = :u AND day BETWEEN :lo AND :hi ORDER BY day""")
_TAIL_SQL = text("""
    SELECT day, load, fitness, fatigue, form, ramp, acwr, monotony, strain FROM training_days
    WHERE user_id = :u AND day <= :hi ORDER BY day DESC LIMIT 7""")


def fitness(user: User, start: date, end: date) -> list[dict[str, Any]]:
    """One item per day from ``start`` to ``end``: the stored series, days before it 0, and days after its last
    stored day decayed without load (the series is stored up to the last day with a load). Plain rows and
    dicts: five years are 1,826 items, and ORM objects would cost more than the rest of the request."""
    stored = {row[0]: dict(zip(_ITEM_KEYS, row, strict=True))
              for row in db.session.execute(_RANGE_SQL, {"u": user.id, "lo": start, "hi": end})}
    last = _tail(user.id, end)
    if last:
        for d in _continued(last, end):
            if d.day >= start:
                stored[d.day.isoformat()] = _item(d.day, d)
    out = []
    for i in range((end - start).days + 1):
        key = (start + timedelta(days=i)).isoformat()
        out.append(stored.get(key) or _item(start + timedelta(days=i), None))
    return out


def _item(day: date, d: training.Day | None) -> dict[str, Any]:
    """A day computed here (the decay after the stored series, or nothing before it), rounded as stored days."""
    if d is None:
        return {"date": day.isoformat(), "load": 0.0, "fitness": 0.0, "fatigue": 0.0, "form": 0.0, "ramp": None,
                "acwr": None, "monotony": None, "strain": None}
    return {"date": day.isoformat(), "load": round(d.load, 1), "fitness": round(d.fitness, 1),
            "fatigue": round(d.fatigue, 1), "form": round(d.form, 1),
            "ramp": None if d.ramp is None else round(d.ramp, 1),
            "acwr": None if d.acwr is None else round(d.acwr, 2),
            "monotony": None if d.monotony is None else round(d.monotony, 2),
            "strain": None if d.strain is None else float(round(d.strain))}


def load_of(activity_id: int) -> ActivityLoad | None:
    return db.session.get(ActivityLoad, activity_id)


def local_now(user: User) -> datetime:
    return clock.now().astimezone(ZoneInfo(user.preferences.timezone))
