"""Activity summary metrics and derived streams, computed from a normalised :class:`Track`.

Everything is vectorised numpy over the columns: one pass builds the kinematics (cumulative distance,
per-step speeds, moving flags) and every figure (totals, splits, laps, best efforts) is read off
cumulative arrays by interpolation, so a one-hour 1 Hz track takes a few milliseconds.

Conventions
-----------
* A *step* is the interval between point ``k`` and point ``k + 1`` (``n - 1`` steps for ``n`` points).
* Distance bridges GPS gaps: a stretch of points without position (tunnel, lost fix) adds the straight
  distance between the last fix before and the first fix after it, spread evenly over the gap's time.
* A step counts as *moving* when it is not longer than :data:`MAX_MOVING_GAP_S` (a longer step is a
  device auto-pause or a lost recording, not exercise) and both its raw speed and the smoothed speed
  exceed the sport's threshold. Requiring both keeps a noise-free stop exactly excluded while GPS jitter
  during a stop (raw speed briefly above threshold) is rejected by the smoothed speed. Without any
  position (indoor), a step is moving when cadence or power is positive at either end, or, with neither
  column recorded, whenever the timer was running (step not longer than the max gap).
* Averages of HR, cadence, power and temperature are time-weighted over steps (a device that records
  every 10 s when cruising and every second when sprinting must not over-weight the sprint), skipping
  steps longer than the max gap. Cadence averages exclude zeros (coasting/standing); power includes
  them, as power meters report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any

import numpy as np

from domain.algorithms.geo import bounds as geo_bounds
from domain.algorithms.geo import bridged_distance, running_total
from domain.algorithms.track import Track

#: Speed (m/s) above which a step counts as moving, per sport family.
MOVING_THRESHOLD_MPS: dict[str, float] = {
    "running": 0.5, "walking": 0.5, "cycling": 1.0, "swimming": 0.2, "other": 0.5,
}
#: A step longer than this (s) is an auto-pause / recording gap and never counts as moving.
MAX_MOVING_GAP_S = 60.0
#: Steps in the centred median filter applied to raw speeds: an isolated position spike produces two
#: outlier steps (out and back), which a 5-step median discards.
SPIKE_MEDIAN_STEPS = 5
#: Half-width (s) of the centred time window that smooths the (median-filtered) speed.
SPEED_SMOOTH_HALF_WINDOW_S = 5.0
#: Maximum speed is the fastest pace held over this distance (of the spike-filtered speeds). GPS error wanders
#: by a few metres over ~15 s, which moves a per-second or ±5 s speed by ~0.3 m/s - a run's maximum then comes
#: out ~8 % high (the largest of many noise peaks); over 300 m it is ~1 %. A track shorter than this falls back
#: to the largest smoothed speed.
MAX_SPEED_SPAN_M = 300.0
#: Half-width (s) of the centred time window that smooths altitude before gain/loss and grade.
ELE_SMOOTH_HALF_WINDOW_S = 15.0
#: A climb or descent counts only once altitude moved more than this (m) from the last turning point.
ELE_HYSTERESIS_M = 4.0
#: Half-width (m) of the distance window over which grade is measured.
GRADE_HALF_WINDOW_M = 25.0
#: Below this distance span (m) the grade is reported as 0 rather than dividing noise by nothing.
GRADE_MIN_SPAN_M = 2.0
#: A trailing partial split shorter than this (m) is dropped (rounding leftovers, not a real split).
MIN_PARTIAL_SPLIT_M = 1.0
KM_M = 1000.0
MILE_M = 1609.344
#: Best-effort distances for runs: (name, metres).
BEST_EFFORTS: tuple[tuple[str, float], ...] = (
    ("400m", 400.0), ("1k", 1000.0), ("1 mile", MILE_M), ("5k", 5000.0), ("10k", 10000.0),
    ("Half-Marathon", 21097.5), ("Marathon", 42195.0),
)
#: Target point counts of :func:`resample_indices`.
RESOLUTIONS: dict[str, int] = {"low": 100, "medium": 1000, "high": 10000}


@lru_cache(maxsize=256)  # a handful of names recur; the string tests cost more than the figures of a short track
def sport_family(sport: str | None) -> str:
    """Map a sport name (ours or a file's) to the family that decides thresholds and best efforts."""
    s = (sport or "").lower()
    if any(k in s for k in ("cycl", "bik", "ride")):
        return "cycling"
    if "run" in s:
        return "running"
    if any(k in s for k in ("walk", "hik")):
        return "walking"
    if "swim" in s:
        return "swimming"
    return "other"


@dataclass
class ActivityMetrics:
    """Summary of one activity. Floats are SI (m, s, m/s); ``None`` means "not measured"."""

    distance_m: float
    elapsed_time_s: float
    moving_time_s: float
    elevation_gain_m: float | None
    elevation_loss_m: float | None
    avg_speed_mps: float | None
    max_speed_mps: float | None
    avg_hr: float | None
    max_hr: float | None
    avg_cadence: float | None
    avg_power: float | None
    max_power: float | None
    avg_temp: float | None
    start_latlng: tuple[float, float] | None
    end_latlng: tuple[float, float] | None
    #: (min_lat, min_lon, max_lat, max_lon) of the known positions.
    bounds: tuple[float, float, float, float] | None
    elev_high_m: float | None = None
    elev_low_m: float | None = None
    start_time: float | None = None
    point_count: int = 0
    sport: str | None = None
    splits_metric: list[dict[str, Any]] = field(default_factory=list)
    splits_standard: list[dict[str, Any]] = field(default_factory=list)
    laps: list[dict[str, Any]] = field(default_factory=list)
    best_efforts: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly copy: tuples become lists, NaN/inf become None."""
        # Not dataclasses.asdict: it deep-copies every leaf, and _jsonable already rebuilds each container.
        return _jsonable({f.name: getattr(self, f.name) for f in fields(self)})


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


#: Decimals kept when figures are stored or returned, by the unit their name ends with (or by name): a
#: decimetre, a tenth of a second, a millimetre per second, a tenth of a beat or watt. Finer digits are float
#: noise (``31.040000000002692`` m), not measurement.
_DECIMALS_BY_SUFFIX: tuple[tuple[str, int], ...] = (("_mps", 3), ("_m", 1), ("_s", 1))
_DECIMALS_BY_NAME = {"avg_hr": 1, "max_hr": 1, "avg_cadence": 1, "avg_power": 1, "max_power": 1, "avg_temp": 1,
                     "avg_grade": 1, "start_time": 3}


def rounded_figures(value: Any, key: str = "") -> Any:
    """``value`` (a figure, or dicts and lists of them) with each float rounded to its unit's precision
    (:data:`_DECIMALS_BY_SUFFIX`); figures of other names (coordinates, indices) are kept as they are."""
    if isinstance(value, dict):
        return {k: rounded_figures(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded_figures(v, key) for v in value]
    if isinstance(value, float) and math.isfinite(value):
        decimals = _DECIMALS_BY_NAME.get(key)
        if decimals is None:
            decimals = next((d for suffix, d in _DECIMALS_BY_SUFFIX if key.endswith(suffix)), None)
        if decimals is not None:
            return round(value, decimals)
    return value


def _opt(x: float) -> float | None:
    """A finite float, or None."""
    x = float(x)
    return x if math.isfinite(x) else None


# --------------------------------------------------------------------------------------------------
# Kinematics
# --------------------------------------------------------------------------------------------------


@dataclass
class _Kinematics:
    t: np.ndarray            # point times (n)
    dist: np.ndarray         # cumulative distance at points (n), GPS gaps bridged
    dt: np.ndarray           # step durations (n-1)
    speed_raw: np.ndarray    # raw step speeds (n-1), NaN where no position is known around the step
    velocity: np.ndarray     # smoothed, spike-robust speed at points (n), NaN without GPS nearby
    cum_filtered: np.ndarray  # cumulative distance of the spike-filtered speeds at points (n)
    moving: np.ndarray       # bool per step (n-1)
    cum_moving: np.ndarray   # cumulative moving time at points (n)
    fix: np.ndarray          # indices of the points with a known position

    @property
    def has_gps(self) -> bool:
        return self.fix.shape[0] > 0


def _nan_to_num(x: np.ndarray, nan: np.ndarray | None = None) -> np.ndarray:
    """np.nan_to_num(x) for a float array: a copy with NaN as 0 (and ±inf as ±the largest float). Without an
    infinity (every call here on a normalised track) that is one np.where, four numpy calls instead of a dozen
    plus the wrapper's, a fixed cost that shows on short tracks. ``nan``: ``np.isnan(x)``, when already known."""
    out = np.where(np.isnan(x) if nan is None else nan, 0.0, x)
    if np.count_nonzero(np.isinf(out)):
        return np.nan_to_num(x)
    return out


def _nans(shape: int | tuple[int, ...]) -> np.ndarray:
    """np.full(shape, np.nan) without the wrapper's per-call cost."""
    out = np.empty(shape)
    out.fill(np.nan)
    return out


def _step_speeds(t: np.ndarray, dt: np.ndarray, fix: np.ndarray, hops: np.ndarray) -> np.ndarray:
    """Raw speed of every step (``dt``: the step durations): the speed of the fix-to-fix hop that contains it (NaN
    outside any hop)."""
    n = t.shape[0]
    if fix.shape[0] == n and n >= 2:  # every point has a fix: each hop is one step
        return hops / dt
    out = _nans(max(n - 1, 0))
    if fix.shape[0] < 2 or n < 2:
        return out
    hop_speed = hops / (t[fix[1:]] - t[fix[:-1]])
    hop = fix.searchsorted(np.arange(n - 1), side="right") - 1
    inside = (hop >= 0) & (hop < hops.shape[0])
    out[inside] = hop_speed[hop[inside]]
    return out


def _median_filter(v: np.ndarray, width: int, nan: np.ndarray | None = None) -> np.ndarray:
    """Centred running median with edge replication; NaN stays NaN (treated as 0 inside windows). ``nan``:
    ``np.isnan(v)``, when the caller has it."""
    n = v.shape[0]
    if n < 3 or width < 3:
        return v.copy()
    half = width // 2
    if nan is None:
        nan = np.isnan(v)
    padded = np.empty(n + 2 * half)  # edge replication, written in place rather than concatenated
    padded[half:half + n] = _nan_to_num(v, nan)
    padded[:half] = padded[half]
    padded[half + n:] = padded[half + n - 1]
    if width == 5:
        out = _median5(*(padded[k:k + n] for k in range(5)))
    else:
        out = np.median(np.lib.stride_tricks.sliding_window_view(padded, width), axis=1)
    out[nan] = np.nan
    return out


def _median5(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Element-wise median of five arrays (no NaN) with six min/max: max(min(a,b), min(c,d)) drops the smallest
    of a-d and min(max(a,b), max(c,d)) the largest, and the median of five is the median of e and those two.
    Each result is one of the inputs, as np.median's is for an odd count, at a fraction of its per-call cost."""
    low = np.maximum(np.minimum(a, b), np.minimum(c, d))
    high = np.minimum(np.maximum(a, b), np.maximum(c, d))
    return np.maximum(np.minimum(e, low), np.minimum(np.maximum(e, low), high))


def _window_rate(t: np.ndarray, cum_value: np.ndarray, cum_weight: np.ndarray, half: float) -> np.ndarray:
    """Centred time-window ratio Δvalue/Δweight of two cumulative, piecewise-linear-in-time series."""
    lo = np.maximum(t - half, t[0])
    hi = np.minimum(t + half, t[-1])
    dv = np.interp(hi, t, cum_value) - np.interp(lo, t, cum_value)
    dw = np.interp(hi, t, cum_weight) - np.interp(lo, t, cum_weight)
    return np.divide(dv, dw, out=_nans(t.shape[0]), where=dw > 1e-9)


def _kinematics(track: Track, threshold: float) -> _Kinematics:
    t = track.time
    n = t.shape[0]
    dist, fix, hops = bridged_distance(track.lat, track.lon)
    dt = t[1:] - t[:-1]  # np.diff's own subtraction, without its wrapper
    raw = _step_speeds(t, dt, fix, hops)
    no_speed = np.isnan(raw)
    timer = dt <= MAX_MOVING_GAP_S  # the step is not an auto-pause or a lost recording
    known = ~no_speed & timer

    # np.count_nonzero as the any() of a mask: the same answer, without the method's Python-level wrapper (~1 µs a
    # call, a fixed cost that adds up on short tracks).
    if n >= 2 and np.count_nonzero(known):
        filtered = _median_filter(raw, SPIKE_MEDIAN_STEPS, no_speed)
        w = np.where(known, dt, 0.0)
        cum_d = running_total(np.where(known, filtered, 0.0) * w)
        cum_w = running_total(w)
        velocity = _window_rate(t, cum_d, cum_w, SPEED_SMOOTH_HALF_WINDOW_S)
    else:
        velocity = _nans(n)
        cum_d = np.zeros(n)

    if n >= 2:
        moving = known & (raw > threshold) & (_pair_means(velocity) > threshold)
        indoor = no_speed & timer
        if np.count_nonzero(indoor):  # steps without a GPS speed (none on most outdoor tracks): cadence, power decide
            if track.has("cadence") or track.has("power"):
                active = (track.cadence > 0) | (track.power > 0)  # NaN compares False, as nan_to_num's 0 would
                indoor &= active[:-1] | active[1:]
            moving |= indoor
    else:
        moving = np.zeros(0, dtype=bool)
    cum_moving = running_total(np.where(moving, dt, 0.0)) if n else np.zeros(0)
    return _Kinematics(t=t, dist=dist, dt=dt, speed_raw=raw, velocity=velocity, cum_filtered=cum_d,
                       moving=moving, cum_moving=cum_moving, fix=fix)


def _max_speed(kin: _Kinematics) -> float | None:
    """The fastest pace held over MAX_SPEED_SPAN_M (see there); the largest smoothed speed on shorter tracks."""
    if kin.cum_filtered.shape[0] >= 2 and float(kin.cum_filtered[-1]) >= MAX_SPEED_SPAN_M:
        effort = best_efforts(kin.cum_filtered, kin.t, [MAX_SPEED_SPAN_M])[0]
        if effort is not None and effort["elapsed_time_s"] > 0:
            return MAX_SPEED_SPAN_M / float(effort["elapsed_time_s"])
    return _nanmax(kin.velocity)


def _pair_means(v: np.ndarray) -> np.ndarray:
    """The mean of every two consecutive values along the last axis, ignoring NaN (NaN only where both are NaN;
    n-1 of them per row)."""
    nan = np.isnan(v)
    a, b = v[..., :-1], v[..., 1:]
    if not np.count_nonzero(nan):  # what the general case computes without NaN: the same sums over the same count of 2
        return (a + b) / 2.0
    ok_a, ok_b = ~nan[..., :-1], ~nan[..., 1:]
    total = np.where(ok_a, a, 0.0) + np.where(ok_b, b, 0.0)
    count = ok_a.astype(np.float64) + ok_b
    return np.divide(total, count, out=_nans(total.shape), where=count > 0)


# --------------------------------------------------------------------------------------------------
# Elevation
# --------------------------------------------------------------------------------------------------


def smooth_by_time(t: np.ndarray, v: np.ndarray, half_window_s: float) -> np.ndarray:
    """Centred moving average over ±``half_window_s`` seconds, ignoring NaN; NaN where no value is near."""
    n = t.shape[0]
    if n == 0:
        return v.copy()
    ok = ~np.isnan(v)
    cs = running_total(np.where(ok, v, 0.0))
    cc = np.empty(n + 1, dtype=np.intp)  # [0, running count of known values]
    cc[0] = 0
    ok.cumsum(out=cc[1:])
    lo = t.searchsorted(t - half_window_s, side="left")
    hi = t.searchsorted(t + half_window_s, side="right")
    count = cc[hi] - cc[lo]
    return np.divide(cs[hi] - cs[lo], count, out=_nans(n), where=count > 0)


def hysteresis_gain_loss(ele: np.ndarray, threshold_m: float = ELE_HYSTERESIS_M) -> tuple[float, float]:
    """Total climb and descent of an (already smoothed, NaN-free) altitude profile.

    A zig-zag filter: a turning point is confirmed only once the altitude has moved more than
    ``threshold_m`` back from it, and only confirmed legs count (the last leg counts up to its extreme,
    which by construction is already more than ``threshold_m`` from the previous turning point). Noise
    smaller than the threshold therefore adds nothing, while a real climb counts in full. The profile is
    first reduced to its local extrema with numpy, so the Python loop runs over turning points only.
    """
    if ele.shape[0] < 2:
        return 0.0, 0.0
    sign = np.sign(ele[1:] - ele[:-1])
    steps = sign.nonzero()[0]
    turns = steps[1:][sign[steps[1:]] != sign[steps[:-1]]]
    values = ele[np.concatenate([[0], turns, [ele.shape[0] - 1]])].tolist()

    gain = loss = 0.0
    direction = 0
    lo = hi = ref = ext = values[0]
    for v in values[1:]:
        if direction == 0:
            lo, hi = min(lo, v), max(hi, v)
            if v - lo > threshold_m:
                direction, ref, ext = 1, lo, v
            elif hi - v > threshold_m:
                direction, ref, ext = -1, hi, v
        elif direction == 1:
            if v >= ext:
                ext = v
            elif ext - v > threshold_m:
                gain += ext - ref
                direction, ref, ext = -1, ext, v
        elif v <= ext:
            ext = v
        elif v - ext > threshold_m:
            loss += ref - ext
            direction, ref, ext = 1, ext, v
    if direction == 1:
        gain += ext - ref
    elif direction == -1:
        loss += ref - ext
    return gain, loss


# --------------------------------------------------------------------------------------------------
# Interpolation helpers over cumulative arrays
# --------------------------------------------------------------------------------------------------


def _first_time_at(dist: np.ndarray, t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Earliest time the cumulative distance reaches ``x`` (clamped to the track); the point at/after it is
    :func:`_first_index_at`'s."""
    n = t.shape[0]
    # np.minimum/np.maximum rather than np.clip: the same values, without clip's per-call overhead.
    j = np.minimum(np.maximum(dist.searchsorted(x, side="left"), 1), n - 1)
    d0, d1 = dist[j - 1], dist[j]
    span = d1 - d0
    f = np.minimum(np.maximum(np.divide(x - d0, span, out=np.ones_like(span), where=span > 0), 0.0), 1.0)
    out = t[j - 1] + f * (t[j] - t[j - 1])
    return np.where(x <= dist[0], t[0], out)


def _first_index_at(dist: np.ndarray, x: float) -> int:
    """The point at/after the moment :func:`_first_time_at` gives for one distance."""
    if x <= dist[0]:
        return 0
    return min(max(int(dist.searchsorted(x, side="left")), 1), dist.shape[0] - 1)


def _last_time_at(dist: np.ndarray, t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Latest time the cumulative distance is still ≤ ``x``; the point at/before it is :func:`_last_index_at`'s."""
    n = t.shape[0]
    k = np.minimum(np.maximum(dist.searchsorted(x, side="right"), 1), n - 1)
    d0, d1 = dist[k - 1], dist[k]
    span = d1 - d0
    f = np.minimum(np.maximum(np.divide(x - d0, span, out=np.ones_like(span), where=span > 0), 0.0), 1.0)
    return t[k - 1] + f * (t[k] - t[k - 1])


def _last_index_at(dist: np.ndarray, x: float) -> int:
    """The point at/before the moment :func:`_last_time_at` gives for one distance."""
    return min(max(int(dist.searchsorted(x, side="right")), 1), dist.shape[0] - 1) - 1


#: The columns whose means an activity reports (rows of a _Series), in this order; heart rate is also averaged per
#: split and per lap.
_MEAN_COLUMNS = ("hr", "cad", "power", "temp")
_HR_ROW = 0


@dataclass
class _Series:
    """Columns averaged over time (rows of ``values``; see the module docstring), with the sums every mean is read
    from: per row, the cumulative ∫v dt and ∫dt at each point, over the steps where v is known (the trapezoid, or
    the known end's value) and not longer than the max gap. Built once per activity: the whole activity's means,
    the splits' and the laps' read the same sums."""

    values: np.ndarray  # (k, n)
    known: np.ndarray   # (k, n) bool
    recorded: list[bool]  # per row: the file has any value
    cum_v: np.ndarray   # (k, n), 0 at the first point
    cum_w: np.ndarray   # (k, n), 0 at the first point


def _series(cols: np.ndarray, dt: np.ndarray) -> _Series:
    k, n = cols.shape
    known = ~np.isnan(cols)
    cum_v = np.zeros((k, n))
    cum_w = np.zeros((k, n))
    # Only the columns the file recorded: a column without any value sums to 0 throughout (as its NaN steps, weighted
    # 0, would), and most files lack two or three of the four.
    counts = np.count_nonzero(known, axis=1)
    rows = counts.nonzero()[0]
    if n >= 2 and rows.shape[0]:
        every = rows.shape[0] == k
        step_v = _pair_means(cols if every else cols[rows])  # the trapezoid's mean, or the known end's value
        w = np.where(~np.isnan(step_v) & (dt <= MAX_MOVING_GAP_S), dt, 0.0)
        if every:
            (_nan_to_num(step_v) * w).cumsum(axis=1, out=cum_v[:, 1:])
            w.cumsum(axis=1, out=cum_w[:, 1:])
        else:
            cum_v[rows, 1:] = (_nan_to_num(step_v) * w).cumsum(axis=1)
            cum_w[rows, 1:] = w.cumsum(axis=1)
    return _Series(values=cols, known=known, recorded=(counts > 0).tolist(), cum_v=cum_v, cum_w=cum_w)


def _sample_mean(series: _Series, row: int, lo: int = 0, hi: int | None = None) -> float | None:
    """The plain mean of a row's known values in points [lo, hi), the fallback where no step is usable (gappy or very
    short tracks): np.nanmean's own arithmetic (the sum with NaN as 0, over the count), without its overhead."""
    known = series.known[row, lo:hi]
    count = int(np.count_nonzero(known))
    if not count:
        return None
    return float(np.add.reduce(np.where(known, series.values[row, lo:hi], 0.0))) / count


def _whole_means(series: _Series) -> np.ndarray:
    """Each row's time-weighted mean over the whole activity (the plain sample mean as a fallback; NaN without any
    value)."""
    k, n = series.values.shape
    out = _nans(k)
    if n == 0:
        return out
    if n >= 2:
        den = series.cum_w[:, -1]
        np.divide(series.cum_v[:, -1], den, out=out, where=den > 1e-9)
    # NaN: no usable step (rare), or no value at all. A Python pass over the k rows costs less than numpy calls here.
    for i, mean in enumerate(out.tolist()):
        if mean != mean and series.recorded[i]:
            out[i] = _sample_mean(series, i)
    return out


def _interval_means(t: np.ndarray, series: _Series, row: int, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """Time-weighted mean of a row over each interval [t0, t1]; the plain sample mean as a fallback."""
    out = _nans(t0.shape[0])
    if t.shape[0] == 0 or not series.recorded[row]:
        return out
    if t.shape[0] >= 2:
        cv, cw = series.cum_v[row], series.cum_w[row]
        num = np.interp(t1, t, cv) - np.interp(t0, t, cv)
        den = np.interp(t1, t, cw) - np.interp(t0, t, cw)
        np.divide(num, den, out=out, where=den > 1e-9)
    need = np.isnan(out).nonzero()[0]  # rare: intervals with no usable step
    if need.size:
        los = t.searchsorted(t0[need], "left").tolist()
        his = t.searchsorted(t1[need], "right").tolist()
        for i, lo, hi in zip(need.tolist(), los, his, strict=True):
            mean = _sample_mean(series, row, lo, hi)
            if mean is not None:
                out[i] = mean
    return out


# --------------------------------------------------------------------------------------------------
# Splits, laps, best efforts
# --------------------------------------------------------------------------------------------------


def _interval_rows(kin: _Kinematics, h: _Headline, series: _Series, t0: np.ndarray, t1: np.ndarray,
                   lead: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-interval figures shared by splits and laps, each row after its ``lead`` keys (its number)."""
    t = kin.t
    dist = np.interp(t1, t, kin.dist) - np.interp(t0, t, kin.dist)
    moving = np.interp(t1, t, kin.cum_moving) - np.interp(t0, t, kin.cum_moving)
    if h.ele_ok.shape[0]:
        ele_diff = np.interp(t1, h.ele_t, h.ele_ok) - np.interp(t0, h.ele_t, h.ele_ok)
    else:
        ele_diff = _nans(t0.shape[0])
    avg_hr = _interval_means(t, series, _HR_ROW, t0, t1)
    speed = np.divide(dist, moving, out=_nans(t0.shape[0]), where=moving > 0)
    # Python floats first: indexing numpy arrays element by element costs more than the figures themselves.
    columns = zip(lead, dist.tolist(), (t1 - t0).tolist(), moving.tolist(), ele_diff.tolist(), speed.tolist(),
                  avg_hr.tolist(), strict=True)
    return [
        {
            **first,
            "distance_m": d,
            "elapsed_time_s": elapsed,
            "moving_time_s": m,
            "elevation_difference_m": _opt(e),
            "avg_speed_mps": _opt(v),
            "avg_hr": _opt(hr),
        }
        for first, d, elapsed, m, e, v, hr in columns
    ]


def _split_marks(kin: _Kinematics, unit_m: float) -> tuple[np.ndarray, bool] | None:
    """The distances of the full ``unit_m`` splits, and whether a trailing partial split follows; None for none."""
    if kin.t.shape[0] < 2:
        return None
    total = float(kin.dist[-1])
    n_full = math.floor(total / unit_m + 1e-9)
    if n_full == 0 and total <= MIN_PARTIAL_SPLIT_M:
        return None
    return np.arange(1, n_full + 1) * unit_m, total - n_full * unit_m > MIN_PARTIAL_SPLIT_M


def _splits(kin: _Kinematics, h: _Headline, series: _Series,
            units_m: tuple[float, ...]) -> list[list[dict[str, Any]]]:
    """Splits every ``unit_m`` metres for each of ``units_m``, each boundary at the interpolated moment it was
    crossed. All units share one crossing search and one pass over the intervals (every figure is computed per
    interval, so the rows are those of separate calls, for half the fixed numpy cost on short tracks)."""
    plans = [_split_marks(kin, unit) for unit in units_m]
    marks = [p[0] for p in plans if p is not None]
    if not marks:
        return [[] for _ in units_m]
    times = _first_time_at(kin.dist, kin.t, np.concatenate(marks))
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    counts: list[int] = []
    at = 0
    for plan in plans:
        if plan is None:
            counts.append(0)
            continue
        full = plan[0].shape[0]
        edges = np.empty(full + 1 + plan[1])  # t0, each crossing, then the end for a partial split
        edges[0] = kin.t[0]
        edges[1:full + 1] = times[at:at + full]
        if plan[1]:
            edges[-1] = kin.t[-1]
        at += full
        starts.append(edges[:-1])
        ends.append(edges[1:])
        counts.append(full + plan[1])
    lead = [{"split": i + 1} for count in counts for i in range(count)]
    rows = _interval_rows(kin, h, series, np.concatenate(starts), np.concatenate(ends), lead)
    out: list[list[dict[str, Any]]] = []
    at = 0
    for count in counts:
        out.append(rows[at:at + count])
        at += count
    return out


def _laps(kin: _Kinematics, h: _Headline, series: _Series, lap_starts: list[float]) -> list[dict[str, Any]]:
    """One row per device lap; lap starts outside the recording are ignored, the first lap starts at t0."""
    if not lap_starts or kin.t.shape[0] < 2:
        return []
    t_first, t_last = float(kin.t[0]), float(kin.t[-1])
    inner = sorted({float(x) for x in lap_starts if t_first < x < t_last})
    starts = np.array([t_first, *inner])
    ends = np.array([*inner, t_last])
    lead = [{"lap": i + 1, "start_time": start} for i, start in enumerate(starts.tolist())]
    return _interval_rows(kin, h, series, starts, ends, lead)


def best_efforts(dist: np.ndarray, t: np.ndarray,
                 lengths: np.ndarray | list[float]) -> list[dict[str, Any] | None]:
    """Fastest elapsed time to cover each of ``lengths`` metres anywhere in the track (interpolated).

    Time as a function of distance is piecewise linear, so an optimal window has one end on a recorded
    point: try every point as the start (end = first moment the distance reaches start + length) and
    every point as the end (start = last moment the distance was still end - length). All lengths are
    answered by two batched searchsorted calls over the cumulative distance: O(k n log n), no loop over
    pairs of points. ``None`` for a length longer than the track.
    """
    n = t.shape[0]
    lengths = np.asarray(lengths, dtype=np.float64)
    if n < 2:
        return [None] * lengths.shape[0]
    total = float(dist[-1])
    # Slack so a track of "exactly" 5000 m summed from float steps still has a 5k effort.
    slack = 1e-9 * total + 1e-6
    fits = lengths <= total + slack
    ls = lengths[fits]
    k = ls.shape[0]
    out: list[dict[str, Any] | None] = [None] * lengths.shape[0]
    if k == 0:
        return out
    ends_at = (dist[None, :] + ls[:, None]).ravel()
    starts_at = (dist[None, :] - ls[:, None]).ravel()
    if ((dist[1:] - dist[:-1]) > 0).all():
        # Strictly increasing distance (no stop recorded as zero steps): first and last time at a
        # distance coincide and np.interp does search and interpolation in one cheaper pass.
        t_end = np.interp(ends_at, dist, t)
        t_start = np.interp(starts_at, dist, t)
    else:
        t_end = _first_time_at(dist, t, ends_at)
        t_start = _last_time_at(dist, t, starts_at)
    a = t_end.reshape(k, n) - t[None, :]
    a[ends_at.reshape(k, n) > total + slack] = np.inf  # window runs off the end
    b = t[None, :] - t_start.reshape(k, n)
    b[starts_at.reshape(k, n) < -slack] = np.inf  # window starts before the track
    ia, ib = a.argmin(axis=1), b.argmin(axis=1)
    for r, pos in enumerate(np.flatnonzero(fits)):
        ea, eb = a[r, ia[r]], b[r, ib[r]]
        if not (math.isfinite(ea) or math.isfinite(eb)):
            continue
        if ea <= eb:
            s_idx, e_idx, elapsed = int(ia[r]), _first_index_at(dist, dist[ia[r]] + ls[r]), float(ea)
        else:
            s_idx, e_idx, elapsed = _last_index_at(dist, dist[ib[r]] - ls[r]), int(ib[r]), float(eb)
        out[pos] = {"distance_m": float(ls[r]), "elapsed_time_s": elapsed,
                    "start_index": s_idx, "end_index": e_idx}
    return out


def _best_efforts(kin: _Kinematics) -> list[dict[str, Any]]:
    found = best_efforts(kin.dist, kin.t, [length for _, length in BEST_EFFORTS])
    return [{"name": name, **e} for (name, _), e in zip(BEST_EFFORTS, found, strict=True) if e is not None]


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def _first_last_fix(track: Track, fix: np.ndarray) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    if fix.shape[0] == 0:
        return None, None
    i, j = int(fix[0]), int(fix[-1])
    return (float(track.lat[i]), float(track.lon[i])), (float(track.lat[j]), float(track.lon[j]))


def _nanmax(v: np.ndarray) -> float | None:
    """The largest value ignoring NaN, None without any: np.nanmax's own reduction (fmax skips NaN) without its
    wrapper and the separate any-value test, a dozen µs of fixed cost per call on a short track."""
    if v.shape[0] == 0:
        return None
    top = float(np.fmax.reduce(v))
    return None if top != top else top


@dataclass
class _Headline:
    """The figures every summary starts from (the whole activity's, or a stretch's)."""

    distance: float
    elapsed: float
    moving_time: float
    avg_speed: float | None
    gain: float | None
    loss: float | None
    #: The known values of the altitude smoothed by time, and their times.
    ele_ok: np.ndarray
    ele_t: np.ndarray


def _headline(track: Track, kin: _Kinematics) -> _Headline:
    n = len(track)
    t = track.time
    distance = float(kin.dist[-1]) if n else 0.0
    moving_time = float(kin.cum_moving[-1]) if n else 0.0
    ele_s = smooth_by_time(t, track.ele, ELE_SMOOTH_HALF_WINDOW_S)
    ele_s[np.isnan(track.ele)] = np.nan
    ele_known = ~np.isnan(ele_s)
    ele_ok = ele_s[ele_known]
    gain = loss = None
    if ele_ok.shape[0]:
        gain, loss = hysteresis_gain_loss(ele_ok, ELE_HYSTERESIS_M)
    return _Headline(
        distance=distance, elapsed=float(t[-1] - t[0]) if n else 0.0, moving_time=moving_time,
        avg_speed=(distance / moving_time if moving_time > 0 else 0.0) if kin.has_gps else None,
        gain=gain, loss=loss, ele_ok=ele_ok, ele_t=t[ele_known])


def headline_figures(track: Track, sport: str | None = None) -> dict[str, float | None]:
    """Distance, elapsed and moving time, climb and average speed: :func:`compute_metrics`'s figures of the same
    name, without the splits, laps, best efforts and means it also works out (a stretch needs only these)."""
    h = _headline(track, _kinematics(track, MOVING_THRESHOLD_MPS[sport_family(sport or track.sport)]))
    return {"distance_m": h.distance, "elapsed_time_s": h.elapsed, "moving_time_s": h.moving_time,
            "elevation_gain_m": h.gain, "avg_speed_mps": h.avg_speed}


def compute_metrics(track: Track, sport: str | None = None) -> ActivityMetrics:
    """All summary figures of one activity; ``sport`` overrides the track's own sport name."""
    sport_name = sport or track.sport
    family = sport_family(sport_name)
    n = len(track)
    t = track.time
    kin = _kinematics(track, MOVING_THRESHOLD_MPS[family])
    has_gps = kin.has_gps
    h = _headline(track, kin)
    ele_ok = h.ele_ok

    cad = np.where(track.cadence > 0, track.cadence, np.nan)  # cadence averages exclude zeros (coasting)
    series = _series(np.array([track.hr, cad, track.power, track.temp]), kin.dt)  # rows as in _MEAN_COLUMNS
    means = dict(zip(_MEAN_COLUMNS, _whole_means(series).tolist(), strict=True))

    def mean_of(c: str) -> float | None:
        return _opt(means[c]) if n else None

    start_ll, end_ll = _first_last_fix(track, kin.fix)
    splits_metric, splits_standard = _splits(kin, h, series, (KM_M, MILE_M)) if has_gps else ([], [])
    return ActivityMetrics(
        distance_m=h.distance,
        elapsed_time_s=h.elapsed,
        moving_time_s=h.moving_time,
        elevation_gain_m=h.gain,
        elevation_loss_m=h.loss,
        avg_speed_mps=h.avg_speed,
        max_speed_mps=_max_speed(kin),
        avg_hr=mean_of("hr"),
        max_hr=_nanmax(track.hr),
        avg_cadence=mean_of("cad"),
        avg_power=mean_of("power"),
        max_power=_nanmax(track.power),
        avg_temp=mean_of("temp"),
        start_latlng=start_ll,
        end_latlng=end_ll,
        bounds=geo_bounds(track.lat, track.lon, kin.fix),
        elev_high_m=float(ele_ok.max()) if ele_ok.shape[0] else None,
        elev_low_m=float(ele_ok.min()) if ele_ok.shape[0] else None,
        start_time=float(t[0]) if n else None,
        point_count=n,
        sport=sport_name,
        splits_metric=splits_metric,
        splits_standard=splits_standard,
        laps=_laps(kin, h, series, track.laps),
        best_efforts=_best_efforts(kin) if has_gps and family == "running" else [],
    )


def derived_streams(track: Track, sport: str | None = None) -> dict[str, np.ndarray]:
    """Per-point streams computed from the track (all length ``n``).

    * ``distance``: cumulative metres (GPS gaps bridged; zeros without GPS).
    * ``velocity_smooth``: m/s, spike-robust and smoothed over ±5 s; NaN without GPS.
    * ``grade_smooth``: percent, from altitude smoothed over ±15 s, measured over ±25 m of distance;
      NaN where altitude or position is unknown, 0 while standing still.
    * ``moving``: 1 where the step arriving at the point was moving (the first point copies the first step).
    """
    family = sport_family(sport or track.sport)
    n = len(track)
    kin = _kinematics(track, MOVING_THRESHOLD_MPS[family])
    moving = np.zeros(n, dtype=np.uint8)
    if n >= 2:
        moving[1:] = kin.moving
        moving[0] = kin.moving[0]
    return {
        "distance": kin.dist,
        "velocity_smooth": kin.velocity,
        "grade_smooth": _grade(track, kin),
        "moving": moving,
    }


def _grade(track: Track, kin: _Kinematics) -> np.ndarray:
    n = len(track)
    grade = _nans(n)
    ele_s = smooth_by_time(kin.t, track.ele, ELE_SMOOTH_HALF_WINDOW_S)
    known = ~np.isnan(ele_s)
    if n < 2 or not kin.has_gps or not known.any():
        return grade
    idx = np.arange(n, dtype=np.float64)
    ele_f = np.interp(idx, idx[known], ele_s[known])  # fill short holes so interpolation by distance works
    d = kin.dist
    lo = np.maximum(d - GRADE_HALF_WINDOW_M, d[0])
    hi = np.minimum(d + GRADE_HALF_WINDOW_M, d[-1])
    # Distance -> fractional point index (first time reached), then altitude at that index.
    f_lo = _first_time_at(d, idx, lo)
    f_hi = _first_time_at(d, idx, hi)
    rise = np.interp(f_hi, idx, ele_f) - np.interp(f_lo, idx, ele_f)
    span = hi - lo
    grade = np.where(span >= GRADE_MIN_SPAN_M, 100.0 * rise / np.maximum(span, GRADE_MIN_SPAN_M), 0.0)
    grade[~known] = np.nan
    return grade


def resample_indices(n: int, resolution: str) -> np.ndarray:
    """Evenly spread point indices for a stream resolution (low=100, medium=1000, high=10000).

    All points when there are no more than the target; otherwise exactly the target count, always
    including the first and last point (rounded linspace: spacing > 1 keeps the indices distinct).
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"unknown resolution {resolution!r}; expected one of {sorted(RESOLUTIONS)}")
    target = RESOLUTIONS[resolution]
    if n <= target:
        return np.arange(max(n, 0))
    return np.round(np.linspace(0.0, n - 1, target)).astype(np.int64)
