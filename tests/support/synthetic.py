"""Deterministic synthetic tracks with a known ground truth, for tests and benchmarks.

Real files are few and their truth is unknown; a generator lets a test state exactly what the athlete did
(how far, how fast, where they stopped, which vertices they passed and when) and then check that the
parsers, metrics and matching code recover it. Everything is a pure function of the arguments and ``seed``.

Position noise is Gaussian but *correlated in time* (white noise smoothed over ~15 s): that is how a GPS
receiver actually errs (the fix wanders slowly), and independent per-second noise of a few metres would
make a standing athlete look like they were jogging on the spot, which no real device does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from domain.algorithms.geo import from_local_xy, haversine_m, to_local_xy
from domain.algorithms.gpx_writer import to_gpx as to_gpx  # the one GPX writer, re-exported for tests
from domain.algorithms.track import Track

#: Correlation time (s) of the simulated GPS position error.
NOISE_CORRELATION_S = 15.0
#: Arc-length resolution (m) of the generated route geometry.
_ROUTE_STEP_M = 5.0


def _smooth_noise(rng: np.random.Generator, n: int, sigma_samples: float, std: float) -> np.ndarray:
    """``n`` samples of zero-mean Gaussian noise with the given std, correlated over ``sigma_samples``."""
    if n == 0 or std == 0.0:
        return np.zeros(n)
    if sigma_samples <= 0.5:
        return rng.standard_normal(n) * std
    pad = int(4 * sigma_samples) + 1
    raw = rng.standard_normal(n + 2 * pad)
    x = np.arange(-pad, pad + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma_samples) ** 2)
    kernel /= kernel.sum()
    # FFT convolution keeping only fully-overlapped outputs (numpy only: no scipy import for test helpers).
    size = 1 << int(raw.shape[0] + kernel.shape[0] - 2).bit_length()
    full = np.fft.irfft(np.fft.rfft(raw, size) * np.fft.rfft(kernel, size), size)
    out = full[2 * pad:2 * pad + n]
    # Std of filtered white noise is sqrt(sum w^2); normalising by it (not by the sample std) keeps a
    # short stretch of noise from being inflated to the full amplitude.
    return out * (std / math.sqrt(float(np.sum(kernel**2))))


def gps_noise(rng: np.random.Generator, times: np.ndarray, noise_m: float) -> tuple[np.ndarray, np.ndarray]:
    """East/north position error (m) at the given times: Gaussian, std ``noise_m`` per axis, slowly varying."""
    n = times.shape[0]
    if n == 0 or noise_m <= 0.0:
        return np.zeros(n), np.zeros(n)
    dt = float(np.median(np.diff(times))) if n > 1 else 1.0
    sigma = max(NOISE_CORRELATION_S / max(dt, 1e-9), 0.0)
    return _smooth_noise(rng, n, sigma, noise_m), _smooth_noise(rng, n, sigma, noise_m)


def _open_route(rng: np.random.Generator, length_m: float) -> tuple[np.ndarray, np.ndarray]:
    """x/y (m) of a wandering route sampled every ``_ROUTE_STEP_M`` metres of arc length."""
    m = math.ceil(length_m / _ROUTE_STEP_M) + 2
    # Turning rate (rad/m) varies smoothly over ~150 m: gentle bends with the odd sharper corner.
    turn = _smooth_noise(rng, m, 150.0 / _ROUTE_STEP_M, 0.006)
    heading = rng.uniform(0.0, 2.0 * math.pi) + np.cumsum(turn) * _ROUTE_STEP_M
    x = np.concatenate([[0.0], np.cumsum(np.cos(heading[:-1])) * _ROUTE_STEP_M])
    y = np.concatenate([[0.0], np.cumsum(np.sin(heading[:-1])) * _ROUTE_STEP_M])
    return x, y


def _loop_route(rng: np.random.Generator, perimeter_m: float) -> tuple[np.ndarray, np.ndarray]:
    """x/y (m) of a closed, wobbly loop starting and ending at (0, 0), with the given perimeter."""
    theta = np.linspace(0.0, 2.0 * math.pi, 721)
    p1, p2 = rng.uniform(0.0, 2.0 * math.pi, 2)
    r = 1.0 + 0.15 * np.sin(2.0 * theta + p1) + 0.07 * np.sin(3.0 * theta + p2)
    x, y = r * np.cos(theta), r * np.sin(theta)
    x, y = x - x[0], y - y[0]
    length = float(np.sum(np.hypot(np.diff(x), np.diff(y))))
    scale = perimeter_m / length if length > 0 else 0.0
    return x * scale, y * scale


def _position_at(x: np.ndarray, y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points at arc length ``s`` along the polyline (x, y)."""
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
    return np.interp(s, arc, x), np.interp(s, arc, y)


def _elevation_profile(rng: np.random.Generator, s: np.ndarray, amplitude_m: float,
                       period_m: float | None) -> np.ndarray:
    """Rolling hills as a sum of sines of arc length; periodic in ``period_m`` when given (loops)."""
    if period_m:
        wavelengths = period_m / np.array([1.0, 2.0, 3.0])
    else:
        wavelengths = rng.uniform(700.0, 3000.0, 3)
    weights = np.array([1.0, 0.5, 0.3])
    phases = rng.uniform(0.0, 2.0 * math.pi, 3)
    base = rng.uniform(200.0, 600.0)
    waves = np.sin(2.0 * math.pi * s[:, None] / wavelengths[None, :] + phases[None, :]) @ weights
    return base + amplitude_m * waves / weights.sum()


def _heart_rate(rng: np.random.Generator, times: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """HR that lags effort (first-order response, ~25 s) starting from a warm-up value, in whole bpm."""
    target = np.clip(70.0 + 80.0 * intensity, 55.0, 195.0).tolist()
    dt = float(np.median(np.diff(times))) if times.shape[0] > 1 else 1.0
    a = min(dt / 25.0, 1.0)
    hr = np.empty(len(target))
    y = 95.0  # warm-up value before the first sample
    for k, x in enumerate(target):
        y += a * (x - y)
        hr[k] = y
    return np.round(hr + rng.normal(0.0, 1.0, hr.shape[0]))


def _pause_mask(n_steps: int, pauses: Sequence[tuple[int, int]]) -> np.ndarray:
    """Boolean per step (point k -> k+1): True where the athlete stands still."""
    still = np.zeros(n_steps, dtype=bool)
    for first, last in pauses:
        lo, hi = max(int(first), 0), min(int(last), n_steps)
        if hi > lo:
            still[lo:hi] = True
    return still


def synthetic_track(*, seed: int, n_points: int = 3600, interval_s: float = 1.0,
                    start: tuple[float, float] = (46.05, 14.50), start_time: float = 1_700_000_000.0,
                    speed_mps: float = 3.0, noise_m: float = 3.0, pauses: Sequence[tuple[int, int]] = (),
                    laps: int = 1, with_hr: bool = True, with_ele: bool = True,
                    ele_amplitude_m: float = 30.0, sport: str = "running", with_cadence: bool = False,
                    with_power: bool = False, with_temp: bool = False) -> Track:
    """A realistic recorded activity, one point every ``interval_s`` seconds.

    * The route bends smoothly (``laps == 1``) or is a closed loop ridden ``laps`` times, in which case
      ``Track.laps`` holds the (interpolated) moments each loop started, first one included.
    * Speed wanders ±4 % around ``speed_mps``. Each ``(first, last)`` in ``pauses`` is a stop: the athlete
      stands still from point ``first`` to point ``last`` (so ``(last - first) * interval_s`` seconds are
      not moving) while the time keeps advancing and the recorded position jitters.
    * Elevation rolls with about ``ele_amplitude_m`` peak amplitude, plus ``noise_m / 10`` m of noise.
    * Heart rate follows speed and grade with a lag; cadence/power/temperature only on request.
    """
    # One independent stream per component, so e.g. changing the noise level keeps the same route.
    r_speed, r_route, r_noise, r_ele, r_hr, r_cad, r_pwr, r_temp = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8))
    n = max(int(n_points), 0)
    times = start_time + np.arange(n) * float(interval_s)
    still = _pause_mask(max(n - 1, 0), pauses)
    speed = speed_mps * (1.0 + _smooth_noise(r_speed, max(n - 1, 0), 60.0 / interval_s, 0.04))
    speed[still] = 0.0
    s = np.concatenate([[0.0], np.cumsum(speed * interval_s)])[:n]
    total = float(s[-1]) if n else 0.0

    lap_starts: list[float] = []
    if laps > 1 and total > 0:
        perimeter = total / laps
        rx, ry = _loop_route(r_route, perimeter)
        x, y = _position_at(rx, ry, np.mod(s, perimeter))
        # Moment the true distance crossed each multiple of the perimeter (first crossing, pauses aside).
        lap_starts = [float(times[0])]
        for k in range(1, laps):
            j = int(np.searchsorted(s, k * perimeter, side="left"))
            if 0 < j < n:
                f = (k * perimeter - s[j - 1]) / (s[j] - s[j - 1])
                lap_starts.append(float(times[j - 1] + f * (times[j] - times[j - 1])))
        ele_period: float | None = perimeter
    else:
        rx, ry = _open_route(r_route, total)
        x, y = _position_at(rx, ry, s)
        ele_period = None

    nx, ny = gps_noise(r_noise, times, noise_m)
    lat, lon = from_local_xy(x + nx, y + ny, start[0], start[1])

    ele_true = _elevation_profile(r_ele, s, ele_amplitude_m, ele_period) if n else np.zeros(0)
    grade = np.zeros(n)
    if n > 1:
        ds = np.diff(s)
        g = np.divide(np.diff(ele_true), ds, out=np.zeros(n - 1), where=ds > 0)
        grade[1:] = g
    intensity = np.concatenate([[speed[0] if n > 1 else 0.0], speed])[:n] / max(speed_mps, 1e-9) + 3.0 * grade
    moving_pt = np.concatenate([[True], ~still])[:n] if n else np.zeros(0, dtype=bool)

    columns: dict[str, np.ndarray] = {"time": times, "lat": lat, "lon": lon}
    if with_ele:
        columns["ele"] = np.round(ele_true + r_ele.normal(0.0, noise_m / 10.0, n), 2)
    if with_hr and n:
        columns["hr"] = _heart_rate(r_hr, times, intensity)
    if with_cadence:
        base = 88.0 if sport == "cycling" else 85.0
        cad = np.round(base + r_cad.normal(0.0, 2.0, n))
        columns["cadence"] = np.where(moving_pt, cad, 0.0)
    if with_power:
        base = 200.0 if sport == "cycling" else 250.0
        pwr = np.round(np.clip(base * intensity + r_pwr.normal(0.0, 15.0, n), 0.0, None))
        columns["power"] = np.where(moving_pt, pwr, 0.0)
    if with_temp:
        columns["temp"] = np.round(18.0 + _smooth_noise(r_temp, n, 300.0, 1.0), 1)
    return Track.from_columns(**columns, laps=lap_starts, sport=sport, name=f"Synthetic {sport}",
                              device="synthetic")


def track_along(path_lat: Sequence[float] | np.ndarray, path_lon: Sequence[float] | np.ndarray,
                speeds_or_speed: float | Sequence[float] | np.ndarray, *, seed: int, interval_s: float = 1.0,
                noise_m: float = 0.0, start_time: float = 1_700_000_000.0) -> tuple[Track, np.ndarray]:
    """Move along a polyline and record it; also return the true time each vertex was passed.

    ``speeds_or_speed`` is one speed (m/s) for the whole path, one per segment (``len(path) - 1``), or one
    per vertex (the speed leaving that vertex; the last is ignored). Samples are taken every
    ``interval_s`` from ``start_time`` and one final sample exactly at the arrival at the last vertex, so
    the recording starts and ends on the path's end points. Between vertices the position is interpolated
    linearly in lat/lon and segment lengths are haversine, the same geometry the metrics use, so the
    returned vertex times are exact for a noise-free track. The track carries a heart-rate column (a
    simple function of speed) and no elevation.
    """
    plat = np.asarray(path_lat, dtype=np.float64)
    plon = np.asarray(path_lon, dtype=np.float64)
    if plat.shape != plon.shape or plat.ndim != 1 or plat.shape[0] < 2:
        raise ValueError("path needs at least two vertices with matching lat/lon")
    seg_len = haversine_m(plat[:-1], plon[:-1], plat[1:], plon[1:])
    speeds = np.asarray(speeds_or_speed, dtype=np.float64)
    if speeds.ndim == 0:
        speeds = np.full(seg_len.shape[0], float(speeds))
    elif speeds.shape[0] == plat.shape[0]:
        speeds = speeds[:-1]
    if speeds.shape[0] != seg_len.shape[0]:
        raise ValueError("need one speed, one per segment, or one per vertex")
    if np.any(~(speeds > 0)):
        raise ValueError("speeds must be positive")
    vertex_t = start_time + np.concatenate([[0.0], np.cumsum(seg_len / speeds)])
    end_t = float(vertex_t[-1])
    n_regular = math.floor((end_t - start_time) / interval_s + 1e-9) + 1
    times = start_time + np.arange(n_regular) * interval_s
    if end_t - times[-1] > 1e-6:
        times = np.concatenate([times, [end_t]])
    else:
        times[-1] = end_t

    # Time -> fractional vertex index (piecewise linear in time on each segment), then lat/lon.
    seg = np.clip(np.searchsorted(vertex_t, times, side="right") - 1, 0, seg_len.shape[0] - 1)
    span = vertex_t[seg + 1] - vertex_t[seg]
    frac = np.clip(np.divide(times - vertex_t[seg], span, out=np.zeros_like(times), where=span > 0), 0.0, 1.0)
    lat = plat[seg] + frac * (plat[seg + 1] - plat[seg])
    lon = plon[seg] + frac * (plon[seg + 1] - plon[seg])

    rng = np.random.default_rng(seed)
    if noise_m > 0:
        ex, ny = gps_noise(rng, times, noise_m)
        x, y = to_local_xy(lat, lon, float(plat[0]), float(plon[0]))
        lat, lon = from_local_xy(x + ex, y + ny, float(plat[0]), float(plon[0]))
    v = speeds[seg]
    hr = np.round(np.clip(100.0 + 15.0 * v, 60.0, 195.0) + rng.normal(0.0, 1.0, times.shape[0]))
    track = Track.from_columns(time=times, lat=lat, lon=lon, hr=hr, sport="running", name="Synthetic path",
                               device="synthetic")
    return track, vertex_t
