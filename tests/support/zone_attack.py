"""The circle-fit attack on privacy zones (Hassan et al., USENIX Security 2018), as an attacker would run it.

An attacker who follows an athlete sees, for each public activity, where the track becomes visible (its
public ``start_latlng``) and where it stops being visible (``end_latlng``). Tracks that leave and come back
home in many directions cut the hidden region around the home; the attacker collects those cut points and
estimates the home from them. :func:`cut_points` produces exactly what the product stores for non-owners
(``persistent_zone`` at zone creation, then ``public_summary`` with each activity's seed derived as
``domain.privacy.settings.privacy_seed`` derives it); :data:`ESTIMATORS` are the attacker's tools.

Used by tests/domain/algorithms/test_privacy_attack.py (the guarantee) and bench/bench_privacy_attack.py (the figures).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial import ConvexHull

from domain.algorithms.geo import from_local_xy, to_local_xy
from domain.algorithms.privacy import Zone, activity_seed, hidden_disc, persistent_zone
from domain.algorithms.summary import public_summary
from tests.support.synthetic import track_along

Estimator = Callable[[np.ndarray, np.ndarray], tuple[float, float]]


@dataclass(frozen=True)
class Athlete:
    user_id: int
    lat: float
    lng: float
    radius_m: float
    #: The randomness the zone was created with (the endpoint draws it from ``secrets``).
    zone_seed: int
    #: The server's PRIVACY_SECRET (per deployment; different athletes here stand for different deployments too).
    secret: bytes
    hide_start_end_m: float = 0.0


#: Different homes (mid/high latitude, southern hemisphere, near the antimeridian), radii and secrets.
ATHLETES = (
    Athlete(1, 48.2082, 16.3738, 200.0, 0x5EED_0001, b"secret-a"),
    Athlete(2, 51.5072, -0.1276, 400.0, 0x5EED_0002, b"secret-b", hide_start_end_m=300.0),
    Athlete(3, -33.8688, 151.2093, 650.0, 0x5EED_0003, b"secret-c"),
    Athlete(4, 64.1466, -21.9426, 1000.0, 0x5EED_0004, b"secret-d"),
    Athlete(5, -18.1416, 178.4419, 300.0, 0x5EED_0005, b"secret-e"),
    Athlete(6, 40.7128, -74.0060, 1600.0, 0x5EED_0006, b"secret-f", hide_start_end_m=1000.0),
)


def stored_zone(athlete: Athlete) -> Zone:
    """The zone as the product stores it (what ``privacy_settings`` hands to every hiding function)."""
    return persistent_zone(Zone(athlete.lat, athlete.lng, athlete.radius_m), athlete.zone_seed)


def cut_points(athlete: Athlete, activities: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """East/north metres (from the true home) of the public start and end of ``activities`` tracks.

    Each activity leaves home straight at a random bearing, turns, and comes back straight from another
    random bearing, far enough out to leave any hidden disc, with 3 m of (time-correlated) GPS noise.
    """
    zone = stored_zone(athlete)
    rng = np.random.default_rng([athlete.user_id, seed])
    out_m = 6.0 * athlete.radius_m  # beyond the furthest reach of any hidden disc (≈ 5.2 r)
    speed = athlete.radius_m / 100.0  # ~100 samples per radius, whatever the radius
    xs, ys = [], []
    for k in range(activities):
        b1, b2 = rng.uniform(0.0, 2.0 * math.pi, 2)
        px = np.array([0.0, out_m * math.sin(b1), out_m * math.sin(b2), 0.0])
        py = np.array([0.0, out_m * math.cos(b1), out_m * math.cos(b2), 0.0])
        plat, plon = from_local_xy(px, py, athlete.lat, athlete.lng)
        track, _ = track_along(plat, plon, speed, seed=int(rng.integers(2**31)), noise_m=3.0)
        # Seed as domain.privacy.settings.privacy_seed derives it: HMAC(secret, "user:activity key").
        seed_k = activity_seed(athlete.secret, f"{athlete.user_id}:sha-{athlete.user_id}-{seed}-{k}")
        public = public_summary(track, [zone], hide_start_end_m=athlete.hide_start_end_m, seed=seed_k)
        for latlng in (public["start_latlng"], public["end_latlng"]):
            x, y = to_local_xy(np.array([latlng[0]]), np.array([latlng[1]]), athlete.lat, athlete.lng)
            xs.append(float(x[0]))
            ys.append(float(y[0]))
    return np.array(xs), np.array(ys)


def hidden_area_factor(athlete: Athlete, activities: int = 1000) -> float:
    """Mean area of the per-activity hidden disc, as a multiple of the athlete's requested disc."""
    zone = stored_zone(athlete)
    radii = np.array([hidden_disc(zone, activity_seed(athlete.secret, f"area-{k}")).radius_m
                      for k in range(activities)])
    return float(np.mean((radii / athlete.radius_m) ** 2))


# --------------------------------------------------------------------------- the attacker's estimators


def centroid(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    return float(x.mean()), float(y.mean())


def kasa_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Algebraic (Kåsa) least-squares circle: linear in (cx, cy, c)."""
    a = np.column_stack([x, y, np.ones_like(x)])
    c = np.linalg.lstsq(a, x * x + y * y, rcond=None)[0]
    return float(c[0] / 2), float(c[1] / 2)


def geometric_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Geometric least-squares circle (minimises distances to the circle), started from the Kåsa fit."""
    cx, cy = kasa_fit(x, y)
    r0 = float(np.mean(np.hypot(x - cx, y - cy)))
    fit = least_squares(lambda p: np.hypot(x - p[0], y - p[1]) - p[2], [cx, cy, r0])
    return float(fit.x[0]), float(fit.x[1])


def hull_centre(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Area centroid of the points' convex hull."""
    hull = ConvexHull(np.column_stack([x, y]))
    px, py = x[hull.vertices], y[hull.vertices]
    qx, qy = np.roll(px, -1), np.roll(py, -1)
    cross = px * qy - qx * py
    area = cross.sum() / 2.0
    return float(((px + qx) * cross).sum() / (6 * area)), float(((py + qy) * cross).sum() / (6 * area))


def widest_pair_midpoint(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Midpoint of the two points furthest apart (the centre of the widest gap across the hidden region)."""
    d = (x[:, None] - x[None, :]) ** 2 + (y[:, None] - y[None, :]) ** 2
    i, j = np.unravel_index(int(np.argmax(d)), d.shape)
    return float((x[i] + x[j]) / 2), float((y[i] + y[j]) / 2)


def coordinate_median(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    return float(np.median(x)), float(np.median(y))


def geometric_median(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Weiszfeld's iteration."""
    mx, my = float(x.mean()), float(y.mean())
    for _ in range(200):
        w = 1.0 / np.maximum(np.hypot(x - mx, y - my), 1e-6)
        mx, my = float((x * w).sum() / w.sum()), float((y * w).sum() / w.sum())
    return mx, my


def centroid_reflected_through_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``2 × centroid − circle fit``: the centroid converges half-way between the home and the fitted centre."""
    (mx, my), (cx, cy) = centroid(x, y), kasa_fit(x, y)
    return 2 * mx - cx, 2 * my - cy


#: Estimators whose estimate follows the hidden region: the zone geometry keeps them ≥ r/2 from home.
DEFEATED: dict[str, Estimator] = {
    "centroid": centroid, "kasa_fit": kasa_fit, "geometric_fit": geometric_fit, "hull_centre": hull_centre,
    "widest_pair_midpoint": widest_pair_midpoint,
}
#: Estimators that use the directions the tracks leave in: they converge on the home whatever disc is hidden
#: (docs/privacy.md, "What no zone can hide").
DIRECTIONAL: dict[str, Estimator] = {"coordinate_median": coordinate_median, "geometric_median": geometric_median,
                                     "centroid_reflected": centroid_reflected_through_fit}
