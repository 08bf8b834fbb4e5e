"""Turn a parser's raw, file-ordered track into the clean series the metrics expect.

Steps, in order (each explained where it is implemented):

1. Physically impossible values become NaN (coordinates, "null island", HR, cadence, power, elevation,
   temperature, timestamps outside 1980-2100).
2. Points with neither a time nor a position are dropped.
3. Time must strictly increase. The track is never re-sorted (that would silently invent a route);
   a point whose time repeats or goes backwards is dropped and the first occurrence kept.
4. Points without a time (some GPS units only stamp a few fixes) get one by interpolating along the
   distance travelled between the surrounding timed points (by point index where no distance is
   known); untimed points before the first or after the last timed point are dropped, since nothing
   bounds their time. A track without any time (a planned or drawn route exported as a track) or with a
   single timed point is refused with a sentence saying so: without two times there is no duration,
   speed or pace, and segment times or records would be invented.
5. GPS spikes - a fix implying a speed above ``max_speed_mps`` from the previous kept fix - lose
   their position (time, HR etc. stay). If several rejected fixes in a row agree with each other, the
   receiver really did jump (or the earlier fixes were the outliers) and the new position is accepted.
6. A pause longer than :data:`MAX_PAUSE_S` (a day) means the file holds separate recordings (a GPX with
   one track per outing, days or months apart): it is refused with the dates, rather than stored as one
   activity lasting weeks.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from domain.algorithms.geo import cumulative_distance, fix_indices, haversine_m, hop_distances
from domain.algorithms.parsing.common import MAX_POINTS, too_many_points
from domain.algorithms.track import COLUMNS, ParseError, Track

#: Default spike threshold: 100 m/s (360 km/h) is beyond any human-powered or road activity.
MAX_SPEED_MPS = 100.0
#: This many consecutive, mutually consistent rejected fixes are taken as a real relocation.
RELOCATE_AFTER = 5

#: Longest pause inside one activity; a longer one means the file joins separate recordings.
MAX_PAUSE_S = 86_400.0

MSG_NO_TIMES = ("The track has no timestamps: it looks like a planned route rather than a recorded activity, "
                "so there is no time, pace or speed to show. Upload the recording from your device or app instead.")
MSG_ONE_POINT = ("The track has only one point with a time, so there is no distance or duration to record: "
                 "an activity needs at least two.")
MSG_NO_POINTS_WITH_TIME = "No track points with time found"

MIN_TIME = 315_532_800.0  # 1980-01-01T00:00:00Z, before any consumer GPS logger
MAX_TIME = 4_102_444_800.0  # 2100-01-01T00:00:00Z

#: Inclusive plausible ranges; values outside become NaN.
RANGES: dict[str, tuple[float, float]] = {
    "hr": (20.0, 255.0),
    "cadence": (0.0, 255.0),
    "power": (0.0, 3000.0),
    "ele": (-500.0, 9000.0),
    "temp": (-90.0, 80.0),
}


def normalize(track: Track, *, max_speed_mps: float = MAX_SPEED_MPS, max_points: int = MAX_POINTS) -> Track:
    """A cleaned copy of ``track`` (see the module docstring); raises ParseError when nothing usable remains."""
    n = len(track)
    if n == 0:
        raise ParseError("The file contains no track points")
    if n > max_points:
        raise too_many_points()
    # One copy of every column, as the rows of one block: the range rule is then a handful of numpy calls for all
    # of them instead of a handful per column (the fixed cost that dominates a short file).
    block = np.array([getattr(track, c) for c in COLUMNS], dtype=np.float64)
    _clear_out_of_range(block)
    cols = dict(zip(COLUMNS, block, strict=True))

    has_time = ~np.isnan(cols["time"])
    has_pos = ~np.isnan(cols["lat"])
    timed = np.count_nonzero(has_time)
    if timed == 0:
        raise ParseError(MSG_NO_TIMES if np.count_nonzero(has_pos) >= 2 else MSG_NO_POINTS_WITH_TIME)
    if timed == 1:
        raise ParseError(MSG_ONE_POINT)
    if timed < n:  # (nearly every recording has a time on every point)
        cols = _take(cols, has_time | has_pos)
        cols = _take(cols, _increasing(cols["time"]))
        cols = _fill_missing_times(cols)  # every point kept has a time from here on
    cols = _take(cols, _increasing(cols["time"], untimed=False))
    if len(cols["time"]) < 2:
        raise ParseError(MSG_ONE_POINT)
    _refuse_separate_recordings(cols["time"])

    spikes = find_spikes(cols["time"], cols["lat"], cols["lon"], max_speed_mps)
    cols["lat"][spikes] = np.nan
    cols["lon"][spikes] = np.nan

    return Track(**cols, laps=list(track.laps), sport=track.sport, name=track.name, device=track.device,
                 totals=dict(track.totals))


def _refuse_separate_recordings(t: np.ndarray) -> None:
    gaps = t[1:] - t[:-1]  # np.diff's own subtraction, without its wrapper
    k = int(gaps.argmax())
    if gaps[k] > MAX_PAUSE_S:
        days = gaps[k] / 86_400.0
        apart = f"{days:.0f} days" if days >= 1.5 else "more than a day"
        before = datetime.fromtimestamp(float(t[k]), UTC).date().isoformat()
        after = datetime.fromtimestamp(float(t[k + 1]), UTC).date().isoformat()
        raise ParseError(
            f"The file holds recordings {apart} apart ({before} and {after}), more than one activity: "
            "upload each activity as its own file.")


def _take(cols: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    if np.count_nonzero(mask) == mask.shape[0]:  # mask.all(), without the method's Python-level wrapper
        return cols
    return {c: v[mask] for c, v in cols.items()}


#: The inclusive range of each row of a block of COLUMNS (time and RANGES; none for the positions, which have the
#: rule of their own in _clear_out_of_range), shaped to broadcast against the block.
_BOUNDS = {"time": (MIN_TIME, MAX_TIME), **RANGES}
_LOW = np.array([[_BOUNDS.get(c, (-np.inf, np.inf))[0]] for c in COLUMNS])
_HIGH = np.array([[_BOUNDS.get(c, (-np.inf, np.inf))[1]] for c in COLUMNS])
_LAT, _LON = COLUMNS.index("lat"), COLUMNS.index("lon")


def _clear_out_of_range(block: np.ndarray) -> None:
    """NaN for values outside their plausible range, in place (``block``: the COLUMNS as rows)."""
    lat, lon = block[_LAT], block[_LON]
    # Comparisons with NaN are False and quiet. A missing latitude or longitude makes the position unknown.
    bad_pos = ~((lat >= -90.0) & (lat <= 90.0) & (lon >= -180.0) & (lon <= 180.0))
    bad_pos |= (lat == 0.0) & (lon == 0.0)  # "null island": a receiver reporting no fix as 0,0
    lat[bad_pos] = np.nan
    lon[bad_pos] = np.nan
    block[(block < _LOW) | (block > _HIGH)] = np.nan  # (a NaN is neither, and stays NaN)


def _increasing(t: np.ndarray, untimed: bool = True) -> np.ndarray:
    """Keep mask: untimed points, and timed points later than every earlier timed point. ``untimed=False`` says
    that every point has a time, which spares the NaN handling."""
    filled = np.where(np.isnan(t), -np.inf, t) if untimed else t
    previous_max = np.empty_like(filled)
    previous_max[0] = -np.inf
    np.maximum.accumulate(filled[:-1], out=previous_max[1:])
    later = t > previous_max
    return np.isnan(t) | later if untimed else later


def _fill_missing_times(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    t = cols["time"]
    timed = (~np.isnan(t)).nonzero()[0]
    first, last = int(timed[0]), int(timed[-1])
    if first > 0 or last < t.shape[0] - 1:
        # A slice takes the rows a mask of [first, last] would; copied so that a short track does not keep a long
        # file's columns alive.
        cols = {c: v[first:last + 1].copy() for c, v in cols.items()}
    t = cols["time"]
    untimed = np.isnan(t).nonzero()[0]
    if untimed.size == 0:
        return cols
    timed = (~np.isnan(t)).nonzero()[0]
    right = np.searchsorted(timed, untimed)
    a, b = timed[right - 1], timed[right]
    along = cumulative_distance(cols["lat"], cols["lon"])
    span = along[b] - along[a]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(span > 0, (along[untimed] - along[a]) / span, (untimed - a) / (b - a))
    t[untimed] = t[a] + frac * (t[b] - t[a])
    return cols


def find_spikes(t: np.ndarray, lat: np.ndarray, lon: np.ndarray, max_speed_mps: float = MAX_SPEED_MPS,
                relocate_after: int = RELOCATE_AFTER) -> np.ndarray:
    """Indices of fixes implying more than ``max_speed_mps`` from the previous kept fix.

    ``t`` must be strictly increasing. The common case (no jump anywhere) is one vectorised pass; the
    sequential walk only visits the stretches after a too-fast step.
    """
    idx = fix_indices(lat, lon)
    m = idx.size
    if m < 2:
        return np.zeros(0, dtype=np.int64)
    plat, plon, pt = (lat, lon, t) if m == t.shape[0] else (lat[idx], lon[idx], t[idx])
    step = hop_distances(plat, plon)
    jumps = (step > max_speed_mps * (pt[1:] - pt[:-1])).nonzero()[0] + 1  # second fix of each too-fast step
    if jumps.size == 0:
        return np.zeros(0, dtype=np.int64)

    la, lo, ti = plat.tolist(), plon.tolist(), pt.tolist()

    def too_fast(i: int, j: int) -> bool:
        d = float(haversine_m(la[i], lo[i], la[j], lo[j]))
        return d > max_speed_mps * (ti[j] - ti[i])

    keep = np.ones(m, dtype=bool)
    anchor, cluster_start, j = 0, 0, 1
    run: list[int] = []  # consecutive rejected fixes that agree with each other
    while j < m:
        if not run and anchor == j - 1:
            k = int(np.searchsorted(jumps, j))
            if k == jumps.size:
                break
            j = int(jumps[k])
            anchor = j - 1
        if too_fast(anchor, j):
            keep[j] = False
            run = [*run, j] if run and not too_fast(run[-1], j) else [j]
            if len(run) >= relocate_after:
                # The rejected fixes form a consistent track of their own: accept the move. If the fixes
                # kept since the last move are fewer, they were the outliers (e.g. a stale first fix).
                keep[run] = True
                if np.count_nonzero(keep[cluster_start:run[0]]) < len(run):
                    keep[cluster_start:run[0]] = False
                cluster_start, anchor, run = run[0], run[-1], []
        else:
            anchor, run = j, []
        j += 1
    return idx[~keep]
