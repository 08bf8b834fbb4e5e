"""Insights against the database: loads and the series kept incrementally (equal to a rebuild), weekly summaries
exactly once in the athlete's local week, planned-workout reminders exactly once, and the owner-only API."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update

from domain import clock, jobs
from domain.algorithms import training
from domain.insights import loads, planned, service, summaries
from models import Activity, ActivityLoad, Notification, TrainingDay, TrainingSettings, User, WeeklySummary, db
from models.user import Preferences
from tests.support.synthetic import synthetic_track

API = "/api/v1"


@pytest.fixture
def dev_clock(app):
    """The development clock (read where an app context says the environment allows it)."""
    with app.app_context():
        yield clock
        clock.reset()


def _manual(client: Any, headers: dict[str, str], start: datetime, minutes: int, **extra: Any) -> int:
    resp = client.post(f"{API}/activities", headers=headers, json={
        "sport_type": extra.pop("sport_type", "running"), "start_date": start.isoformat(),
        "elapsed_time_s": minutes * 60, "distance_m": minutes * 180.0, **extra})
    assert resp.status_code == 201, resp.json
    return int(resp.json["id"])


def _series(user_id: int) -> list[tuple[date, float, float, float]]:
    db.session.expire_all()
    return [(d.day, round(d.load, 9), round(d.fitness, 9), round(d.fatigue, 9)) for d in db.session.scalars(
        select(TrainingDay).where(TrainingDay.user_id == user_id).order_by(TrainingDay.day))]


def test_loads_and_the_fitness_series_follow_activities_incrementally(client, login, dev_clock):
    ann, ann_id = login("ann")
    dev_clock.set_now(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    ids = []
    # Out of order on purpose: each refresh recomputes only from its day, and must still equal a rebuild.
    for day, minutes, hr in ((10, 60, 150), (3, 45, None), (20, 30, 165), (15, 90, 140), (3, 20, 170)):
        extra = {"avg_hr": hr} if hr else {"perceived_exertion": 6}
        ids.append(_manual(client, ann, datetime(2026, 11, day, 7, 0, tzinfo=UTC), minutes, **extra))
        service.refresh(ann_id, [ids[-1]])
    methods = {row.activity_id: row.method for row in db.session.scalars(select(ActivityLoad))}
    assert methods == {ids[0]: "heart_rate", ids[1]: "rpe", ids[2]: "heart_rate", ids[3]: "heart_rate",
                       ids[4]: "heart_rate"}
    incremental = _series(ann_id)
    # Stored up to the last day with a load; the days after it are the series continued without load.
    assert incremental[0][0] == date(2026, 11, 3) and incremental[-1][0] == date(2026, 11, 20)
    loads.rebuild(ann_id)
    assert _series(ann_id) == incremental
    # The API: one item per day, the stored series then the decay after it.
    body = client.get(f"{API}/me/fitness?from=2026-11-01&to=2026-12-05", headers=ann).json
    assert len(body["items"]) == 35 and body["items"][0]["fitness"] == 0.0
    by_day = {i["date"]: i for i in body["items"]}
    stored = {d: f for d, _, f, _ in incremental}
    assert by_day["2026-11-20"]["fitness"] == round(stored[date(2026, 11, 20)], 1)
    after = by_day["2026-12-05"]
    expected = training.series(date(2026, 11, 21), [0.0] * 15, incremental[-1][2], incremental[-1][3])[-1]
    assert after["fitness"] == round(expected.fitness, 1) and after["load"] == 0.0
    # Deleting an activity recomputes from its day.
    assert client.delete(f"{API}/activities/{ids[2]}", headers=ann).status_code == 204
    service.refresh(ann_id, [])
    after_delete = {d: load for d, load, _, _ in _series(ann_id)}
    assert date(2026, 11, 20) not in after_delete  # nothing stored from the deleted day on
    body = client.get(f"{API}/me/fitness?from=2026-11-20&to=2026-11-20", headers=ann).json
    assert body["items"][0]["load"] == 0.0
    assert db.session.get(TrainingSettings, ann_id).series_stale_from is None


def test_ingest_stores_the_load_and_one_refresh_covers_a_burst(client, login, dev_clock, monkeypatch):
    """Ingest computes the load from its track and sends the refresh only when the series was clean: a burst
    of uploads costs one job, which takes every pending load, and equals a rebuild."""
    ann, ann_id = login("ann")
    dev_clock.set_now(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setitem(jobs._senders, jobs.ANALYTICS_REFRESH, lambda *args, countdown=None: sent.append(args))
    ids = [_manual(client, ann, datetime(2026, 11, day, 7, 0, tzinfo=UTC), 20) for day in (10, 3, 12)]
    service.refresh(ann_id, ids)
    sent.clear()
    track = synthetic_track(seed=4, n_points=1200)
    for activity_id in ids:
        loads.activity_ingested(db.session.get(Activity, activity_id), track)
        db.session.commit()
    assert sent == [(ann_id, [])]  # the first found the series clean; the others rode on its job
    rows = db.session.scalars(select(ActivityLoad).where(ActivityLoad.user_id == ann_id)).all()
    assert {r.activity_id: (r.pending, r.method) for r in rows} == {i: (True, "heart_rate") for i in ids}
    assert db.session.get(TrainingSettings, ann_id).series_stale_from == date(2026, 11, 3)
    _, changed = loads.refresh(ann_id, [])
    db.session.commit()
    assert changed == sorted(ids)  # the cards and plan rules see every activity of the burst
    db.session.expire_all()
    assert not any(r.pending for r in db.session.scalars(select(ActivityLoad).where(ActivityLoad.user_id == ann_id)))
    incremental = _series(ann_id)
    assert incremental[0][0] == date(2026, 11, 3) and incremental[-1][0] == date(2026, 11, 12)
    assert incremental[0][1] > 0 and incremental[0][1] == pytest.approx(
        db.session.get(ActivityLoad, ids[1]).load, abs=1e-6)
    # The same series computed in one go from the stored loads (these activities have no stored stream, so
    # a rebuild would estimate their loads instead of reading the track ingest had).
    db.session.execute(delete(TrainingDay).where(TrainingDay.user_id == ann_id))
    loads.recompute_series(ann_id, date(2026, 11, 1))
    db.session.commit()
    assert _series(ann_id) == incremental
    # Clean again: the next upload sends its own job.
    loads.activity_ingested(db.session.get(Activity, ids[0]), track)
    db.session.commit()
    assert sent == [(ann_id, []), (ann_id, [])]


def test_the_owner_alone_sees_loads_and_plans(client, login, dev_clock):
    ann, ann_id = login("ann")
    bob, _ = login("bob")
    activity_id = _manual(client, ann, datetime(2026, 11, 10, 7, 0, tzinfo=UTC), 60, avg_hr=150)
    service.refresh(ann_id, [activity_id])
    mine = client.get(f"{API}/activities/{activity_id}", headers=ann).json
    assert mine["training_load"] > 0 and mine["trimp"] > 0 and mine["load_method"] == "heart_rate"
    theirs = client.get(f"{API}/activities/{activity_id}", headers=bob).json
    assert theirs["training_load"] is None and theirs["trimp"] is None and theirs["hr_zones"] is None
    plan = client.post(f"{API}/me/planned-workouts", headers=ann, json={
        "sport_type": "running", "planned_at": (clock.now() + timedelta(days=1)).isoformat(),
        "remind_before_min": 30}).json
    for method in ("get", "patch", "delete"):
        kwargs = {"json": {"notes": "mine"}} if method == "patch" else {}
        resp = getattr(client, method)(f"{API}/me/planned-workouts/{plan['id']}", headers=bob, **kwargs)
        assert resp.status_code == 404, (method, resp.json)
    assert client.get(f"{API}/me/planned-workouts", headers=bob).json["items"] == []
    bad = client.post(f"{API}/me/planned-workouts", headers=ann, json={
        "sport_type": "running", "planned_at": "2031-01-01T00:00:00Z"})
    assert bad.status_code == 422
    assert client.get(f"{API}/me/fitness?from=2026-12-01&to=2026-11-01", headers=ann).status_code == 422
    assert client.get(f"{API}/me/fitness?from=2000-01-01&to=2026-11-01", headers=ann).status_code == 422
    patch = client.patch(f"{API}/me/training-settings", headers=ann, json={"max_hr": 150, "resting_hr": 160})
    assert patch.status_code == 422


def test_planned_workout_reminders_fire_once_and_again_when_moved(client, login, dev_clock):
    ann, ann_id = login("ann")
    dev_clock.set_now(datetime(2026, 11, 23, 6, 0, tzinfo=UTC))
    plan = client.post(f"{API}/me/planned-workouts", headers=ann, json={
        "sport_type": "cycling", "planned_at": "2026-11-23T07:00:00+00:00", "remind_before_min": 30,
        "distance_m": 40000}).json
    assert planned.send_due_reminders() == 0  # 06:00: not yet
    dev_clock.set_now(datetime(2026, 11, 23, 6, 30, 5, tzinfo=UTC))
    assert planned.send_due_reminders() == 1
    assert planned.send_due_reminders() == 0  # a second beat, or a redelivered tick
    reminders = list(db.session.scalars(select(Notification).where(Notification.user_id == ann_id,
                                                                   Notification.kind == "workout_reminder")))
    assert len(reminders) == 1 and reminders[0].payload["planned_workout_id"] == plan["id"]
    assert "07:00" in reminders[0].payload["title"]
    # Moved to the evening: reminded again at the new time.
    client.patch(f"{API}/me/planned-workouts/{plan['id']}", headers=ann, json={"planned_at": "2026-11-23T18:00:00Z"})
    assert planned.send_due_reminders() == 0
    dev_clock.set_now(datetime(2026, 11, 23, 17, 31, tzinfo=UTC))
    assert planned.send_due_reminders() == 1
    # The ride that day marks it done.
    activity_id = _manual(client, ann, datetime(2026, 11, 23, 18, 5, tzinfo=UTC), 90, sport_type="cycling")
    service.refresh(ann_id, [activity_id])
    assert client.get(f"{API}/me/planned-workouts/{plan['id']}", headers=ann).json["status"] == "done"


def _due_now(now: datetime) -> int:
    summaries.schedule_missing(now)
    due = summaries.lease_due(now)
    return sum(summaries.run_chunk(due[i:i + 50], now) for i in range(0, len(due), 50))


def test_weekly_summaries_once_per_athlete_at_their_local_monday_morning(client, login, dev_clock):
    athletes = {}
    for name, tz in (("honolulu", "Pacific/Honolulu"), ("tonga", "Pacific/Tongatapu"), ("berlin", "Europe/Berlin")):
        headers, uid = login(name)
        client.patch(f"{API}/me", headers=headers, json={"preferences": {"timezone": tz}})
        athletes[name] = (headers, uid)
    honolulu, tonga = athletes["honolulu"], athletes["tonga"]
    # Week of Monday 23 to Sunday 29 November 2026, local: a run late on Sunday in Honolulu (Monday UTC) counts
    # for that week; a run on Monday 30 November 07:00 in Tonga (Sunday UTC) counts for the next one.
    _manual(client, honolulu[0], datetime(2026, 11, 30, 8, 0, tzinfo=UTC), 40)  # Sun 29 Nov 22:00 local
    _manual(client, tonga[0], datetime(2026, 11, 29, 18, 0, tzinfo=UTC), 30)  # Mon 30 Nov 07:00 local
    _manual(client, tonga[0], datetime(2026, 11, 28, 18, 0, tzinfo=UTC), 50)  # Sun 29 Nov 07:00 local
    start = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
    summaries.schedule_missing(start)
    db.session.expire_all()
    slots = {n: db.session.get(TrainingSettings, uid).next_summary_at for n, (_, uid) in athletes.items()}
    assert slots["tonga"] == datetime(2026, 11, 29, 19, 0, tzinfo=UTC)  # Monday 08:00 UTC+13
    assert slots["honolulu"] == datetime(2026, 11, 30, 18, 0, tzinfo=UTC)  # Monday 08:00 UTC−10
    assert slots["berlin"] == datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    assert _due_now(datetime(2026, 11, 29, 18, 59, tzinfo=UTC)) == 0
    assert _due_now(datetime(2026, 11, 29, 19, 0, 30, tzinfo=UTC)) == 1  # Tonga's Monday morning
    assert _due_now(datetime(2026, 11, 29, 19, 1, tzinfo=UTC)) == 0  # two beats: nothing twice
    # A lease whose chunk was lost comes due again and inserts nothing new for the same week.
    db.session.execute(update(TrainingSettings).where(TrainingSettings.user_id == tonga[1])
                       .values(next_summary_at=datetime(2026, 11, 29, 19, 0, tzinfo=UTC)))
    assert _due_now(datetime(2026, 11, 29, 19, 20, tzinfo=UTC)) == 0
    assert _due_now(datetime(2026, 11, 30, 18, 0, 1, tzinfo=UTC)) == 2  # Berlin (07:00 UTC) and Honolulu
    weekly = {r.user_id: r for r in db.session.scalars(select(WeeklySummary))}
    assert {w.week_start for w in weekly.values()} == {date(2026, 11, 23)}
    assert weekly[honolulu[1]].totals["count"] == 1
    assert weekly[tonga[1]].totals["count"] == 1  # the Monday run is next week's
    body = client.get(f"{API}/me/summaries/weekly", headers=tonga[0]).json["items"]
    assert len(body) == 1 and body[0]["week_start"] == "2026-11-23" and body[0]["timezone"] == "Pacific/Tongatapu"
    pushes = db.session.scalar(select(func.count()).select_from(Notification).where(
        Notification.kind == "weekly_summary"))
    assert pushes == 3


def test_a_timezone_change_mid_week_moves_the_slot_and_still_gives_one_summary(client, login, dev_clock):
    headers, uid = login("mover")
    client.patch(f"{API}/me", headers=headers, json={"preferences": {"timezone": "Asia/Tokyo"}})
    dev_clock.set_now(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))  # Wednesday
    summaries.schedule_missing(clock.now())
    db.session.expire_all()
    assert db.session.get(TrainingSettings, uid).next_summary_at == datetime(2026, 12, 6, 23, 0, tzinfo=UTC)
    client.patch(f"{API}/me", headers=headers, json={"preferences": {"timezone": "America/New_York"}})
    db.session.expire_all()
    assert db.session.get(TrainingSettings, uid).next_summary_at == datetime(2026, 12, 7, 13, 0, tzinfo=UTC)
    assert _due_now(datetime(2026, 12, 6, 23, 0, 30, tzinfo=UTC)) == 0  # Tokyo's Monday 08:00: not any more
    assert _due_now(datetime(2026, 12, 7, 13, 0, 30, tzinfo=UTC)) == 1
    assert _due_now(datetime(2026, 12, 7, 13, 5, tzinfo=UTC)) == 0
    row = db.session.scalars(select(WeeklySummary).where(WeeklySummary.user_id == uid)).one()
    assert (row.week_start, row.timezone) == (date(2026, 11, 30), "America/New_York")
    assert db.session.get(Preferences, uid).timezone == "America/New_York"


def test_trends_group_by_the_athletes_local_weeks(client, login, dev_clock):
    ann, _ = login("ann")
    client.patch(f"{API}/me", headers=ann, json={"preferences": {"timezone": "Pacific/Tongatapu"}})
    dev_clock.set_now(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    # Sunday 29 November 18:00 UTC is Monday 30 November 07:00 in Tonga: this week, not last.
    _manual(client, ann, datetime(2026, 11, 29, 18, 0, tzinfo=UTC), 30, avg_hr=150)
    _manual(client, ann, datetime(2026, 11, 25, 18, 0, tzinfo=UTC), 60)
    body = client.get(f"{API}/me/trends?period=week", headers=ann).json
    assert len(body["items"]) == 12
    weeks = {i["period_start"]: i["sports"].get("running") for i in body["items"]}
    assert weeks["2026-11-30"]["count"] == 1 and weeks["2026-11-30"]["metres_per_heartbeat"] is not None
    assert weeks["2026-11-23"]["count"] == 1 and weeks["2026-11-23"]["metres_per_heartbeat"] is None
    assert client.get(f"{API}/me/trends?period=year", headers=ann).status_code == 422


def test_recovery_gives_a_status_with_reasons_against_the_athletes_baselines(client, login, dev_clock):
    ann, _ = login("ann")
    client.patch(f"{API}/me", headers=ann, json={"preferences": {"timezone": "Europe/Berlin"}})
    assert client.get(f"{API}/me/recovery?date=2026-11-20", headers=ann).json["status"] == "unknown"
    for i in range(14):  # two weeks of 8 h nights (23:00–07:00 Berlin) and a resting heart rate about 50
        morning = date(2026, 11, 6) + timedelta(days=i)
        start = datetime(morning.year, morning.month, morning.day, 22, 0, tzinfo=UTC) - timedelta(days=1)
        assert client.post(f"{API}/me/sleep", headers=ann, json={
            "start": start.isoformat(), "end": (start + timedelta(hours=8)).isoformat()}).status_code == 201
        assert client.post(f"{API}/me/body-metrics", headers=ann, json={
            "kind": "resting_heart_rate", "value": 49 + i % 3,
            "measured_at": datetime(morning.year, morning.month, morning.day, 7, 30, tzinfo=UTC).isoformat()},
        ).status_code == 201
    good = client.get(f"{API}/me/recovery?date=2026-11-19", headers=ann).json
    assert good["status"] == "recovered", good
    assert {r["factor"] for r in good["reasons"]} >= {"sleep", "sleep_regularity", "resting_heart_rate"}
    # Then a 5 h night and a resting heart rate of 58: two reasons against.
    assert client.post(f"{API}/me/sleep", headers=ann, json={
        "start": "2026-11-20T01:00:00+00:00", "end": "2026-11-20T06:00:00+00:00"}).status_code == 201
    assert client.post(f"{API}/me/body-metrics", headers=ann, json={
        "kind": "resting_heart_rate", "value": 58, "measured_at": "2026-11-20T07:30:00+00:00"}).status_code == 201
    bad = client.get(f"{API}/me/recovery?date=2026-11-20", headers=ann).json
    notable = {r["factor"]: r for r in bad["reasons"] if r["notable"]}
    assert bad["status"] == "strained" and set(notable) == {"sleep", "resting_heart_rate"}, bad
    assert notable["sleep"]["value"] == 300 and notable["sleep"]["baseline"] == 480
    assert notable["resting_heart_rate"]["baseline"] == pytest.approx(699 / 14, abs=0.05)


def test_short_sleep_while_load_rises_makes_one_card_with_its_numbers(client, login, dev_clock):
    from domain.insights import cards

    ann, ann_id = login("ann")
    today = date(2026, 11, 20)
    days = training.series(today - timedelta(days=13), [50.0] * 7 + [80.0] * 7)
    db.session.execute(insert(TrainingDay), [{"user_id": ann_id, **d.__dict__} for d in days])
    for i in range(3):  # 02:00–07:00 UTC on the three mornings up to today: 5 h each
        morning = today - timedelta(days=i)
        start = datetime(morning.year, morning.month, morning.day, 2, 0, tzinfo=UTC)
        assert client.post(f"{API}/me/sleep", headers=ann, json={
            "start": start.isoformat(), "end": (start + timedelta(hours=5)).isoformat()}).status_code == 201
    user = db.session.get(User, ann_id)
    assert cards.update_cards(user, [], today) >= 1
    assert cards.update_cards(user, [], today) == 0  # the same occasions never twice
    shown = {c["kind"]: c for c in client.get(f"{API}/me/insights", headers=ann).json["items"]}
    card = shown["sleep_load"]
    assert card["evidence"]["rise_pct"] == pytest.approx(60.0)
    assert card["evidence"]["nights_hours"] == [5.0, 5.0, 5.0]
