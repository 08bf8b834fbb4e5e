"""Sleep from phone use, and one night counted once, on hand-made nights."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.algorithms.sleep import Night, counted_sessions, estimate_sleep


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 12, day, hh, mm, tzinfo=UTC)


WINDOW = (at(4, 20), at(5, 12))
EVENING = [(at(4, 21), "screen_on"), (at(4, 21, 30), "screen_off"), (at(4, 22, 50), "unlock"),
           (at(4, 23, 5), "screen_off")]
MORNING = [(at(5, 6, 45), "unlock"), (at(5, 7), "screen_off")]


def test_longest_inactivity_between_putting_the_phone_down_and_picking_it_up():
    est = estimate_sleep(EVENING + MORNING, *WINDOW)
    assert est is not None
    assert est.start == at(4, 23, 15)  # 23:05 + 10 min to fall asleep
    assert est.end == at(5, 6, 45)
    assert est.uncertainty_min == 25 and est.confidence == 0.9 and est.interruptions == 0


def test_events_in_any_order_give_the_same_estimate():
    assert estimate_sleep(list(reversed(EVENING + MORNING)), *WINDOW) == estimate_sleep(EVENING + MORNING, *WINDOW)


def test_a_glance_at_the_clock_does_not_end_the_night():
    glance = [(at(5, 3), "screen_on"), (at(5, 3, 1), "screen_off")]
    est = estimate_sleep(EVENING + glance + MORNING, *WINDOW)
    assert est is not None and est.start == at(4, 23, 15) and est.end == at(5, 6, 45)
    assert est.interruptions == 1 and est.confidence == 0.85


def test_late_events_move_the_estimate():
    awake = [(at(5, 2), "unlock"), (at(5, 2, 30), "screen_off")]
    est = estimate_sleep(EVENING + awake + MORNING, *WINDOW)
    # 23:05–02:00 is under 3 h; 02:30–06:45 is the main period
    assert est is not None and est.start == at(5, 2, 40) and est.end == at(5, 6, 45)


def test_no_events_or_no_plausible_gap_is_no_estimate():
    assert estimate_sleep([], *WINDOW) is None
    busy = [(at(4, 20) + timedelta(hours=h), kind) for h in range(16) for kind in ("screen_on",)]
    assert estimate_sleep(busy, *WINDOW) is None


def test_an_edge_bounded_only_by_the_window_lowers_confidence():
    est = estimate_sleep(EVENING, *WINDOW)  # never picked up again before noon
    assert est is not None and est.end == at(5, 12) and est.confidence < 0.5


def test_one_night_counted_once_device_over_manual_over_estimated():
    sessions = [Night(1, "healthkit", at(4, 23), at(5, 7)), Night(2, "manual", at(4, 23, 30), at(5, 6, 30)),
                Night(3, "estimated", at(4, 23, 15), at(5, 6, 45)), Night(4, "manual", at(5, 14), at(5, 15))]
    assert counted_sessions(sessions) == {1, 4}
    assert counted_sessions(sessions[1:]) == {2, 4}
    assert counted_sessions(sessions[2:]) == {3, 4}
