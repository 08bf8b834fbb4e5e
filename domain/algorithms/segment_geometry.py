"""Segment geometry: validation, summary statistics and vertex simplification.

A segment is a polyline (lat/lon, optionally elevation) that efforts are timed on. Everything here is
pure numpy on whole arrays; planar work uses the local projection from :mod:`domain.algorithms.geo`, which keeps
segments that cross the antimeridian continuous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from domain.algorithms.geo import bounds as latlon_bounds
from domain.algorithms.geo import cumulative_distance, step_distances, to_local_xy, wrap_lon

MIN_SEGMENT_LENGTH_M = 100.0
MAX_SEGMENT_LENGTH_M = 100_000.0
#: A single step longer than this is a missing stretch of data (or a corrupt point), not a road.
MAX_POINT_SPACING_M = 5_000.0

#: Elevation is resampled on this distance grid before any grade work, so grades do not depend on how
#: densely the segment happened to be recorded.
GRADE_GRID_M = 10.0
#: Max grade is the steepest grade over any window of this length: GPS/barometric noise of a metre or
#: two over 10 m would otherwise report 20-40 % "ramps" on ordinary roads.
MAX_GRADE_WINDOW_M = 100.0

#: Climb score (distance_m × avg_grade_pct) thresholds, steepest category first.
CLIMB_CATEGORY_THRESHOLDS: tuple[tuple[str, float], ...] = (
    ("HC", 80_000.0),
    ("1", 64_000.0),
    ("2", 32_000.0),
    ("3", 16_000.0),
    ("4", 8_000.0),
)
#: Below this average grade a segment is not a climb whatever its length (a long false flat).
MIN_CLIMB_GRADE_PCT = 3.0


@dataclass(frozen=True)
class SegmentStats:
    distance_m: float
    #: Elevation-derived fields are None when the segment has no elevation.
    elevation_gain_m: float | None
    avg_grade_pct: float | None
    max_grade_pct: float | None
    #: "4", "3", "2", "1", "HC" or None (not a categorised climb / no elevation).
    climb_category: str | None
    #: (min_lat, min_lon, max_lat, max_lon). A segment crossing the antimeridian has min_lon > max_lon
    #: (the RFC 7946 convention), so the box stays small instead of spanning the globe.
    bounds: tuple[float, float, float, float]
    start_latlng: tuple[float, float]
    end_latlng: tuple[float, float]


def validate_segment(lat: np.ndarray, lon: np.ndarray) -> None:
    """Raise ValueError with a user-facing sentence when the polyline cannot be a segment."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    if lat.ndim != 1 or lon.ndim != 1 or lat.shape != lon.shape:
        raise ValueError("Segment latitudes and longitudes must be two lists of the same length.")
    if lat.shape[0] < 2:
        raise ValueError(f"A segment needs at least 2 points; this one has {lat.shape[0]}.")
    if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon))):
        raise ValueError("The segment has points without a valid position (NaN or infinite coordinates).")
    if np.any(np.abs(lat) > 90.0) or np.any(np.abs(lon) > 180.0):
        raise ValueError("The segment has coordinates out of range (latitude ±90°, longitude ±180°).")
    steps = step_distances(lat, lon)
    worst = int(np.argmax(steps))
    if steps[worst] > MAX_POINT_SPACING_M:
        raise ValueError(
            f"Points {worst} and {worst + 1} of the segment are {steps[worst] / 1000:.1f} km apart; "
            f"consecutive points may be at most {MAX_POINT_SPACING_M / 1000:.0f} km apart."
        )
    length = float(steps.sum())
    if length < MIN_SEGMENT_LENGTH_M:
        raise ValueError(f"The segment is {length:.0f} m long; segments must be at least "
                         f"{MIN_SEGMENT_LENGTH_M:.0f} m.")
    if length > MAX_SEGMENT_LENGTH_M:
        raise ValueError(f"The segment is {length / 1000:.1f} km long; segments may be at most "
                         f"{MAX_SEGMENT_LENGTH_M / 1000:.0f} km.")


def segment_stats(lat: np.ndarray, lon: np.ndarray, ele: np.ndarray | None = None) -> SegmentStats:
    """Distance, climbing figures, bounds and end points of a (valid) segment polyline."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    dist = cumulative_distance(lat, lon)
    total = float(dist[-1]) if dist.shape[0] else 0.0

    profile = _elevation_grid(dist, np.asarray(ele, dtype=np.float64)) if ele is not None else None
    if profile is None:
        gain = avg_grade = max_grade = None
        category = None
    else:
        grid_d, grid_e = profile
        gain = float(np.maximum(np.diff(grid_e), 0.0).sum())
        avg_grade = float((grid_e[-1] - grid_e[0]) / total * 100.0) if total > 0 else 0.0
        max_grade = _max_window_grade(grid_d, grid_e, MAX_GRADE_WINDOW_M)
        category = climb_category(total, avg_grade)

    return SegmentStats(
        distance_m=total,
        elevation_gain_m=gain,
        avg_grade_pct=avg_grade,
        max_grade_pct=max_grade,
        climb_category=category,
        bounds=_segment_bounds(lat, lon),
        start_latlng=(float(lat[0]), float(lon[0])),
        end_latlng=(float(lat[-1]), float(lon[-1])),
    )


def climb_category(distance_m: float, avg_grade_pct: float) -> str | None:
    """Strava-like category from score = distance × average grade; None if not a climb."""
    if avg_grade_pct < MIN_CLIMB_GRADE_PCT:
        return None
    score = distance_m * avg_grade_pct
    for label, threshold in CLIMB_CATEGORY_THRESHOLDS:
        if score >= threshold:
            return label
    return None


def _elevation_grid(dist: np.ndarray, ele: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Elevation resampled every GRADE_GRID_M along the distance, or None without elevation.

    Missing (NaN) elevations are bridged by linear interpolation between the known ones.
    """
    known = np.isfinite(ele)
    if ele.shape != dist.shape or not known.any() or dist[-1] <= 0:
        return None
    # Distance must be strictly increasing for interp; duplicate points keep their first elevation.
    d_known, first = np.unique(dist[known], return_index=True)
    e_known = ele[known][first]
    n = max(2, int(np.ceil(dist[-1] / GRADE_GRID_M)) + 1)
    grid_d = np.linspace(0.0, dist[-1], n)
    return grid_d, np.interp(grid_d, d_known, e_known)


def _max_window_grade(grid_d: np.ndarray, grid_e: np.ndarray, window_m: float) -> float:
    """Steepest grade (%) over any window of ``window_m`` (the whole profile if it is shorter)."""
    step = grid_d[1] - grid_d[0]
    w = int(np.ceil(window_m / step - 1e-9)) if step > 0 else 0
    if w < 1 or w >= grid_d.shape[0]:
        return float((grid_e[-1] - grid_e[0]) / max(grid_d[-1], 1e-9) * 100.0)
    rise = grid_e[w:] - grid_e[:-w]
    return float(np.max(rise) / (grid_d[w] - grid_d[0]) * 100.0)


def _segment_bounds(lat: np.ndarray, lon: np.ndarray) -> tuple[float, float, float, float]:
    box = latlon_bounds(lat, lon)
    if box is None:
        raise ValueError("The segment has no valid position.")
    min_lat, min_lon, max_lat, max_lon = box
    if max_lon - min_lon > 180.0:
        # Probably crosses the antimeridian: measure longitudes relative to the start, unwrapped.
        rel = wrap_lon(lon - lon[0])
        if float(rel.max() - rel.min()) < max_lon - min_lon:
            min_lon = float(wrap_lon(lon[0] + rel.min()))
            max_lon = float(wrap_lon(lon[0] + rel.max()))
    return (min_lat, min_lon, max_lat, max_lon)


def simplify_indices(lat: np.ndarray, lon: np.ndarray, tolerance_m: float) -> np.ndarray:
    """Indices of the vertices Douglas–Peucker keeps (always the first and last), ascending.

    Distances are to the chord *segment* (not the infinite line), which keeps out-and-back shapes intact.
    Each range's split depends on that range alone, so the ranges are split a generation at a time: every
    range of a generation in one vectorised pass (a handful of numpy calls per generation, ~log n
    generations), where splitting range by range made a few numpy calls per kept vertex, which cost more
    than the arithmetic on real tracks. The vertices kept are the same, ties included (the first farthest
    vertex of a range splits it).
    """
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    n = lat.shape[0]
    if n <= 2:
        return np.arange(n)
    x, y = to_local_xy(lat, lon, float(lat[0]), float(lon[0]))
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    starts, ends = np.array([0], dtype=np.int64), np.array([n - 1], dtype=np.int64)
    while True:
        inner = ends - starts - 1
        open_ = inner > 0
        starts, ends, inner = starts[open_], ends[open_], inner[open_]
        if not starts.size:
            break
        offsets = np.cumsum(inner) - inner  # where each range's interior begins in the flat arrays
        owner = np.repeat(np.arange(starts.size), inner)
        idx = np.arange(int(offsets[-1] + inner[-1])) - offsets[owner] + starts[owner] + 1
        a, b = starts[owner], ends[owner]
        d = _point_segment_distance(x[idx], y[idx], x[a], y[a], x[b], y[b])
        farthest = np.maximum.reduceat(d, offsets)
        # The first vertex of each range at its maximum (what argmax picks range by range).
        at_max = np.flatnonzero(d == farthest[owner])
        _, first = np.unique(owner[at_max], return_index=True)
        split = farthest > tolerance_m
        mids = idx[at_max[first]][split]
        keep[mids] = True
        starts, ends = np.concatenate([starts[split], mids]), np.concatenate([mids, ends[split]])
    return np.flatnonzero(keep)


def simplify(lat: np.ndarray, lon: np.ndarray, tolerance_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Douglas–Peucker simplified polyline: no removed vertex is farther than ``tolerance_m`` from it."""
    idx = simplify_indices(lat, lon, tolerance_m)
    return np.asarray(lat, dtype=np.float64)[idx], np.asarray(lon, dtype=np.float64)[idx]


def _point_segment_distance(px: np.ndarray, py: np.ndarray, ax: np.ndarray, ay: np.ndarray,
                            bx: np.ndarray, by: np.ndarray) -> np.ndarray:
    """Distance of each point to its segment a–b (element by element; a zero-length segment is its end a)."""
    dx, dy = bx - ax, by - ay
    len2 = dx * dx + dy * dy
    # A zero-length segment has dx = dy = 0, so its numerator is 0 and t = 0: the distance to a.
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / np.where(len2 > 0.0, len2, 1.0), 0.0, 1.0)
    return np.hypot(px - (ax + t * dx), py - (ay + t * dy))
