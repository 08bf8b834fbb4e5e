"""The synthetic generator must itself be right: other tests trust its ground truth."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import gpxpy
import numpy as np
import pytest

from domain.algorithms.geo import EARTH_RADIUS_M, haversine_m, to_local_xy
from domain.algorithms.track import COLUMNS, Track
from tests.support.synthetic import synthetic_track, to_gpx, track_along

GPX_NS = {"g": "http://www.topografix.com/GPX/1/1",
          "tpx": "http://www.garmin.com/xmlschemas/TrackPointExtension/v1",
          "pwr": "http://www.garmin.com/xmlschemas/PowerExtension/v1"}


def assert_same_track(a: Track, b: Track) -> None:
    for c in COLUMNS:
        np.testing.assert_array_equal(getattr(a, c), getattr(b, c), err_msg=c)
    assert (a.laps, a.sport, a.name, a.device) == (b.laps, b.sport, b.name, b.device)


def test_deterministic_per_seed():
    assert_same_track(synthetic_track(seed=1, n_points=500), synthetic_track(seed=1, n_points=500))
    a, b = synthetic_track(seed=1, n_points=500), synthetic_track(seed=2, n_points=500)
    assert not np.array_equal(a.lat, b.lat)


def test_noise_level_does_not_change_the_route():
    clean = synthetic_track(seed=3, n_points=800, noise_m=0.0)
    noisy = synthetic_track(seed=3, n_points=800, noise_m=3.0)
    x, y = to_local_xy(noisy.lat, noisy.lon, float(clean.lat[0]), float(clean.lon[0]))
    cx, cy = to_local_xy(clean.lat, clean.lon, float(clean.lat[0]), float(clean.lon[0]))
    err = np.hypot(x - cx, y - cy)
    assert 1.0 < err.mean() < 8.0  # Gaussian noise of 3 m per axis around the same path
    np.testing.assert_array_equal(clean.hr, noisy.hr)


def test_shape_time_and_columns():
    t = synthetic_track(seed=4, n_points=300, interval_s=2.0, start_time=1_600_000_000.0,
                        with_cadence=True, with_power=True, with_temp=True, sport="cycling")
    assert len(t) == 300
    np.testing.assert_allclose(np.diff(t.time), 2.0)
    assert t.time[0] == 1_600_000_000.0
    for c in COLUMNS:
        assert t.has(c), c
    assert t.sport == "cycling" and t.laps == []
    bare = synthetic_track(seed=4, n_points=300, with_hr=False, with_ele=False)
    assert not bare.has("hr") and not bare.has("ele") and not bare.has("power")


def test_noise_free_distance_follows_speed():
    t = synthetic_track(seed=5, n_points=1000, noise_m=0.0, speed_mps=3.0)
    d = haversine_m(t.lat[:-1], t.lon[:-1], t.lat[1:], t.lon[1:])
    assert d.sum() == pytest.approx(3.0 * 999, rel=0.05)
    # Smooth heading: consecutive steps never turn by more than a few degrees.
    x, y = to_local_xy(t.lat, t.lon, float(t.lat[0]), float(t.lon[0]))
    heading = np.unwrap(np.arctan2(np.diff(y), np.diff(x)))
    assert np.abs(np.diff(heading)).max() < math.radians(10)


def test_pause_stands_still_and_heart_rate_drops():
    t = synthetic_track(seed=6, n_points=1500, noise_m=0.0, pauses=[(600, 1000)])
    assert np.all(t.lat[600:1001] == t.lat[600]) and np.all(t.lon[600:1001] == t.lon[600])
    assert t.lat[599] != t.lat[600]
    assert t.hr[900:1000].mean() < t.hr[400:600].mean() - 30
    jitter = synthetic_track(seed=6, n_points=1500, noise_m=3.0, pauses=[(600, 1000)])
    assert np.ptp(jitter.lat[600:1001]) > 0  # position wanders while standing


def test_heart_rate_is_plausible():
    hr = synthetic_track(seed=7).hr
    assert hr.min() >= 50 and hr.max() <= 200
    assert np.all(hr == np.round(hr))
    assert 120 < hr[600:].mean() < 170


def test_loop_laps_return_to_start():
    t = synthetic_track(seed=8, n_points=1800, noise_m=0.0, laps=3)
    assert len(t.laps) == 3 and t.laps[0] == t.time[0]
    assert np.all(np.diff(t.laps) > 0)
    for lap_start in t.laps[1:]:
        i = int(np.searchsorted(t.time, lap_start))
        assert haversine_m(t.lat[0], t.lon[0], t.lat[i], t.lon[i]) < 10.0
    # Elevation is periodic in the loop length: the second lap starts at the first lap's altitude.
    i1 = int(np.searchsorted(t.time, t.laps[1]))
    assert abs(t.ele[i1] - t.ele[0]) < 3.0


def test_track_along_vertex_times_are_exact():
    lat = np.array([46.0, 46.01, 46.01, 46.02])
    lon = np.array([14.5, 14.5, 14.52, 14.52])
    seg = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])
    speeds = np.array([2.0, 5.0, 3.0])
    track, vt = track_along(lat, lon, speeds, seed=0, interval_s=1.0, start_time=1000.0)
    np.testing.assert_allclose(vt, 1000.0 + np.concatenate([[0.0], np.cumsum(seg / speeds)]))
    assert track.time[0] == 1000.0 and track.time[-1] == vt[-1]
    assert track.lat[-1] == lat[-1] and track.lon[-1] == lon[-1]
    assert np.all(np.diff(track.time) > 0) and np.diff(track.time)[:-1].max() == pytest.approx(1.0)
    # Every sample lies on its segment, speed x (time since the vertex) metres past the vertex.
    seg_of = np.clip(np.searchsorted(vt, track.time, side="right") - 1, 0, 2)
    from_vertex = haversine_m(lat[seg_of], lon[seg_of], track.lat, track.lon)
    np.testing.assert_allclose(from_vertex, speeds[seg_of] * (track.time - vt[seg_of]), atol=1e-3)
    # Step speeds match the segment speeds away from vertices.
    d = haversine_m(track.lat[:-1], track.lon[:-1], track.lat[1:], track.lon[1:])
    i = int(np.searchsorted(track.time, (vt[1] + vt[2]) / 2))
    assert d[i] / np.diff(track.time)[i] == pytest.approx(5.0, rel=1e-6)


def test_track_along_speed_forms_and_errors():
    lat, lon = [46.0, 46.001, 46.002], [14.5, 14.5, 14.5]
    _, vt_scalar = track_along(lat, lon, 2.0, seed=0)
    _, vt_vertex = track_along(lat, lon, [2.0, 2.0, 99.0], seed=0)
    np.testing.assert_allclose(vt_scalar, vt_vertex)
    with pytest.raises(ValueError):
        track_along(lat, lon, [1.0, 2.0, 3.0, 4.0], seed=0)
    with pytest.raises(ValueError):
        track_along(lat, lon, 0.0, seed=0)
    with pytest.raises(ValueError):
        track_along([46.0], [14.5], 1.0, seed=0)
    noisy, _ = track_along(lat, lon, 2.0, seed=0, noise_m=3.0)
    clean, _ = track_along(lat, lon, 2.0, seed=0)
    assert not np.array_equal(noisy.lat, clean.lat)
    assert np.max(np.abs(noisy.lat - clean.lat)) < math.degrees(20.0 / EARTH_RADIUS_M)


def test_to_gpx_round_trips_through_gpxpy():
    track = synthetic_track(seed=9, n_points=120, with_cadence=True, with_power=True, with_temp=True)
    track.time = track.time + np.where(np.arange(120) == 5, 0.25, 0.0)  # one fractional timestamp
    data = to_gpx(track)
    root = ET.fromstring(data)
    assert root.tag == "{http://www.topografix.com/GPX/1/1}gpx" and root.get("version") == "1.1"
    pts = root.findall(".//g:trkpt", GPX_NS)
    assert len(pts) == 120
    times = [p.find("g:time", GPX_NS).text for p in pts]
    assert times[0] == "2023-11-14T22:13:20Z"
    assert times[5] == "2023-11-14T22:13:25.25Z"
    assert all("." not in s for i, s in enumerate(times) if i != 5)
    assert pts[3].find(".//tpx:hr", GPX_NS).text == str(int(track.hr[3]))
    assert pts[3].find(".//tpx:cad", GPX_NS).text == str(int(track.cadence[3]))
    assert pts[3].find(".//pwr:PowerInWatts", GPX_NS).text == str(int(track.power[3]))

    parsed = gpxpy.parse(data.decode("utf-8"))
    gp = parsed.tracks[0].segments[0].points
    assert len(gp) == 120
    np.testing.assert_allclose([p.latitude for p in gp], track.lat, atol=1e-7)
    np.testing.assert_allclose([p.elevation for p in gp], track.ele, atol=0.01)
    assert gp[5].time.timestamp() == pytest.approx(track.time[5])
    assert parsed.tracks[0].type == "running"


def test_to_gpx_skips_points_without_position_and_escapes_text():
    track = synthetic_track(seed=10, n_points=20, with_ele=False)
    track.lat[3] = np.nan
    track.name = 'Run <fast> & "far"'
    root = ET.fromstring(to_gpx(track))
    assert len(root.findall(".//g:trkpt", GPX_NS)) == 19
    assert root.find(".//g:trk/g:name", GPX_NS).text == 'Run <fast> & "far"'
    assert root.find(".//g:ele", GPX_NS) is None
