"""Vectorised spherical geometry on numpy arrays.

Haversine for distances (accurate to ~0.3 % anywhere, which is far below GPS noise) and a local
equirectangular projection for the planar work (privacy zones, matching) where a track spans at most
a few hundred kilometres. Longitudes are unwrapped around the reference point so tracks crossing the
antimeridian stay continuous.
"""

from __future__ import annotations

import numpy as np

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lat1: np.ndarray | float, lon1: np.ndarray | float,
                lat2: np.ndarray | float, lon2: np.ndarray | float) -> np.ndarray:
    """Great-circle distance in metres between two (arrays of) points given in degrees."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2.0) ** 2
    return _central_angle_m(a)


def _central_angle_m(a: np.ndarray) -> np.ndarray:
    """The haversine formula's last step: metres from the squared half-chord ``a`` (clipped into [0, 1] against
    rounding; np.minimum/np.maximum give np.clip's values, NaN included, without its per-call overhead)."""
    return 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(np.maximum(a, 0.0), 1.0)))


def hop_distances(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """``haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])``, the same arithmetic value for value, with each point's
    radians and cosine computed once rather than once per neighbour (length n-1; NaN next to a missing position)."""
    p = np.radians(lat)
    cos_p = np.cos(p)
    dphi = p[1:] - p[:-1]
    dlmb = np.radians(lon[1:] - lon[:-1])
    a = np.sin(dphi / 2.0) ** 2 + cos_p[:-1] * cos_p[1:] * np.sin(dlmb / 2.0) ** 2
    return _central_angle_m(a)


def step_distances(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Distance from each point to the next (length n-1); a step touching a missing position is 0."""
    if lat.shape[0] < 2:
        return np.zeros(0)
    d = hop_distances(lat, lon)
    return np.where(np.isnan(d), 0.0, d)  # np.nan_to_num(d, nan=0.0): a haversine is never infinite


def cumulative_distance(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Distance along the track at each point (length n, starting at 0); a step touching a missing position adds 0
    (:func:`bridged_distance` bridges the gap instead)."""
    if lat.shape[0] < 2:
        return np.zeros(lat.shape[0])
    return running_total(step_distances(lat, lon))


def running_total(steps: np.ndarray) -> np.ndarray:
    """``[0, s0, s0 + s1, ...]`` (length n+1): np.cumsum written after a leading zero (the same sums, added in
    order), without building and concatenating a one-element array (a fixed cost that shows on short tracks)."""
    out = np.empty(steps.shape[0] + 1)
    out[0] = 0.0
    steps.cumsum(out=out[1:])
    return out


def bridged_distance(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance along the track at every point with position gaps bridged (length n): each hop joins two consecutive
    known positions, and a point without one holds the distance of the last fix at or before it (0 before the
    first), so a tunnel neither resets nor loses distance. Also the fix indices and the hop lengths."""
    n = lat.shape[0]
    fix = fix_indices(lat, lon)
    if fix.shape[0] < 2:
        return np.zeros(n), fix, np.zeros(0)
    if fix.shape[0] == n:  # the common case, every point has a fix: the hops are those of consecutive points
        hops = hop_distances(lat, lon)
        return running_total(hops), fix, hops
    hops = hop_distances(lat[fix], lon[fix])
    at_fix = running_total(hops)
    owner = fix.searchsorted(np.arange(n), side="right") - 1
    return np.where(owner >= 0, at_fix[np.maximum(owner, 0)], 0.0), fix, hops


def wrap_lon(lon: np.ndarray | float) -> np.ndarray:
    """Normalise longitudes to [-180, 180)."""
    return (np.asarray(lon) + 180.0) % 360.0 - 180.0


def to_local_xy(lat: np.ndarray, lon: np.ndarray, lat0: float | np.ndarray,
                lon0: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project to a local plane in metres centred on (lat0, lon0): x east, y north.

    The centre may also be one per point (arrays broadcast against ``lat``/``lon``).
    """
    dlon = wrap_lon(np.asarray(lon, dtype=np.float64) - lon0)
    x = np.radians(dlon) * EARTH_RADIUS_M * np.cos(np.radians(lat0))
    y = np.radians(np.asarray(lat, dtype=np.float64) - lat0) * EARTH_RADIUS_M
    return x, y


def from_local_xy(x: np.ndarray, y: np.ndarray, lat0: float | np.ndarray,
                  lon0: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`to_local_xy`."""
    lat = lat0 + np.degrees(np.asarray(y) / EARTH_RADIUS_M)
    lon = wrap_lon(lon0 + np.degrees(np.asarray(x) / (EARTH_RADIUS_M * np.cos(np.radians(lat0)))))
    return lat, lon


def known_positions(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Per point: its position is known (latitude and longitude both)."""
    return ~(np.isnan(lat) | np.isnan(lon))


def fix_indices(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The indices of the points whose position is known."""
    return known_positions(lat, lon).nonzero()[0]


def bounds(lat: np.ndarray, lon: np.ndarray,
           fix: np.ndarray | None = None) -> tuple[float, float, float, float] | None:
    """(min_lat, min_lon, max_lat, max_lon) of the known positions, or None without any. ``fix``: the indices of the
    points with a known position, when the caller has them already."""
    if fix is None:
        fix = fix_indices(lat, lon)
    if fix.shape[0] == 0:
        return None
    if fix.shape[0] < lat.shape[0]:
        lat, lon = lat[fix], lon[fix]
    return (float(lat.min()), float(lon.min()), float(lat.max()), float(lon.max()))
