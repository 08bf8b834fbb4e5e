"""Round trips of the compact stream codec: tolerances are the documented quantisation steps."""

from __future__ import annotations

import zlib

import gpxpy
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.algorithms.streams import FORMAT_VERSION, SCALES, decode_track, encode_track
from domain.algorithms.track import COLUMNS, Track
from tests.support.corpus import corpus_file
from tests.support.synthetic import synthetic_track

#: Half a quantisation step, plus float slack.
TOLERANCE = {c: 0.5 / s + 1e-9 for c, s in SCALES.items()}


def assert_round_trip(track: Track) -> Track:
    back = decode_track(encode_track(track))
    assert len(back) == len(track)
    for c in COLUMNS:
        a, b = getattr(track, c), getattr(back, c)
        missing = ~np.isfinite(a)
        np.testing.assert_array_equal(np.isnan(b), missing, err_msg=f"{c}: NaN positions")
        np.testing.assert_allclose(b[~missing], a[~missing], rtol=0, atol=TOLERANCE[c], err_msg=c)
    assert back.laps == track.laps
    assert (back.sport, back.name, back.device) == (track.sport, track.name, track.device)
    return back


def test_full_synthetic_round_trip_and_metadata():
    track = synthetic_track(seed=1, laps=3, with_cadence=True, with_power=True, with_temp=True)
    track.name = "Morgenlauf — 5 × 1 km"  # non-ASCII survives the JSON header
    back = assert_round_trip(track)
    assert len(back.laps) == 3
    assert np.all(np.diff(back.time) > 0)


def test_decoded_values_are_the_nearest_decimals():
    track = Track.from_columns(time=[1_700_000_000.0, 1_700_000_001.5], lat=[46.0512345, -33.1234567],
                               lon=[14.9999999, -70.5], ele=[-12.3, 8848.9], temp=[-5.5, 31.2])
    back = decode_track(encode_track(track))
    assert back.lat.tolist() == [46.0512345, -33.1234567]
    assert back.lon.tolist() == [14.9999999, -70.5]
    assert back.ele.tolist() == [-12.3, 8848.9]
    assert back.temp.tolist() == [-5.5, 31.2]
    assert back.time.tolist() == [1_700_000_000.0, 1_700_000_001.5]


def test_partial_nan_columns_keep_exact_positions():
    track = synthetic_track(seed=2, n_points=1000, with_cadence=True, with_power=True)
    rng = np.random.default_rng(0)
    for c in ("lat", "ele", "hr", "cadence", "power"):
        getattr(track, c)[rng.random(1000) < 0.2] = np.nan
    track.lon[np.isnan(track.lat)] = np.nan
    track.hr[:50] = np.nan
    track.power[-3:] = np.inf  # non-finite values are stored as missing
    back = decode_track(encode_track(track))
    assert np.isnan(back.power[-3:]).all()
    track.power[-3:] = np.nan
    assert_round_trip(track)


def test_empty_columns_cost_nothing():
    base = synthetic_track(seed=3, n_points=600, with_hr=False)
    with_empty = base.take(np.arange(600))
    with_empty.hr = np.full(600, np.nan)
    with_empty.cadence = np.full(600, np.inf)
    assert encode_track(with_empty) == encode_track(base)
    assert_round_trip(with_empty)


def test_indoor_and_degenerate_tracks():
    assert_round_trip(Track.empty(0))
    assert_round_trip(Track.from_columns(time=[1_700_000_000.25], hr=[140.0]))
    assert_round_trip(Track.from_columns(time=[1.0, 2.0], lat=[np.nan, 46.0], lon=[np.nan, 14.0]))
    indoor = synthetic_track(seed=4, n_points=900, with_power=True)
    indoor.lat[:] = np.nan
    indoor.lon[:] = np.nan
    assert_round_trip(indoor)


def test_irregular_sampling_round_trips():
    rng = np.random.default_rng(5)
    track = synthetic_track(seed=5, n_points=800)
    track.time = 1_700_000_000.0 + np.cumsum(rng.choice([1.0, 1.0, 2.0, 0.5, 7.25], 800))
    assert_round_trip(track)


def test_size_budget_for_a_1hz_track():
    """≤ 16 bytes per point for time, lat, lon, ele and hr with realistic noise (actually far less)."""
    for seed in range(3):
        blob = encode_track(synthetic_track(seed=seed, noise_m=3.0))
        assert len(blob) / 3600 < 4.0
    full = synthetic_track(seed=0, with_cadence=True, with_power=True, with_temp=True)
    assert len(encode_track(full)) / 3600 < 6.0


def test_format_version_and_damage_are_reported():
    blob = encode_track(synthetic_track(seed=6, n_points=100))
    assert blob[0] == FORMAT_VERSION
    with pytest.raises(ValueError, match="version"):
        decode_track(bytes([99]) + blob[1:])
    with pytest.raises(ValueError):
        decode_track(blob[: len(blob) // 2])
    with pytest.raises(ValueError):
        decode_track(b"")
    payload = zlib.decompress(blob[2:])
    with pytest.raises(ValueError, match="truncated"):
        decode_track(blob[:2] + zlib.compress(payload[:-10]))


def test_sub_millisecond_times_switch_to_microseconds():
    track = Track.from_columns(time=[1_700_000_000.0, 1_700_000_000.0002, 1_700_000_001.0], hr=[1, 2, 3])
    back = decode_track(encode_track(track))
    np.testing.assert_allclose(back.time, track.time, rtol=0, atol=1e-6)
    assert np.all(np.diff(back.time) > 0)
    with pytest.raises(ValueError, match="1 µs"):
        encode_track(Track.from_columns(time=[1000.0, 1000.0000001]))


RANGES = {"lat": (-90.0, 90.0), "lon": (-180.0, 180.0), "ele": (-500.0, 9000.0), "hr": (0.0, 250.0),
          "cadence": (0.0, 255.0), "power": (0.0, 3000.0), "temp": (-40.0, 60.0)}


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 300),
    seed=st.integers(0, 2**32 - 1),
    missing=st.lists(st.sampled_from([0.0, 0.1, 0.5, 0.99, 1.0]), min_size=7, max_size=7),
    laps=st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=3),
    sport=st.none() | st.text(max_size=8),
)
def test_random_tracks_round_trip(n, seed, missing, laps, sport):
    # Hypothesis picks the shape (length, which columns are sparse or empty, metadata); numpy fills in
    # the values, which keeps each example cheap.
    rng = np.random.default_rng(seed)
    steps = np.round(rng.choice([0.001, 0.5, 1.0, 1.0, 3599.999], n) * rng.uniform(1.0, 2.0, n), 3)
    columns: dict[str, np.ndarray] = {"time": 1_500_000_000.0 + np.cumsum(np.maximum(steps, 0.001))}
    for (c, (lo, hi)), p in zip(RANGES.items(), missing, strict=True):
        values = rng.uniform(lo, hi, n)
        values[rng.random(n) < p] = np.nan
        columns[c] = values
    track = Track.from_columns(**columns, laps=laps, sport=sport, name="x", device=None)
    assert_round_trip(track)


def test_real_gpx_round_trip():
    path = corpus_file("gpx/strava-plus-one__break-between-trksegs.gpx")
    gpx = gpxpy.parse(path.read_text(encoding="utf-8"))
    pts = [p for t in gpx.tracks for s in t.segments for p in s.points if p.time is not None]
    rows = np.array([(p.time.timestamp(), p.latitude, p.longitude,
                      np.nan if p.elevation is None else p.elevation) for p in pts])
    _, first = np.unique(rows[:, 0], return_index=True)
    rows = rows[first]
    track = Track.from_columns(time=rows[:, 0], lat=rows[:, 1], lon=rows[:, 2], ele=rows[:, 3])
    assert_round_trip(track)
    assert len(encode_track(track)) / len(track) < 16.0
