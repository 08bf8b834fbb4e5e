"""Known-truth tests for activity metrics: every expected figure is derived independently of the code."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.algorithms.geo import (
    EARTH_RADIUS_M,
    bounds,
    bridged_distance,
    haversine_m,
    hop_distances,
    running_total,
)
from domain.algorithms.metrics import (
    MILE_M,
    best_efforts,
    compute_metrics,
    derived_streams,
    hysteresis_gain_loss,
    resample_indices,
    rounded_figures,
    smooth_by_time,
    sport_family,
)
from domain.algorithms.track import Track
from tests.support.synthetic import synthetic_track, track_along

LAT0, LON0 = 46.0, 14.5
T0 = 1_700_000_000.0


def meridian_lat(metres: float) -> float:
    """Latitude ``metres`` north of LAT0 along the meridian (haversine is exact and additive there)."""
    return LAT0 + math.degrees(metres / EARTH_RADIUS_M)


def straight_run(length_m: float, speed: float, interval_s: float = 1.0) -> Track:
    track, _ = track_along([LAT0, meridian_lat(length_m)], [LON0, LON0], speed, seed=0,
                           interval_s=interval_s, noise_m=0.0, start_time=T0)
    return track


def meridian_track(dist_m: np.ndarray, times: np.ndarray, **columns: object) -> Track:
    lat = LAT0 + np.degrees(np.asarray(dist_m) / EARTH_RADIUS_M)
    return Track.from_columns(time=times, lat=lat, lon=np.full(len(times), LON0), **columns)


# ------------------------------------------------------------------------------------------------
# Straight line at constant speed
# ------------------------------------------------------------------------------------------------


def test_straight_line_constant_speed_totals():
    m = compute_metrics(straight_run(5200.0, 2.5), sport="running")
    assert m.distance_m == pytest.approx(5200.0, abs=1e-6)
    assert m.elapsed_time_s == pytest.approx(5200.0 / 2.5, abs=1e-6)
    assert m.moving_time_s == pytest.approx(m.elapsed_time_s, abs=1e-6)
    assert m.avg_speed_mps == pytest.approx(2.5, rel=1e-9)
    assert m.max_speed_mps == pytest.approx(2.5, rel=1e-6)
    assert m.start_latlng == pytest.approx((LAT0, LON0))
    assert m.end_latlng == pytest.approx((meridian_lat(5200.0), LON0))
    assert m.bounds == pytest.approx((LAT0, LON0, meridian_lat(5200.0), LON0))
    assert m.elevation_gain_m is None  # no altitude recorded


def test_straight_line_splits_are_interpolated_exactly():
    m = compute_metrics(straight_run(5200.0, 2.5))
    km = m.splits_metric
    assert [s["split"] for s in km] == [1, 2, 3, 4, 5, 6]
    for s in km[:5]:
        assert s["distance_m"] == pytest.approx(1000.0, abs=1e-6)
        assert s["elapsed_time_s"] == pytest.approx(400.0, abs=1e-6)  # crossing at fractional seconds
        assert s["moving_time_s"] == pytest.approx(400.0, abs=1e-6)
        assert s["avg_speed_mps"] == pytest.approx(2.5, rel=1e-9)
        assert s["avg_hr"] is not None
        assert s["elevation_difference_m"] is None
    assert km[5]["distance_m"] == pytest.approx(200.0, abs=1e-6)
    assert km[5]["elapsed_time_s"] == pytest.approx(80.0, abs=1e-6)

    miles = m.splits_standard
    assert len(miles) == 4  # 3 full miles (4828 m) + 372 m
    for s in miles[:3]:
        assert s["distance_m"] == pytest.approx(MILE_M, abs=1e-6)
        assert s["elapsed_time_s"] == pytest.approx(MILE_M / 2.5, abs=1e-6)
    assert miles[3]["distance_m"] == pytest.approx(5200.0 - 3 * MILE_M, abs=1e-6)
    assert sum(s["elapsed_time_s"] for s in miles) == pytest.approx(m.elapsed_time_s, abs=1e-6)


def test_best_efforts_on_constant_pace_equal_distance_over_speed():
    m = compute_metrics(straight_run(10_500.0, 3.2, interval_s=3.0), sport="running")
    got = {e["name"]: e for e in m.best_efforts}
    assert set(got) == {"400m", "1k", "1 mile", "5k", "10k"}  # no half marathon in 10.5 km
    for e in got.values():
        assert e["elapsed_time_s"] == pytest.approx(e["distance_m"] / 3.2, abs=1e-6)
        assert 0 <= e["start_index"] < e["end_index"]


def test_best_efforts_only_for_runs():
    track = straight_run(2000.0, 3.0)
    assert compute_metrics(track, sport="cycling").best_efforts == []
    assert compute_metrics(track, sport="running").best_efforts


def test_best_effort_finds_the_fast_stretch_and_skips_a_pause():
    # 2 km at 2 m/s, a 5 min stop, 1 km at 4 m/s, 1 km at 2 m/s.
    d = np.concatenate([np.arange(0, 2000, 2.0), np.full(300, 2000.0), 2000 + np.arange(4, 1001, 4.0),
                        3000 + np.arange(2, 1001, 2.0)])
    t = T0 + np.arange(d.shape[0], dtype=float)
    m = compute_metrics(meridian_track(d, t), sport="running")
    got = {e["name"]: e for e in m.best_efforts}
    assert got["1k"]["elapsed_time_s"] == pytest.approx(250.0, abs=1e-6)
    assert got["400m"]["elapsed_time_s"] == pytest.approx(100.0, abs=1e-6)
    # 1 mile: the 1 km at 4 m/s plus 609.344 m at 2 m/s on the side that avoids the stop.
    assert got["1 mile"]["elapsed_time_s"] == pytest.approx(250.0 + 609.344 / 2.0, abs=1e-6)
    assert m.moving_time_s == pytest.approx(m.elapsed_time_s - 299.0, abs=1e-9)  # 300 points = 299 s still


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.just(0.0), st.floats(0.5, 6.0)), min_size=5, max_size=40),
       st.floats(50.0, 600.0))
def test_best_effort_matches_dense_brute_force(speeds, length):
    # Piecewise-constant speed (zeros are stops), 7 s per step. The reference samples time densely and,
    # for every sampled start, takes the first sampled moment the distance has grown by ``length``: each
    # such window is real (so never faster than the true best) and at most two samples slower.
    steps = np.repeat(np.asarray(speeds), 3) * 7.0
    dist = np.concatenate([[0.0], np.cumsum(steps)])
    t = np.arange(dist.shape[0]) * 7.0
    (effort,) = best_efforts(dist, t, [length])
    if dist[-1] < length:
        assert effort is None
        return
    tg = np.linspace(t[0], t[-1], 20001)
    dg = np.interp(tg, t, dist)
    j = np.searchsorted(dg, dg + length - 1e-9, side="left")
    ok = j < tg.shape[0]
    ref = float(np.min(tg[j[ok]] - tg[ok]))
    assert effort is not None
    assert effort["elapsed_time_s"] <= ref + 1e-6
    assert effort["elapsed_time_s"] >= ref - 2 * (tg[1] - tg[0]) - 1e-6
    s, e = effort["start_index"], effort["end_index"]
    assert t[e] - t[s] >= effort["elapsed_time_s"] - 1e-6  # the reported points enclose the window
    assert dist[e] - dist[s] >= length - 1e-6


# ------------------------------------------------------------------------------------------------
# Moving time
# ------------------------------------------------------------------------------------------------


def test_pause_is_excluded_from_moving_time_exactly_without_noise():
    track = synthetic_track(seed=4, n_points=2000, noise_m=0.0, pauses=[(500, 800)])
    m = compute_metrics(track)
    assert m.elapsed_time_s == pytest.approx(1999.0)
    assert m.moving_time_s == pytest.approx(1999.0 - 300.0)
    assert m.avg_speed_mps == pytest.approx(m.distance_m / m.moving_time_s)
    moving = derived_streams(track)["moving"]
    assert moving[501:801].sum() == 0 and moving[1:501].all() and moving[801:].all()


def test_pause_with_gps_jitter_is_still_mostly_excluded():
    track = synthetic_track(seed=5, n_points=2000, noise_m=3.0, pauses=[(500, 800)])
    m = compute_metrics(track)
    assert m.moving_time_s == pytest.approx(1999.0 - 300.0, abs=20.0)


def test_recording_gap_does_not_count_as_moving():
    # 600 s at 3 m/s, then the device auto-pauses for 10 min and resumes 30 m further on.
    d = np.concatenate([np.arange(0, 1800, 3.0), 1830 + np.arange(0, 1800, 3.0)])
    t = T0 + np.concatenate([np.arange(600.0), 1200.0 + np.arange(600.0)])
    m = compute_metrics(meridian_track(d, t))
    assert m.elapsed_time_s == pytest.approx(1799.0)
    assert m.moving_time_s == pytest.approx(599.0 + 599.0)


def test_cycling_threshold_is_higher_than_walking():
    d = np.arange(0, 600, 0.8)  # 0.8 m/s: a walk, but standing still on a bike
    t = T0 + np.arange(d.shape[0], dtype=float)
    track = meridian_track(d, t)
    assert compute_metrics(track, sport="walking").moving_time_s == pytest.approx(t[-1] - t[0])
    assert compute_metrics(track, sport="cycling").moving_time_s == 0.0
    assert sport_family("Ride") == "cycling" and sport_family("trail_running") == "running"


# ------------------------------------------------------------------------------------------------
# Speed robustness
# ------------------------------------------------------------------------------------------------


def test_single_gps_spike_does_not_set_max_speed():
    track = straight_run(3000.0, 3.0)
    track.lat[500] += math.degrees(200.0 / EARTH_RADIUS_M)  # one fix 200 m off: 200 m/s out and back
    m = compute_metrics(track)
    assert m.max_speed_mps == pytest.approx(3.0, rel=0.02)
    assert np.nanmax(derived_streams(track)["velocity_smooth"]) < 3.1


def test_velocity_stream_follows_a_speed_change():
    d = np.concatenate([np.arange(0, 900, 3.0), 900 + np.arange(5, 1500, 5.0)])
    t = T0 + np.arange(d.shape[0], dtype=float)
    v = derived_streams(meridian_track(d, t))["velocity_smooth"]
    assert v[100] == pytest.approx(3.0, rel=1e-6)
    assert v[450] == pytest.approx(5.0, rel=1e-6)
    assert np.nanmax(v) == pytest.approx(5.0, rel=1e-6)


# ------------------------------------------------------------------------------------------------
# Elevation
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_noise_only_elevation_gives_no_gain(seed):
    rng = np.random.default_rng(seed)
    n = 3600
    t = T0 + np.arange(n, dtype=float)
    for ele in (300 + rng.uniform(-3.0, 3.0, n), 300 + rng.normal(0.0, 2.0, n)):
        track = meridian_track(np.arange(n) * 3.0, t, ele=ele)
        m = compute_metrics(track)
        assert m.elevation_gain_m < 1.0
        assert m.elevation_loss_m < 1.0


def test_known_climb_gives_its_height():
    rng = np.random.default_rng(7)
    t = np.arange(3000, dtype=float)
    true = np.interp(t, [0, 600, 1500, 3000], [100.0, 100.0, 180.0, 180.0])
    track = meridian_track(t * 3.0, T0 + t, ele=true + rng.normal(0.0, 1.0, t.shape[0]))
    m = compute_metrics(track)
    assert m.elevation_gain_m == pytest.approx(80.0, abs=2.0)
    assert m.elevation_loss_m < 2.0
    assert m.elev_high_m == pytest.approx(180.0, abs=1.0)
    assert m.elev_low_m == pytest.approx(100.0, abs=1.0)


def test_hysteresis_counts_legs_larger_than_threshold_only():
    profile = np.array([0.0, 10.0, 7.0, 12.0, 2.0, 4.0, 0.0, 20.0])
    # 0 -> 12 (the 3 m dip is ignored), 12 -> 0 (the 2 m bump is ignored), 0 -> 20.
    assert hysteresis_gain_loss(profile, 4.0) == pytest.approx((32.0, 12.0))
    assert hysteresis_gain_loss(np.array([5.0]), 4.0) == (0.0, 0.0)
    assert hysteresis_gain_loss(np.array([0.0, 3.0, 0.0, 3.5]), 4.0) == (0.0, 0.0)


def test_rolling_synthetic_gain_matches_noise_free_truth():
    clean = compute_metrics(synthetic_track(seed=8, noise_m=0.0))
    noisy = compute_metrics(synthetic_track(seed=8, noise_m=3.0))
    assert clean.elevation_gain_m > 50.0
    assert noisy.elevation_gain_m == pytest.approx(clean.elevation_gain_m, rel=0.05)


def test_smooth_by_time_ignores_nan():
    t = np.arange(10, dtype=float)
    v = np.array([1.0, np.nan, 3.0, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan])
    out = smooth_by_time(t, v, 1.0)
    assert out[0] == pytest.approx(1.0) and out[1] == pytest.approx(2.0) and out[2] == pytest.approx(3.0)
    assert np.isnan(out[5])


def test_grade_stream_on_a_constant_slope():
    n = 1000
    d = np.arange(n) * 2.0
    track = meridian_track(d, T0 + np.arange(n, dtype=float), ele=100.0 + 0.05 * d)
    grade = derived_streams(track)["grade_smooth"]
    assert np.allclose(grade[50:-50], 5.0, atol=1e-6)
    track.ele[:] = np.nan
    assert np.isnan(derived_streams(track)["grade_smooth"]).all()


# ------------------------------------------------------------------------------------------------
# Sensors, laps, indoor
# ------------------------------------------------------------------------------------------------


def test_time_weighted_heart_rate_average():
    # 100 bpm sampled every 10 s for 10 min, then 160 bpm every 1 s for 10 min.
    t = np.concatenate([np.arange(0, 600, 10.0), 600 + np.arange(0, 601, 1.0)])
    hr = np.where(t < 600, 100.0, 160.0)
    m = compute_metrics(meridian_track(t * 2.5, T0 + t, hr=hr))
    # The single 100->160 step at t=590..600 contributes its 130 bpm midpoint for 10 s.
    assert m.avg_hr == pytest.approx((590 * 100 + 10 * 130 + 600 * 160) / 1200.0)
    assert m.max_hr == 160.0


def test_cadence_average_ignores_zeros_power_average_does_not():
    n = 600
    t = T0 + np.arange(n, dtype=float)
    cad = np.where(np.arange(n) % 2 == 0, 90.0, 0.0)
    power = np.where(np.arange(n) < 300, 200.0, 0.0)
    m = compute_metrics(meridian_track(np.arange(n) * 5.0, t, cadence=cad, power=power), sport="cycling")
    assert m.avg_cadence == pytest.approx(90.0)
    assert m.avg_power == pytest.approx(100.0, abs=0.5)
    assert m.max_power == 200.0
    assert m.avg_temp is None


def test_indoor_track_without_gps():
    n = 1800
    t = T0 + np.arange(n, dtype=float)
    power = np.where((np.arange(n) >= 600) & (np.arange(n) < 900), 0.0, 180.0)
    track = Track.from_columns(time=t, hr=np.full(n, 140.0), power=power, cadence=np.where(power > 0, 85.0, 0.0))
    m = compute_metrics(track, sport="cycling")
    assert m.distance_m == 0.0
    assert m.avg_speed_mps is None and m.max_speed_mps is None
    assert m.start_latlng is None and m.bounds is None
    assert m.splits_metric == [] and m.best_efforts == []
    assert m.elapsed_time_s == pytest.approx(1799.0)
    assert m.moving_time_s == pytest.approx(1799.0 - 299.0)  # steps with zero power and cadence at both ends
    assert m.avg_hr == pytest.approx(140.0)
    streams = derived_streams(track)
    assert np.isnan(streams["velocity_smooth"]).all() and not streams["distance"].any()


def test_gps_gap_is_bridged():
    d = np.arange(0, 3000, 3.0)
    t = T0 + np.arange(d.shape[0], dtype=float)
    track = meridian_track(d, t)
    track.lat[200:300] = np.nan
    track.lon[200:300] = np.nan
    m = compute_metrics(track)
    assert m.distance_m == pytest.approx(d[-1], abs=1e-6)
    assert m.moving_time_s == pytest.approx(t[-1] - t[0])


def test_laps_from_device_lap_times():
    track = synthetic_track(seed=9, n_points=1800, laps=3, noise_m=0.0)
    assert len(track.laps) == 3
    m = compute_metrics(track)
    assert [lap["lap"] for lap in m.laps] == [1, 2, 3]
    assert sum(lap["distance_m"] for lap in m.laps) == pytest.approx(m.distance_m, rel=1e-9)
    assert sum(lap["elapsed_time_s"] for lap in m.laps) == pytest.approx(m.elapsed_time_s)
    for lap in m.laps:
        assert lap["distance_m"] == pytest.approx(m.distance_m / 3, rel=0.01)
    assert compute_metrics(straight_run(500.0, 3.0)).laps == []


def test_as_dict_is_strict_json():
    track = synthetic_track(seed=10, n_points=900, with_cadence=True, with_power=True, with_temp=True)
    d = compute_metrics(track).as_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text)["distance_m"] == pytest.approx(d["distance_m"])
    assert isinstance(d["start_latlng"], list)
    empty = compute_metrics(Track.empty(0)).as_dict()
    json.dumps(empty, allow_nan=False)
    assert empty["distance_m"] == 0.0 and empty["splits_metric"] == []


def test_single_point_track():
    m = compute_metrics(Track.from_columns(time=[T0], lat=[LAT0], lon=[LON0], hr=[120.0]))
    assert m.distance_m == 0.0 and m.elapsed_time_s == 0.0 and m.moving_time_s == 0.0
    assert m.avg_hr == pytest.approx(120.0)
    assert m.start_latlng == m.end_latlng == (LAT0, LON0)


def test_synthetic_distance_agrees_with_noise_free_truth():
    track = synthetic_track(seed=11, n_points=1200, noise_m=0.0, speed_mps=4.0)
    m = compute_metrics(track)
    steps = haversine_m(track.lat[:-1], track.lon[:-1], track.lat[1:], track.lon[1:])
    assert m.distance_m == pytest.approx(float(steps.sum()))
    assert m.distance_m == pytest.approx(4.0 * 1199, rel=0.06)  # speed wanders ±4 %


# ------------------------------------------------------------------------------------------------
# Resampling
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "resolution", "expected"), [
    (50, "low", 50), (5000, "low", 100), (5000, "medium", 1000), (5000, "high", 5000),
    (123_457, "high", 10000), (1001, "medium", 1000), (0, "low", 0),
])
def test_resample_indices(n, resolution, expected):
    idx = resample_indices(n, resolution)
    assert idx.shape[0] == expected
    if n:
        assert idx[0] == 0 and idx[-1] == n - 1
        assert np.all(np.diff(idx) > 0)
    if expected > 2:
        gaps = np.diff(idx)
        assert gaps.max() - gaps.min() <= 1  # evenly spread


def test_resample_rejects_unknown_resolution():
    with pytest.raises(ValueError, match="resolution"):
        resample_indices(10, "ultra")


def _true_top_speed(seed: int, speed_mps: float) -> float:
    """The athlete's real top speed: the same synthetic activity without GPS error (noise has its own stream)."""
    clean = synthetic_track(seed=seed, speed_mps=speed_mps, noise_m=0.0)
    return float(np.max(haversine_m(clean.lat[:-1], clean.lon[:-1], clean.lat[1:], clean.lon[1:])
                        / np.diff(clean.time)))


@pytest.mark.parametrize("speed_mps", [3.0, 8.0])
def test_max_speed_on_noisy_1hz_tracks_is_close_to_the_truth(speed_mps: float) -> None:
    # 3 m of GPS error correlated over ~15 s: a ±5 s smoothed speed put the maximum ~8 % (up to 15 %) high.
    errors = []
    for seed in range(12):
        m = compute_metrics(synthetic_track(seed=seed, speed_mps=speed_mps, noise_m=3.0))
        assert m.max_speed_mps is not None
        errors.append(m.max_speed_mps / _true_top_speed(seed, speed_mps) - 1.0)
    assert abs(float(np.median(errors))) < 0.025
    assert max(abs(e) for e in errors) < 0.05


def test_max_speed_on_a_track_shorter_than_its_span_is_the_smoothed_maximum() -> None:
    t = T0 + np.arange(40.0)
    lat = LAT0 + np.arange(40.0) * 2.5 / 111_195.0  # 2.5 m/s due north, 97.5 m in all
    m = compute_metrics(Track.from_columns(time=t, lat=lat, lon=np.full(40, LON0)), "running")
    assert m.max_speed_mps == pytest.approx(2.5, rel=1e-3)


def test_rounded_figures() -> None:
    out = rounded_figures({"distance_m": 31.040000000002692, "elapsed_time_s": 12.3456, "avg_speed_mps": 2.71828,
                           "avg_hr": 141.26, "start_lat": 46.123456789, "point_count": 3,
                           "details": {"splits_metric": [{"distance_m": 1000.0000001, "moving_time_s": 300.04}]},
                           "max_speed_mps": None})
    assert out == {"distance_m": 31.0, "elapsed_time_s": 12.3, "avg_speed_mps": 2.718, "avg_hr": 141.3,
                   "start_lat": 46.123456789, "point_count": 3,
                   "details": {"splits_metric": [{"distance_m": 1000.0, "moving_time_s": 300.0}]},
                   "max_speed_mps": None}


def test_fixed_cost_helpers_match_numpy() -> None:
    """The short-track shortcuts give exactly numpy's results, infinities and signed zeros included."""
    from domain.algorithms.metrics import _nan_to_num, _nanmax

    x = np.array([1.5, np.nan, -0.0, 3.25, np.inf, -np.inf, 1e308])
    for v in (x, x[:4], np.array([np.nan, np.nan]), np.zeros(0)):
        np.testing.assert_array_equal(_nan_to_num(v), np.nan_to_num(v))
        assert _nan_to_num(v).tobytes() == np.nan_to_num(v).tobytes()
        filled = np.where(np.isnan(v), 0.0, v)
        with np.errstate(invalid="ignore"):  # inf + -inf
            assert running_total(filled).tobytes() == np.concatenate([[0.0], np.cumsum(filled)]).tobytes()
        expected = float(np.nanmax(v)) if np.any(~np.isnan(v)) else None
        assert _nanmax(v) == expected


def test_consecutive_hops_and_bounds_match_the_general_formulas() -> None:
    """hop_distances is haversine_m between neighbours value for value (NaN next to a missing position), and bounds
    gives the same box with the fix indices passed in as when it finds them itself."""
    rng = np.random.default_rng(3)
    lat = 46.0 + rng.normal(0, 0.01, 500)
    lon = 14.5 + rng.normal(0, 0.01, 500)
    lat[rng.random(500) < 0.1] = np.nan
    lon[rng.random(500) < 0.1] = np.nan
    poles = (np.array([89.9, -89.9]), np.array([179.9, -179.9]))
    for la, lo in ((lat, lon), (lat[:2], lon[:2]), (lat[:1], lon[:1]), poles):
        assert hop_distances(la, lo).tobytes() == haversine_m(la[:-1], lo[:-1], la[1:], lo[1:]).tobytes()
        fix = (~(np.isnan(la) | np.isnan(lo))).nonzero()[0]
        assert bounds(la, lo, fix) == bounds(la, lo)
    assert bounds(lat[:0], lon[:0]) is None
    full = ~(np.isnan(lat) | np.isnan(lon))
    assert bounds(lat[full], lon[full]) == bounds(lat, lon) == (np.nanmin(lat[full]), np.nanmin(lon[full]),
                                                              np.nanmax(lat[full]), np.nanmax(lon[full]))


def test_bridged_distance_carries_the_last_fix_across_gaps() -> None:
    """Points without a position hold the distance of the last fix before them (0 before the first), and the hop
    across a gap is the straight line between the fixes on either side: a tunnel neither resets nor loses distance."""
    lat = np.array([np.nan, 46.0, 46.001, np.nan, np.nan, 46.003, 46.004, np.nan])
    lon = np.array([np.nan, 14.5, 14.5, 14.5, np.nan, 14.5, 14.5, np.nan])
    along, fix, hops = bridged_distance(lat, lon)
    assert fix.tolist() == [1, 2, 5, 6]
    assert hops.tobytes() == haversine_m(lat[fix[:-1]], lon[fix[:-1]], lat[fix[1:]], lon[fix[1:]]).tobytes()
    a, b, c = hops.tolist()
    assert along.tolist() == [0.0, 0.0, a, a, a, a + b, a + b + c, a + b + c]
    full = bridged_distance(lat[fix], lon[fix])
    assert full[0].tolist() == [0.0, a, a + b, a + b + c] and full[1].tolist() == [0, 1, 2, 3]
    for few in (0, 1, 2):  # fewer than two fixes: no distance at all
        along, fix, hops = bridged_distance(lat[:few], lon[:few])
        assert along.tolist() == [0.0] * few and hops.shape == (0,)
