"""The load model's formulas against values worked out by hand (docs/insights.md states them)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.algorithms import training as t


def test_tanaka_max_heart_rate():
    assert t.tanaka_max_hr(40) == pytest.approx(180.0)
    assert t.max_hr_of(None, 1986, 2026) == pytest.approx(180.0)
    assert t.max_hr_of(195, 1986, 2026) == 195.0


def _steady(minutes: int, hr: float) -> tuple[np.ndarray, np.ndarray]:
    seconds = np.arange(0, minutes * 60 + 1, 1.0)
    return seconds, np.full(len(seconds), hr)


def test_banister_trimp_of_half_an_hour_at_150():
    tt, hr = _steady(30, 150.0)
    # HRr = (150 − 60) / (190 − 60) = 0.6923; 30 min × 0.6923 × 0.64 e^(1.92 × 0.6923) = 50.22 (men)
    assert t.banister_trimp(tt, hr, 60.0, 190.0, "M") == pytest.approx(50.220, abs=1e-3)
    # women: 0.86 e^(1.67 × 0.6923) → 56.76
    assert t.banister_trimp(tt, hr, 60.0, 190.0, "F") == pytest.approx(56.758, abs=1e-3)
    assert t.banister_trimp(tt, hr, 60.0, 190.0, None) == pytest.approx((50.220 + 56.758) / 2, abs=1e-3)


def test_pauses_and_missing_heart_rate_add_nothing():
    tt, hr = _steady(30, 150.0)
    gap = np.concatenate([tt[:901], tt[901:] + 3600.0])  # an hour's pause in the middle
    # The second before the pause counts nothing (the gap to the next sample is the pause): 1799 of 1800.
    assert t.banister_trimp(gap, hr, 60.0, 190.0, "M") == pytest.approx(50.220146 * 1799 / 1800, abs=1e-4)
    hr2 = hr.copy()
    hr2[:900] = np.nan
    assert t.banister_trimp(tt, hr2, 60.0, 190.0, "M") == pytest.approx(50.220 / 2, abs=1e-3)


def test_hrss_scores_an_hour_at_threshold_100():
    # One hour at threshold (170): TRIMP = 60 × 0.8462 × 0.64 e^(1.92 × 0.8462) = 164.95 → 100
    tt, hr = _steady(60, 170.0)
    trimp = t.banister_trimp(tt, hr, 60.0, 190.0, "M")
    assert trimp == pytest.approx(164.946, abs=1e-2)
    assert t.hrss(trimp, 60.0, 190.0, 170.0, "M") == pytest.approx(100.0, abs=1e-6)
    # Half an hour at 150: 50.22 / 164.95 × 100 = 30.45
    assert t.hrss(50.220146, 60.0, 190.0, 170.0, "M") == pytest.approx(30.446, abs=1e-3)


def test_power_tss_and_session_rpe():
    assert t.power_tss(3600.0, 250.0, 250.0) == pytest.approx(100.0)
    assert t.power_tss(1800.0, 200.0, 250.0) == pytest.approx(0.5 * 0.8 ** 2 * 100)
    seconds = np.arange(0, 3601, 1.0)
    assert t.normalized_power(seconds, np.full(len(seconds), 250.0)) == pytest.approx(250.0)
    # Alternating 0 / 400 W minutes: average 200 W, normalized power well above it (≈ 328 W).
    watts = np.where((seconds // 60) % 2 == 0, 400.0, 0.0)
    assert 300.0 < (t.normalized_power(seconds, watts) or 0.0) < 340.0
    assert t.srpe(7, 60.0) == 420.0
    assert t.srpe_load(7, 60.0) == pytest.approx(100.0)


def test_time_in_zones_from_max_heart_rate():
    bounds = t.zone_bounds(200.0, None)
    assert bounds == [120.0, 140.0, 160.0, 180.0]
    tt = np.arange(0, 601, 1.0)
    hr = np.concatenate([np.full(100, 110.0), np.full(200, 150.0), np.full(301, 185.0)])
    assert t.time_in_zones(tt, hr, bounds) == [100.0, 0.0, 200.0, 0.0, 300.0]
    assert t.zone_bounds(200.0, 170.0) == [144.5, 153.0, 161.5, 170.0]


def test_fitness_and_fatigue_recurrences_over_a_fixed_load_series():
    days = t.series(date(2026, 1, 1), [100.0, 0.0, 0.0])
    k42, k7 = 1 - math.exp(-1 / 42), 1 - math.exp(-1 / 7)
    assert days[0].fitness == pytest.approx(100 * k42)  # 2.3528
    assert days[0].fatigue == pytest.approx(100 * k7)  # 13.3122
    assert days[1].fitness == pytest.approx(2.29747, abs=1e-5)
    assert days[1].fatigue == pytest.approx(11.54006, abs=1e-5)
    assert days[2].form == pytest.approx(days[2].fitness - days[2].fatigue)
    assert days[0].ramp is None


def test_monotony_strain_and_ramp_over_a_week():
    loads = [50.0, 100.0, 0.0, 80.0, 60.0, 0.0, 120.0, 40.0]
    days = t.series(date(2026, 3, 2), loads)
    week = loads[:7]
    mean = sum(week) / 7
    sd = math.sqrt(sum((x - mean) ** 2 for x in week) / 7)
    assert days[6].monotony == pytest.approx(mean / sd)
    assert days[6].strain == pytest.approx(sum(week) * mean / sd)
    assert days[5].monotony is None
    assert days[7].ramp == pytest.approx(days[7].fitness - days[0].fitness)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 400), min_size=2, max_size=60), st.data())
def test_continuing_from_any_day_equals_the_whole_series(loads, data):
    whole = t.series(date(2026, 1, 1), loads)
    cut = data.draw(st.integers(1, len(loads) - 1))
    before = whole[:cut]
    rest = t.series(whole[cut].day, loads[cut:], before[-1].fitness, before[-1].fatigue, before[-7:])
    for a, b in zip(whole[cut:], rest, strict=True):
        assert a.day == b.day
        for name in ("load", "fitness", "fatigue", "form", "ramp", "acwr", "monotony", "strain"):
            x, y = getattr(a, name), getattr(b, name)
            assert (x is None) == (y is None), name
            if x is not None:
                assert x == pytest.approx(y, rel=1e-9, abs=1e-9), name


@pytest.mark.parametrize(("tz", "after", "expected"), [
    # Honolulu (UTC−10, no DST): Monday 08:00 local is Monday 18:00 UTC.
    ("Pacific/Honolulu", datetime(2026, 12, 7, 17, 0, tzinfo=UTC), datetime(2026, 12, 7, 18, 0, tzinfo=UTC)),
    # Tongatapu (UTC+13): Monday 08:00 local is Sunday 19:00 UTC.
    ("Pacific/Tongatapu", datetime(2026, 12, 6, 18, 0, tzinfo=UTC), datetime(2026, 12, 6, 19, 0, tzinfo=UTC)),
    ("Pacific/Tongatapu", datetime(2026, 12, 6, 19, 0, tzinfo=UTC), datetime(2026, 12, 13, 19, 0, tzinfo=UTC)),
    # Europe/Berlin across the spring change (29 March 2026): 08:00 CEST on Monday 30 March is 06:00 UTC,
    # where the Monday before (CET) was 07:00 UTC.
    ("Europe/Berlin", datetime(2026, 3, 23, 7, 0, tzinfo=UTC), datetime(2026, 3, 30, 6, 0, tzinfo=UTC)),
    ("Europe/Berlin", datetime(2026, 3, 22, 12, 0, tzinfo=UTC), datetime(2026, 3, 23, 7, 0, tzinfo=UTC)),
])
def test_weekly_slots_are_local_wall_time(tz, after, expected):
    slot = t.next_weekly_slot(after, tz, 0, time(8, 0))
    assert slot == expected
    assert slot.astimezone(t.ZoneInfo(tz)).time() == time(8, 0)


def test_a_slot_inside_the_spring_gap_fires_when_the_clocks_jump():
    # New York, Sunday 8 March 2026: 02:30 does not exist; the slot moves on by the jump, to 03:30 EDT.
    slot = t.next_weekly_slot(datetime(2026, 3, 7, 12, 0, tzinfo=UTC), "America/New_York", 6, time(2, 30))
    assert slot == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert slot.astimezone(t.ZoneInfo("America/New_York")).time() == time(3, 30)
