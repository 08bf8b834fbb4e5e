"""Hydration reminders: the athlete's local time and waking hours, quiet hours, one per slot, DST, and the
development clock that drives them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from domain import clock
from domain.errors import Refusal
from domain.health import hydration
from models import HydrationReminder, Notification, db


def reminders_of(user_id: int) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(Notification.user_id == user_id,
                                                              Notification.kind == "hydration_reminder")))


def athlete(client, login, name: str, timezone: str, drank_at: datetime, **prefs) -> int:
    headers, user_id = login(name, sex="M")
    assert client.patch("/api/v1/me/preferences", json={"timezone": timezone, **prefs},
                        headers=headers).status_code == 200
    # A drink the day before: athletes who track water get reminders, others are never nagged.
    resp = client.post("/api/v1/me/water", json={"ml": 250, "drunk_at": drank_at.isoformat()}, headers=headers)
    assert resp.status_code == 201, resp.json
    return user_id


@pytest.fixture
def dev_clock(app, redis_clean):
    with app.app_context():  # the clock is read only in development and testing: it needs the app's config
        yield clock
        clock.reset()


def test_tokyo_and_new_york_at_their_local_times_and_not_in_quiet_hours(client, login, dev_clock):
    tokyo_morning = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo, 20:00 the day before in New York
    dev_clock.set_now(tokyo_morning)
    tokyo = athlete(client, login, "kenji", "Asia/Tokyo", tokyo_morning - timedelta(days=1))
    new_york = athlete(client, login, "nora", "America/New_York", tokyo_morning - timedelta(days=1),
                       quiet_hours_start="19:00", quiet_hours_end="07:00")

    assert hydration.send_reminders() == 1  # "now" is the development clock's
    [sent] = reminders_of(tokyo)
    # 2,000 ml over 08:00–22:00: 286 ml expected by 10:00, nothing drunk today
    assert sent.payload["slot"] == "2026-12-05T10" and sent.payload["behind_ml"] == 286
    assert reminders_of(new_york) == []  # 20:00 there: quiet hours

    dev_clock.set_now(datetime(2026, 12, 5, 15, 0, tzinfo=UTC))  # 00:00 in Tokyo, 10:00 in New York
    assert hydration.send_reminders() == 1
    assert [n.payload["slot"] for n in reminders_of(new_york)] == ["2026-12-05T10"]
    assert len(reminders_of(tokyo)) == 1


def test_never_twice_for_one_slot_and_at_most_every_n_hours(client, login, app):
    now = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)  # 15:00 in Tokyo
    tokyo = athlete(client, login, "kenji", "Asia/Tokyo", now - timedelta(days=1))
    assert hydration.send_reminders(now) == 1
    assert hydration.send_reminders(now) == 0  # a second beat, a redelivered task
    assert hydration.send_reminders(now + timedelta(minutes=50)) == 0  # same slot
    assert hydration.send_reminders(now + timedelta(hours=1)) == 0  # every 2 hours by default
    assert hydration.send_reminders(now + timedelta(hours=2)) == 1
    # The slot key alone stops a repeat, whatever the interval says.
    db.session.execute(HydrationReminder.__table__.update().values(sent_at=now - timedelta(days=1)))
    assert hydration.send_reminders(now + timedelta(hours=2, minutes=30)) == 0
    assert len(reminders_of(tokyo)) == 2


def test_no_reminder_when_on_schedule_or_switched_off(client, login):
    now = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)  # 15:00 in Tokyo: 1,000 ml expected
    headers, user_id = login("kenji", sex="M")
    client.patch("/api/v1/me/preferences", json={"timezone": "Asia/Tokyo"}, headers=headers)
    client.post("/api/v1/me/water", json={"ml": 950, "drunk_at": (now - timedelta(hours=1)).isoformat()},
                headers=headers)
    assert hydration.send_reminders(now) == 0  # 50 ml behind
    client.patch("/api/v1/me/health/settings", json={"reminders_enabled": False}, headers=headers)
    assert hydration.send_reminders(now + timedelta(hours=5)) == 0
    client.patch("/api/v1/me/health/settings", json={"reminders_enabled": True}, headers=headers)
    client.patch("/api/v1/me/preferences", json={"notifications": {"reminders": False}}, headers=headers)
    hydration.send_reminders(now + timedelta(hours=5))
    assert reminders_of(user_id) == []  # the category is off: the outbox writes nothing


def test_dst_fall_back_repeated_hour_reminds_once(client, login):
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT; an hour later it is 01:30 EST
    headers, user_id = login("nora", sex="M")
    client.patch("/api/v1/me/preferences", json={"timezone": "America/New_York"}, headers=headers)
    client.patch("/api/v1/me/health/settings", json={"wake_start": "00:00", "wake_end": "23:59",
                                                     "reminder_every_h": 1, "water_goal_ml": 8000}, headers=headers)
    client.post("/api/v1/me/water", json={"ml": 100, "drunk_at": (first - timedelta(days=1)).isoformat()},
                headers=headers)
    assert hydration.send_reminders(first) == 1
    assert hydration.send_reminders(first + timedelta(hours=1)) == 0  # the repeated 01:30
    assert hydration.send_reminders(first + timedelta(hours=2)) == 1  # 02:30 EST
    assert [n.payload["slot"] for n in reminders_of(user_id)] == ["2026-11-01T01", "2026-11-01T02"]


def test_the_beat_task_reads_the_development_clock(client, login, dev_clock):
    from tasks.health import hydration_reminders

    moment = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
    dev_clock.set_now(moment)
    tokyo = athlete(client, login, "kenji", "Asia/Tokyo", moment - timedelta(days=1))
    assert hydration_reminders() == 1
    assert [n.payload["slot"] for n in reminders_of(tokyo)] == ["2026-12-05T15"]


def test_dev_clock_command_and_production_refusal(app, redis_clean):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["dev-clock", "set", "2030-01-02T07:00:00+09:00"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert abs((clock.now() - datetime(2030, 1, 1, 22, 0, tzinfo=UTC)).total_seconds()) < 5
    assert runner.invoke(args=["dev-clock", "set", "2030-01-02T07:00:00"]).exit_code != 0  # no offset
    assert runner.invoke(args=["dev-clock", "set", "tomorrow"]).exit_code != 0
    app.config["APP_ENV"] = "production"
    try:
        with app.app_context():
            assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 5  # production ignores the offset
            with pytest.raises(Refusal):
                clock.set_now(datetime(2030, 1, 1, tzinfo=UTC))
        assert runner.invoke(args=["dev-clock", "set", "2030-01-02T07:00:00+09:00"]).exit_code != 0
    finally:
        app.config["APP_ENV"] = "testing"
    assert runner.invoke(args=["dev-clock", "reset"]).exit_code == 0
    with app.app_context():
        assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 5
