from __future__ import annotations

from datetime import UTC, datetime

from domain.activities.ingest import default_name
from domain.algorithms.timezones import local_start, resolve_timezone, strava_timezone, timezone_at, utc_offset_s


def test_zone_of_a_position_else_the_profile_else_utc():
    assert timezone_at(48.8566, 2.3522) == "Europe/Paris"
    assert timezone_at(40.7128, -74.0060) == "America/New_York"
    assert timezone_at(-33.87, 151.21) == "Australia/Sydney"
    assert timezone_at(0.0, -30.0).startswith("Etc/GMT")  # mid-Atlantic
    assert timezone_at(None, None) is None and timezone_at(float("nan"), 2.0) is None
    assert timezone_at(95.0, 2.0) is None
    assert resolve_timezone(48.8566, 2.3522, "America/Chicago") == "Europe/Paris"
    assert resolve_timezone(None, None, "America/Chicago") == "America/Chicago"
    assert resolve_timezone(None, None, "Not/AZone") == "UTC"


def test_local_start_and_offsets_follow_daylight_saving():
    winter, summer = datetime(2026, 1, 15, 6, 30, tzinfo=UTC), datetime(2026, 7, 15, 6, 30, tzinfo=UTC)
    assert local_start(winter, "Europe/Paris") == datetime(2026, 1, 15, 7, 30)
    assert local_start(summer, "Europe/Paris") == datetime(2026, 7, 15, 8, 30)
    assert utc_offset_s(summer, "America/New_York") == -4 * 3600
    assert strava_timezone(winter, "Europe/Paris") == "(GMT+01:00) Europe/Paris"
    assert strava_timezone(summer, "America/St_Johns") == "(GMT-02:30) America/St_Johns"


def test_default_name_uses_the_local_time_where_it_happened():
    start = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)  # 6 am in Paris, 1 am in New York, 4 pm in Sydney
    assert default_name("running", start, "Europe/Paris") == "Morning Run"
    assert default_name("cycling", start, "America/New_York") == "Night Ride"
    assert default_name("running", start, "Australia/Sydney") == "Afternoon Run"
