"""Segment matching and segment geometry, on synthetic rides with exactly known crossing times.

Fixtures are built here (not from a shared generator) so the truth is explicit: a rider moves along a
path at a known speed, so the time at which they pass any arc position of the path is known exactly.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from domain.algorithms import matching
from domain.algorithms.geo import from_local_xy
from domain.algorithms.matching import (
    Effort,
    densify,
    match_many,
    match_segment,
    prepare_segment,
)
from domain.algorithms.segment_geometry import (
    climb_category,
    segment_stats,
    simplify,
    simplify_indices,
    validate_segment,
)

LAT0, LON0 = 45.9, 6.1
T0 = 1_700_000_000.0
SPEED = 9.0  # m/s


# ------------------------------------------------------------------------------------------------
# Fixture helpers (local metric plane → lat/lon through the production projection's inverse)
# ------------------------------------------------------------------------------------------------

def arc_length(xy: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])


def curvy_road(length: float = 4000.0, step: float = 2.0, turn: float = 0.0) -> np.ndarray:
    """A winding road (bend radii down to ~80 m) starting at the origin, heading roughly east."""
    s = np.arange(0.0, length + step, step)
    heading = turn + 0.9 * np.sin(s / 170.0) + 0.4 * np.sin(s / 53.0 + 1.0)
    xy = np.zeros((s.shape[0], 2))
    xy[1:, 0] = np.cumsum(np.cos(heading[:-1]) * step)
    xy[1:, 1] = np.cumsum(np.sin(heading[:-1]) * step)
    return xy


def poly(*corners: tuple[float, float], spacing: float = 2.0) -> np.ndarray:
    return densify(np.array(corners, dtype=float), spacing)


def cut(path: np.ndarray, s_a: float, s_b: float, spacing: float = 25.0) -> np.ndarray:
    """The part of ``path`` between arc positions s_a and s_b, resampled like a drawn segment."""
    arc = arc_length(path)
    s = np.linspace(s_a, s_b, max(2, int(np.ceil((s_b - s_a) / spacing)) + 1))
    return np.column_stack([np.interp(s, arc, path[:, 0]), np.interp(s, arc, path[:, 1])])


def latlon(xy: np.ndarray, lat0: float = LAT0, lon0: float = LON0) -> tuple[np.ndarray, np.ndarray]:
    return from_local_xy(xy[:, 0], xy[:, 1], lat0, lon0)


def passing_time(s: float, stops: tuple[tuple[float, float], ...] = (), speed: float = SPEED) -> float:
    """Exact epoch time at which the rider passes arc position s."""
    return T0 + s / speed + sum(d for at, d in stops if at < s)


def ride(path: np.ndarray, *, dt: float = 1.0, phase: float = 0.37, speed: float = SPEED,
         stops: tuple[tuple[float, float], ...] = (), noise: float = 0.0, seed: int = 0,
         lat0: float = LAT0, lon0: float = LON0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Record a ride along ``path`` every ``dt`` s (first fix ``phase`` s after T0), with stops
    (arc position, duration) and optional uniform ±noise metres on each axis."""
    arc = arc_length(path)
    knots_s, knots_t = [0.0], [0.0]
    for at, dur in sorted(stops):
        arrive = passing_time(at, stops, speed) - T0  # excludes this stop (strict < in passing_time)
        knots_s += [at, at]
        knots_t += [arrive, arrive + dur]
    knots_s.append(arc[-1])
    knots_t.append(passing_time(arc[-1], stops, speed) - T0)
    t = np.arange(phase, knots_t[-1], dt)
    s = np.interp(t, knots_t, knots_s)
    xy = np.column_stack([np.interp(s, arc, path[:, 0]), np.interp(s, arc, path[:, 1])])
    if noise:
        xy = xy + np.random.default_rng(seed).uniform(-noise, noise, xy.shape)
    lat, lon = latlon(xy, lat0, lon0)
    return T0 + t, lat, lon


def match(track: tuple[np.ndarray, np.ndarray, np.ndarray], seg_xy: np.ndarray,
          lat0: float = LAT0, lon0: float = LON0, **kw: object) -> list[Effort]:
    seg_lat, seg_lon = latlon(seg_xy, lat0, lon0)
    return match_segment(*track, seg_lat, seg_lon, **kw)


def assert_brackets(effort: Effort, time: np.ndarray) -> None:
    assert time[effort.start_index] <= effort.start_time <= time[effort.start_index + 1]
    assert time[effort.end_index - 1] <= effort.end_time <= time[effort.end_index]


ROAD = curvy_road()
S_A, S_B = 800.0, 3000.0
SEGMENT = cut(ROAD, S_A, S_B)


# ------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("dt", "tol"), [(1.0, 0.5), (5.0, 2.0)])
def test_crossing_times_are_interpolated(dt, tol):
    for phase in (0.0, 0.37, 0.81 * dt):
        track = ride(ROAD, dt=dt, phase=phase)
        efforts = match(track, SEGMENT)
        assert len(efforts) == 1
        e = efforts[0]
        assert abs(e.start_time - passing_time(S_A)) < tol
        assert abs(e.end_time - passing_time(S_B)) < tol
        assert e.elapsed_time_s == pytest.approx(e.end_time - e.start_time)
        assert e.moving_time_s == pytest.approx(e.elapsed_time_s, abs=0.01)
        assert_brackets(e, track[0])
        assert e.quality > 0.8


def test_1hz_timing_is_much_better_than_nearest_point():
    track = ride(ROAD, dt=1.0, phase=0.5)  # truth falls half-way between two fixes
    e = match(track, SEGMENT)[0]
    assert abs(e.start_time - passing_time(S_A)) < 0.1
    assert abs(e.end_time - passing_time(S_B)) < 0.1


@pytest.mark.parametrize("dt", [1.0, 5.0])
def test_noisy_tracks_still_match(dt):
    for seed in range(4):
        track = ride(ROAD, dt=dt, noise=10.0, seed=seed)
        efforts = match(track, SEGMENT)
        assert len(efforts) == 1, f"seed {seed}"
        e = efforts[0]
        # ±10 m along the road at 9 m/s is ±1.1 s, plus the sampling interpolation error.
        assert abs(e.start_time - passing_time(S_A)) < 1.5 + dt / 2
        assert abs(e.end_time - passing_time(S_B)) < 1.5 + dt / 2


def test_moving_time_excludes_a_stop():
    stops = ((1900.0, 60.0),)
    track = ride(ROAD, stops=stops)
    e = match(track, SEGMENT)[0]
    assert abs(e.start_time - passing_time(S_A, stops)) < 0.5
    assert abs(e.end_time - passing_time(S_B, stops)) < 0.5
    assert e.elapsed_time_s == pytest.approx((S_B - S_A) / SPEED + 60.0, abs=1.0)
    assert e.moving_time_s == pytest.approx((S_B - S_A) / SPEED, abs=1.5)


def test_moving_flags_override_speed():
    track = ride(ROAD)
    moving = np.ones(track[0].shape[0], dtype=bool)
    stopped = (track[0] > passing_time(1500.0)) & (track[0] <= passing_time(1500.0) + 30.0)
    moving[stopped] = False
    e = match(track, SEGMENT, moving=moving)[0]
    assert e.moving_time_s == pytest.approx(e.elapsed_time_s - 30.0, abs=1.0)


def test_missing_positions_are_skipped_and_indices_refer_to_input():
    time, lat, lon = ride(ROAD)
    lat, lon = lat.copy(), lon.copy()
    gap = slice(150, 160)  # inside the segment (arc ~1350-1440 m)
    lat[gap] = np.nan
    lon[gap] = np.nan
    e = match((time, lat, lon), SEGMENT)[0]
    assert abs(e.start_time - passing_time(S_A)) < 0.5
    assert np.isfinite(lat[e.start_index]) and np.isfinite(lat[e.end_index])
    assert_brackets(e, time)


# ------------------------------------------------------------------------------------------------
# Geometry rules
# ------------------------------------------------------------------------------------------------

def test_reverse_direction_does_not_match():
    assert match(ride(ROAD[::-1].copy()), SEGMENT) == []
    assert match(ride(ROAD[::-1].copy(), dt=5.0), SEGMENT) == []


def test_track_starting_mid_segment_does_not_match():
    arc = arc_length(ROAD)
    assert match(ride(ROAD[arc >= 1500.0]), SEGMENT) == []


def test_track_ending_mid_segment_does_not_match():
    arc = arc_length(ROAD)
    assert match(ride(ROAD[arc <= 2500.0]), SEGMENT) == []


def _with_side_trip(path: np.ndarray, at: float, out: float) -> np.ndarray:
    arc = arc_length(path)
    i = int(np.searchsorted(arc, at))
    tangent = path[i + 1] - path[i]
    normal = np.array([-tangent[1], tangent[0]]) / np.hypot(*tangent)
    spur = densify(np.array([path[i], path[i] + out * normal, path[i]]), 2.0)
    return np.vstack([path[:i], spur, path[i + 1:]])


@pytest.mark.parametrize("dt", [1.0, 5.0])
def test_detour_does_not_match(dt):
    track = ride(_with_side_trip(ROAD, 1900.0, 200.0), dt=dt)
    assert match(track, SEGMENT) == []


def test_short_wobble_inside_the_corridor_still_matches():
    # 20 m off the road and back (a car park entrance) is not a detour.
    track = ride(_with_side_trip(ROAD, 1900.0, 20.0))
    assert len(match(track, SEGMENT)) == 1


# A road with a switchback: 300 m up one leg, 50 m across, 300 m back down the other leg (the legs
# are closer than two corridors, so near the bottom the segment is near both legs of the track).
U_ROAD = poly((0, 0), (600, 0), (600, 300), (650, 300), (650, 0), (1250, 0))
U_SEGMENT = cut(U_ROAD, 100.0, arc_length(U_ROAD)[-1] - 100.0)
U_SHORTCUT = poly((0, 0), (600, 0), (650, 0), (1250, 0))


@pytest.mark.parametrize("dt", [1.0, 5.0])
def test_switchback_ridden_in_full_matches(dt):
    efforts = match(ride(U_ROAD, dt=dt), U_SEGMENT)
    assert len(efforts) == 1
    assert abs(efforts[0].end_time - passing_time(arc_length(U_ROAD)[-1] - 100.0)) < (0.5 if dt == 1 else 2)


def test_switchback_ridden_in_full_with_noise_matches():
    for seed in range(4):
        assert len(match(ride(U_ROAD, noise=10.0, seed=seed), U_SEGMENT)) == 1


@pytest.mark.parametrize("dt", [1.0, 5.0])
def test_shortcut_across_switchback_does_not_match(dt):
    # Every point of the shortcut is within the corridor of the segment: only the ordered coverage
    # of the segment's samples can reject it.
    assert match(ride(U_SHORTCUT, dt=dt), U_SEGMENT) == []


# ------------------------------------------------------------------------------------------------
# Laps
# ------------------------------------------------------------------------------------------------

R_LOOP = 300.0
C_LOOP = 2 * np.pi * R_LOOP


def _loop_path(laps: float) -> np.ndarray:
    theta = np.arange(0.0, laps * 2 * np.pi, 2.0 / R_LOOP)
    return np.column_stack([R_LOOP * np.sin(theta), R_LOOP - R_LOOP * np.cos(theta)])


@pytest.mark.parametrize("dt", [1.0, 5.0])
def test_loop_ridden_three_times_gives_three_efforts(dt):
    path = _loop_path(3.3)
    track = ride(path, dt=dt)
    segment = cut(_loop_path(1.0), 200.0, 1400.0)
    efforts = match(track, segment)
    assert len(efforts) == 3
    for lap, e in enumerate(efforts):
        assert abs(e.start_time - passing_time(200.0 + lap * C_LOOP)) < dt / 2
        assert abs(e.end_time - passing_time(1400.0 + lap * C_LOOP)) < dt / 2
    assert all(a.end_time <= b.start_time for a, b in itertools.pairwise(efforts))


def test_closed_loop_segment_gives_one_effort_per_lap():
    track = ride(_loop_path(3.3))
    full_lap = cut(_loop_path(2.0), 200.0, 200.0 + C_LOOP)  # ends where it starts
    efforts = match(track, full_lap)
    assert len(efforts) == 3
    for lap, e in enumerate(efforts):
        assert abs(e.start_time - passing_time(200.0 + lap * C_LOOP)) < 0.5
        assert abs(e.elapsed_time_s - C_LOOP / SPEED) < 1.0


def test_loop_ridden_out_of_order_does_not_match():
    # Over the start line of a full-lap segment, U-turn, ride the lap backwards, U-turn again and
    # cross the finish forwards: every point is on the loop and every part of the loop is covered,
    # but in the wrong order.
    s = np.concatenate([np.arange(0.0, 220.0, 2.0), np.arange(220.0, 180.0 - C_LOOP, -2.0),
                        np.arange(180.0 - C_LOOP, 260.0 - C_LOOP, 2.0)])
    path = np.column_stack([R_LOOP * np.sin(s / R_LOOP), R_LOOP - R_LOOP * np.cos(s / R_LOOP)])
    full_lap = cut(_loop_path(2.0), 200.0, 200.0 + C_LOOP)
    assert match(ride(path), full_lap) == []
    assert match(ride(path, dt=5.0), full_lap) == []


def test_jitter_on_the_start_line_times_from_the_last_crossing():
    # The rider rolls 8 m over the line, backs up to 12 m before it, waits 20 s, then starts for real.
    # ROAD has a vertex every 2 m, so vertex 400 is the segment start (arc 800 m).
    i = 400
    assert arc_length(ROAD)[i] == pytest.approx(S_A)
    hesitate = np.vstack([ROAD[: i + 5], ROAD[i + 3: i - 7: -1], ROAD[i - 5:]])
    # Along this path: over the line at 800, back over it at 816, at the turn (788 on the road) at
    # 828, over it for real at 840.
    stops = ((828.0, 20.0),)
    track = ride(hesitate, stops=stops)
    efforts = match(track, SEGMENT)
    assert len(efforts) == 1
    assert abs(efforts[0].start_time - passing_time(840.0, stops)) < 0.5


# ------------------------------------------------------------------------------------------------
# Awkward places
# ------------------------------------------------------------------------------------------------

def test_segment_across_the_antimeridian():
    lat0, lon0 = -17.0, 179.985
    road = curvy_road(3000.0, turn=0.0)
    seg = cut(road, 400.0, 2600.0)
    seg_lat, seg_lon = latlon(seg, lat0, lon0)
    assert seg_lon[0] > 179.0 and seg_lon[-1] < -179.0  # the fixture does cross it
    for dt in (1.0, 5.0):
        track = ride(road, dt=dt, lat0=lat0, lon0=lon0)
        efforts = match_segment(*track, seg_lat, seg_lon)
        assert len(efforts) == 1
        assert abs(efforts[0].start_time - passing_time(400.0)) < dt / 2
        assert abs(efforts[0].end_time - passing_time(2600.0)) < dt / 2
        found = match_many(*track, [prepare_segment(seg_lat, seg_lon, "dateline")])
        assert list(found) == ["dateline"]
    reverse = ride(road[::-1].copy(), lat0=lat0, lon0=lon0)
    assert match_segment(*reverse, seg_lat, seg_lon) == []


@pytest.mark.parametrize("lat0", [80.0, -80.0])
def test_segment_at_high_latitude(lat0):
    efforts = match(ride(ROAD, lat0=lat0), SEGMENT, lat0=lat0)
    assert len(efforts) == 1
    assert abs(efforts[0].start_time - passing_time(S_A)) < 0.5
    assert abs(efforts[0].end_time - passing_time(S_B)) < 0.5
    assert match(ride(U_SHORTCUT, lat0=lat0), U_SEGMENT, lat0=lat0) == []


# ------------------------------------------------------------------------------------------------
# Many segments at once
# ------------------------------------------------------------------------------------------------

def test_match_many_finds_exactly_the_segments_ridden():
    track = ride(ROAD, noise=5.0)

    def prep(xy: np.ndarray, sid: str) -> object:
        return prepare_segment(*latlon(xy), sid)

    parallel = SEGMENT + np.array([0.0, 90.0])  # a road 90 m north
    prepared = [
        prep(SEGMENT, "on"),
        prep(cut(ROAD, 100.0, 700.0), "early"),
        prep(SEGMENT[::-1].copy(), "reverse"),
        prep(parallel, "parallel"),
        prep(SEGMENT + np.array([5000.0, 0.0]), "far"),
        prep(np.vstack([cut(ROAD, 2000.0, 2500.0), [[cut(ROAD, 2000.0, 2500.0)[-1, 0], 400.0]]]), "turns_off"),
    ]
    found = match_many(*track, prepared)
    assert sorted(found) == ["early", "on"]
    assert len(found["on"]) == 1
    assert abs(found["on"][0].start_time - passing_time(S_A)) < 1.5
    assert found["on"][0] == match(track, SEGMENT)[0]


def test_match_many_with_a_degenerate_track():
    prepared = [prepare_segment(*latlon(SEGMENT), 1)]
    assert match_many(np.array([T0]), np.array([LAT0]), np.array([LON0]), prepared) == {}
    assert match_many(np.zeros(0), np.zeros(0), np.zeros(0), prepared) == {}
    assert match_many(*ride(ROAD), []) == {}


# ------------------------------------------------------------------------------------------------
# The fast certificate and the exact test agree
# ------------------------------------------------------------------------------------------------

def _scenarios() -> list[tuple[str, tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]]:
    arc = arc_length(ROAD)
    s = np.concatenate([np.arange(0.0, 220.0, 2.0), np.arange(220.0, 180.0 - C_LOOP, -2.0),
                        np.arange(180.0 - C_LOOP, 260.0 - C_LOOP, 2.0)])
    backwards_lap = np.column_stack([R_LOOP * np.sin(s / R_LOOP), R_LOOP - R_LOOP * np.cos(s / R_LOOP)])
    full_lap = cut(_loop_path(2.0), 200.0, 200.0 + C_LOOP)
    # A switchback with legs only 30 m apart, cut by a 10 s recording: one 90 m step jumps the
    # mouth, with both its ends close to the segment. (The road then turns north so that the U
    # lies inside the ride's bounding box, and between the coarse checkpoints.)
    narrow = poly((0, 0), (1300, 0), (1300, 300), (1330, 300), (1330, 0), (2530, 0), (2530, 700))
    narrow_cut = poly((0, 0), (1300, 0), (1330, 0), (2530, 0), (2530, 700))
    return [
        ("road", ride(ROAD, noise=10.0, seed=7), SEGMENT),
        ("road 5 s", ride(ROAD, dt=5.0, noise=10.0, seed=8), SEGMENT),
        ("switchback", ride(U_ROAD, noise=10.0, seed=9), U_SEGMENT),
        ("laps", ride(_loop_path(3.3), noise=5.0), cut(_loop_path(1.0), 200.0, 1400.0)),
        ("stop", ride(ROAD, stops=((1900.0, 60.0),)), SEGMENT),
        ("mid start", ride(ROAD[arc >= 1500.0]), SEGMENT),
        ("shortcut", ride(U_SHORTCUT, noise=5.0), U_SEGMENT),
        ("shortcut 5 s", ride(U_SHORTCUT, dt=5.0), U_SEGMENT),
        ("one-step shortcut", ride(narrow_cut, dt=10.0, phase=2.2), cut(narrow, 100.0, 3730.0)),
        ("detour", ride(_with_side_trip(ROAD, 1900.0, 200.0), dt=5.0), SEGMENT),
        ("out of order", ride(backwards_lap), full_lap),
    ]


@pytest.mark.parametrize("case", range(11))
def test_exact_test_alone_gives_the_same_efforts(case, monkeypatch):
    name, track, seg = _scenarios()[case]
    with_certificate = match(track, seg)
    monkeypatch.setattr(matching, "_certify", lambda *a, **k: {})
    exact_only = match(track, seg)
    assert [(e.start_index, e.end_index, e.start_time, e.end_time) for e in with_certificate] == \
        [(e.start_index, e.end_index, e.start_time, e.end_time) for e in exact_only], name
    expected = {"road": 1, "road 5 s": 1, "switchback": 1, "laps": 3, "stop": 1}.get(name, 0)
    assert len(exact_only) == expected, name


@pytest.mark.parametrize("case", range(11))
def test_certificate_alone_never_accepts_a_bad_ride(case, monkeypatch):
    # With the exact test always saying no, only the certificate can accept: it must accept the
    # ordinary rides here and nothing else.
    name, track, seg = _scenarios()[case]
    monkeypatch.setattr(matching, "_check",
                        lambda *a, **k: (matching._Verdict.NOT_FOLLOWED, (np.nan, np.nan)))
    expected = {"road": 1, "road 5 s": 1, "switchback": 1, "laps": 3, "stop": 1}.get(name, 0)
    assert len(match(track, seg)) == expected, name


# ------------------------------------------------------------------------------------------------
# Segment geometry
# ------------------------------------------------------------------------------------------------

def _north_line(length: float, spacing: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(0.0, length + spacing / 2, spacing)
    return latlon(np.column_stack([np.zeros_like(y), y]))


@pytest.mark.parametrize(
    ("xy", "message"),
    [
        (np.array([[0.0, 0.0]]), "at least 2 points"),
        (np.array([[0.0, 0.0], [50.0, 0.0]]), "at least 100 m"),
        (np.array([[0.0, 0.0], [0.0, 4000.0 * 30]]), "km apart"),
        (np.column_stack([np.zeros(31), np.arange(31) * 4000.0]), "at most 100 km"),
    ],
)
def test_validate_segment_rejects(xy, message):
    with pytest.raises(ValueError, match=message):
        validate_segment(*latlon(xy))


def test_validate_segment_rejects_nan_and_accepts_a_road():
    lat, lon = latlon(SEGMENT)
    validate_segment(lat, lon)
    lat = lat.copy()
    lat[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        validate_segment(lat, lon)
    with pytest.raises(ValueError, match="same length"):
        validate_segment(lat[:-1], lon)


def test_segment_stats_of_a_steady_climb():
    lat, lon = _north_line(2100.0)
    ele = np.linspace(500.0, 668.0, lat.shape[0])
    st = segment_stats(lat, lon, ele)
    assert st.distance_m == pytest.approx(2100.0, rel=0.003)
    assert st.elevation_gain_m == pytest.approx(168.0, abs=0.5)
    assert st.avg_grade_pct == pytest.approx(8.0, abs=0.05)
    assert st.max_grade_pct == pytest.approx(8.0, abs=0.1)
    assert st.climb_category == "3"  # 2100 × 8 = 16 800
    assert st.start_latlng == (lat[0], lon[0])
    assert st.end_latlng == (lat[-1], lon[-1])
    assert st.bounds == (lat.min(), lon.min(), lat.max(), lon.max())


def test_max_grade_ignores_elevation_noise():
    lat, lon = _north_line(2000.0)
    ele = np.linspace(500.0, 560.0, lat.shape[0]) + np.random.default_rng(1).uniform(-2, 2, lat.shape[0])
    st = segment_stats(lat, lon, ele)
    assert 2.0 < st.max_grade_pct < 8.0  # true grade 3 %; ±2 m per 5 m would read as ±80 %
    assert st.avg_grade_pct == pytest.approx(3.0, abs=0.25)


def test_max_grade_finds_a_steep_ramp():
    lat, lon = _north_line(2000.0)
    y = np.linspace(0.0, 2000.0, lat.shape[0])
    ele = 100.0 + np.clip(y - 1000.0, 0.0, 200.0) * 0.15  # flat, then 200 m at 15 %, then flat
    st = segment_stats(lat, lon, ele)
    assert st.max_grade_pct == pytest.approx(15.0, abs=0.3)
    assert st.avg_grade_pct == pytest.approx(1.5, abs=0.05)
    assert st.climb_category is None  # grade below 3 %


def test_segment_stats_without_elevation():
    st = segment_stats(*latlon(SEGMENT))
    assert st.elevation_gain_m is None and st.avg_grade_pct is None and st.max_grade_pct is None
    assert st.climb_category is None
    assert st.distance_m == pytest.approx(S_B - S_A, rel=0.01)


def test_segment_bounds_across_the_antimeridian():
    lat, lon = latlon(np.array([[0.0, 0.0], [2000.0, 100.0]]), -17.0, 179.99)
    st = segment_stats(lat, lon)
    min_lat, min_lon, max_lat, max_lon = st.bounds
    assert min_lon == pytest.approx(179.99) and max_lon < -179.99 + 0.02
    assert min_lat < max_lat


@pytest.mark.parametrize(
    ("distance", "grade", "category"),
    [(10_000.0, 8.0, "HC"), (8_000.0, 8.0, "1"), (8_000.0, 4.0, "2"), (4_000.0, 4.0, "3"),
     (2_000.0, 4.0, "4"), (1_000.0, 7.9, None), (20_000.0, 2.9, None), (3_000.0, -6.0, None)],
)
def test_climb_category(distance, grade, category):
    assert climb_category(distance, grade) == category


def test_simplify_keeps_shape_within_tolerance():
    rng = np.random.default_rng(3)
    xy = ROAD + rng.uniform(-0.5, 0.5, ROAD.shape)
    lat, lon = latlon(xy)
    s_lat, s_lon = simplify(lat, lon, 3.0)
    assert 10 < s_lat.shape[0] < lat.shape[0] // 5
    assert (s_lat[0], s_lon[0], s_lat[-1], s_lon[-1]) == (lat[0], lon[0], lat[-1], lon[-1])
    # Every original vertex is within the tolerance of the simplified polyline.
    from scipy.spatial import cKDTree

    from domain.algorithms.geo import to_local_xy
    sx, sy = to_local_xy(s_lat, s_lon, LAT0, LON0)
    ox, oy = to_local_xy(lat, lon, LAT0, LON0)
    d, _ = cKDTree(densify(np.column_stack([sx, sy]), 0.2)).query(np.column_stack([ox, oy]))
    assert d.max() <= 3.0 + 0.1


def test_simplify_straight_line_and_out_and_back():
    lat, lon = _north_line(1000.0)
    assert simplify_indices(lat, lon, 1.0).tolist() == [0, lat.shape[0] - 1]
    there_and_back = poly((0, 0), (0, 500), (0, 0), spacing=5.0)
    idx = simplify_indices(*latlon(there_and_back), 1.0)
    assert idx.shape[0] == 3  # the turnaround survives



def _douglas_peucker(x: list[float], y: list[float], i: int, j: int, tolerance: float, keep: set[int]) -> None:
    """Textbook recursive Douglas–Peucker to the chord segment, one point at a time: the reference."""
    best, best_d = -1, -1.0
    dx, dy = x[j] - x[i], y[j] - y[i]
    len2 = dx * dx + dy * dy
    for k in range(i + 1, j):
        t = 0.0 if len2 == 0.0 else min(1.0, max(0.0, ((x[k] - x[i]) * dx + (y[k] - y[i]) * dy) / len2))
        d = float(np.hypot(x[k] - (x[i] + t * dx), y[k] - (y[i] + t * dy)))
        if d > best_d:  # the first farthest point wins a tie
            best, best_d = k, d
    if best >= 0 and best_d > tolerance:
        keep.add(best)
        _douglas_peucker(x, y, i, best, tolerance, keep)
        _douglas_peucker(x, y, best, j, tolerance, keep)


@pytest.mark.parametrize("seed", range(12))
def test_simplify_keeps_what_recursive_douglas_peucker_keeps(seed):
    from domain.algorithms.geo import to_local_xy
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 1500))
    walk = rng.normal(0.0, 1e-4, (n, 2)).cumsum(axis=0)
    if seed % 3 == 0:
        walk = np.round(walk, 5)  # repeated points and equal distances: ties and zero-length chords
    lat, lon = LAT0 + walk[:, 0], LON0 + walk[:, 1]
    tolerance = float(rng.choice([0.5, 2.0, 5.0, 20.0]))
    x, y = to_local_xy(lat, lon, float(lat[0]), float(lon[0]))
    keep = {0, n - 1}
    _douglas_peucker(x.tolist(), y.tolist(), 0, n - 1, tolerance, keep)
    assert simplify_indices(lat, lon, tolerance).tolist() == sorted(keep)

def test_segments_restored_from_stored_keys_are_the_same_segments():
    parallel = SEGMENT + np.array([0.0, 90.0])
    shapes = [SEGMENT, cut(ROAD, 100.0, 700.0), SEGMENT[::-1].copy(), parallel, SEGMENT + np.array([5000.0, 0.0])]
    paths = [latlon(xy) for xy in shapes]
    ids = ["on", "early", "reverse", "parallel", "far"]
    fresh = matching.prepare_segments(paths, ids)
    blobs: list[bytes | None] = [matching.pack_segment(seg) for seg in fresh]
    assert all(len(b) == len(blobs[0]) < 300 for b in blobs if b)  # not proportional to the length
    blobs[3] = None  # not stored yet: prepared from its path
    blobs[4] = b"\0" * len(blobs[0])  # from another version of the preparation: prepared from its path
    # As the segments stage does: a segment with current stored keys is completed from its path, the others are
    # prepared from theirs.
    keys = matching.unpack_keys(ids, blobs)
    stale = [i for i, k in enumerate(keys) if k is None]
    assert stale == [3, 4]
    completed = iter(matching.complete_segments([k for k in keys if k is not None],
                                                [p for p, k in zip(paths, keys, strict=True) if k is not None]))
    prepared = iter(matching.prepare_segments([paths[i] for i in stale], [ids[i] for i in stale]))
    restored = [next(prepared) if k is None else next(completed) for k in keys]
    for a, b in zip(fresh, restored, strict=True):
        assert (a.segment_id, a.lat0, a.lon0, a.length_m) == (b.segment_id, b.lat0, b.lon0, b.length_m)
        for name in ("vertices", "gates", "gate_dirs", "checkpoints", "box", "samples", "arc", "samples_ecef",
                     "arc_ecef", "anchors"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
    track = ride(ROAD, noise=5.0)
    assert match_many(*track, restored) == match_many(*track, fresh)
    assert not matching.is_current_pack(blobs[4]) and matching.is_current_pack(blobs[0])


def test_segments_given_by_their_keys_get_their_path_only_when_they_cross_both_gates():
    parallel = SEGMENT + np.array([0.0, 90.0])
    shapes = [SEGMENT, cut(ROAD, 100.0, 700.0), SEGMENT[::-1].copy(), parallel, cut(ROAD, 2500.0, 3400.0),
              SEGMENT + np.array([5000.0, 0.0])]
    ids = ["on", "early", "reverse", "parallel", "later", "far"]
    paths = dict(zip(ids, (latlon(xy) for xy in shapes), strict=True))
    fresh = matching.prepare_segments(list(paths.values()), ids)
    keys = matching.unpack_keys(ids, [matching.pack_segment(seg) for seg in fresh])
    assert all(type(k) is matching.SegmentKeys for k in keys)
    track = ride(cut(ROAD, 50.0, 3300.0, spacing=2.0), noise=5.0)  # "on" and "early", not all of "later"
    prepared = matching.prepare_track(*track)
    asked: list[list[object]] = []

    def complete(some: list[matching.SegmentKeys]) -> list[matching.PreparedSegment | None]:
        asked.append([k.segment_id for k in some])
        return matching.complete_segments(some, [paths[str(k.segment_id)] for k in some])

    found = matching.match_many_prepared(prepared, keys, complete=complete)
    assert found == matching.match_many_prepared(prepared, fresh)
    assert set(found) == {"on", "early"}
    # One call, for the segments crossing both gates only: not the reversed, parallel, unridden or far ones.
    assert asked == [["early", "on"]] or asked == [["on", "early"]]

    # Whole segments are used as they are; a segment `complete` leaves out (None) is not matched.
    assert matching.match_many_prepared(prepared, [fresh[0], *keys[1:]], complete=lambda some: [None] * len(some)
                                        ) == {"on": found["on"]}
    with pytest.raises(ValueError, match="complete"):
        matching.match_many_prepared(prepared, keys)
    assert matching.match_many_prepared(prepared, keys[5:]) == {}  # rejected on its keys: no path needed


@pytest.mark.parametrize("seed", range(6))
def test_running_sums_of_many_segments_are_those_of_each_alone(seed):
    rng = np.random.default_rng(seed)
    # Short and long runs mixed (the grouping by length), single points included.
    count = rng.integers(1, 3000 if seed % 2 else 12, int(rng.integers(1, 40)))
    first = np.cumsum(count) - count
    step = rng.random(int(count.sum())) * 10.0
    sums = matching._running_sums(step, first, count)
    for got, lo, k in zip(sums, first.tolist(), count.tolist(), strict=True):
        assert np.array_equal(got, np.concatenate([[0.0], np.cumsum(step[lo:lo + k - 1])]))
