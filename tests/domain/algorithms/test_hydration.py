"""The drinking goal, its schedule and when a reminder is due (DST included), worked out by hand."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.algorithms import hydration
from domain.algorithms.hydration import ReminderFacts, reminder_due

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")


def test_goal_is_baseline_plus_sweat():
    assert hydration.baseline_ml("M") == 2000 and hydration.baseline_ml("F") == 1600
    assert hydration.baseline_ml(None) == 1800
    assert hydration.sweat_loss_ml("running", 3600) == pytest.approx(1000.0)
    assert hydration.sweat_loss_ml("running", 3600, temperature_c=30) == pytest.approx(2000.0)  # +10 %/°C, capped ×2
    assert hydration.sweat_loss_ml("cycling", 1800, temperature_c=25) == pytest.approx(600.0)  # 800 × 1.5 × 0.5
    assert hydration.daily_goal_ml("M", 1010) == 3050  # 3010 rounded up to 50 ml
    assert hydration.daily_goal_ml("F", 0, override_ml=2500) == 2500


def test_schedule_over_waking_hours():
    assert hydration.waking_fraction(time(15, 0), "08:00", "22:00") == pytest.approx(0.5)
    assert hydration.waking_fraction(time(7, 0), "08:00", "22:00") == 0.0
    assert hydration.waking_fraction(time(23, 0), "08:00", "22:00") == 1.0
    assert hydration.expected_by(time(15, 0), 2000, "08:00", "22:00") == pytest.approx(1000.0)


def facts(local_now: datetime, **overrides) -> ReminderFacts:
    values = {"local_now": local_now, "goal_ml": 2000, "drunk_ml": 500, "wake_start": "08:00", "wake_end": "22:00",
              "quiet_start": None, "quiet_end": None, "every_h": 2, "last_sent_at": None}
    values.update(overrides)
    return ReminderFacts(**values)


def test_reminder_due_when_behind_in_waking_hours():
    now = datetime(2026, 12, 5, 15, 0, tzinfo=TOKYO)
    assert reminder_due(facts(now)) == ("2026-12-05T15", 500)  # 1000 expected by 15:00, 500 drunk
    assert reminder_due(facts(now, drunk_ml=900)) is None  # 100 ml behind: not worth a push
    assert reminder_due(facts(datetime(2026, 12, 5, 7, 30, tzinfo=TOKYO))) is None  # before waking


def test_no_reminder_in_quiet_hours_or_too_soon():
    late = datetime(2026, 12, 5, 21, 30, tzinfo=TOKYO)
    assert reminder_due(facts(late, quiet_start="21:00", quiet_end="07:00")) is None
    assert reminder_due(facts(late)) is not None
    now = datetime(2026, 12, 5, 15, 0, tzinfo=TOKYO)
    assert reminder_due(facts(now, last_sent_at=now - timedelta(hours=1))) is None
    assert reminder_due(facts(now, last_sent_at=now - timedelta(hours=2))) is not None


def test_dst_fall_back_repeated_hour_is_one_slot():
    # 2026-11-01 in New York: 01:30 happens twice (EDT, then EST an hour later).
    first = datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK, fold=0)
    second = datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK, fold=1)
    assert second.timestamp() - first.timestamp() == 3600
    assert hydration.slot_key(first) == hydration.slot_key(second) == "2026-11-01T01"


def test_dst_spring_forward_schedule_follows_the_wall_clock():
    # 2026-03-08 in New York: the day has 23 hours; 15:00 is still half-way through 08:00–22:00.
    now = datetime(2026, 3, 8, 15, 0, tzinfo=NEW_YORK)
    assert reminder_due(facts(now)) == ("2026-03-08T15", 500)
