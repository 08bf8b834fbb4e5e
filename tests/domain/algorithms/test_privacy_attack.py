"""The published attack on privacy zones (Hassan et al., USENIX Security 2018), run against what the product
stores for non-owners: no estimate of the home from the points where tracks become visible may come within
half the zone's radius of it, for any of several athletes, however many activities the attacker collects.

The simulation and the estimators are in tests/support/zone_attack.py; bench/bench_privacy_attack.py prints
the same figures for many more athletes. Estimators that only use the directions tracks leave in (medians)
find the home whatever is hidden; docs/privacy.md explains why and they are measured there, not asserted.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from domain.algorithms.geo import haversine_m
from domain.algorithms.privacy import PERSISTENT_OFFSET_MIN, Zone, hidden_disc
from tests.support.zone_attack import ATHLETES, DEFEATED, Athlete, cut_points, stored_zone

ACTIVITIES = 200
#: The attacker's sample sizes. With a dozen activities the centroid is too noisy to promise anything
#: (it lands within r/2 of the home by chance for about one athlete in eight; docs/privacy.md), so the
#: smallest sample here is 50.
SAMPLES = (50, 100, 200)


@pytest.fixture(scope="module")
def observed() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    return {a.user_id: cut_points(a, ACTIVITIES) for a in ATHLETES}


@pytest.mark.parametrize("athlete", ATHLETES, ids=lambda a: f"r{a.radius_m:.0f}")
def test_no_estimate_of_the_home_within_half_the_radius(athlete: Athlete,
                                                        observed: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    x, y = observed[athlete.user_id]
    assert x.shape == (2 * ACTIVITIES,)
    misses = {}
    for n in SAMPLES:
        for name, estimate in DEFEATED.items():
            ex, ey = estimate(x[:2 * n], y[:2 * n])
            misses[(name, n)] = math.hypot(ex, ey) / athlete.radius_m
    too_close = {k: round(v, 2) for k, v in misses.items() if v < 0.5}
    assert not too_close, f"estimates within r/2 of the home (as fractions of r): {too_close}"


@pytest.mark.parametrize("athlete", ATHLETES, ids=lambda a: f"r{a.radius_m:.0f}")
def test_every_hidden_disc_still_contains_the_athletes_disc(athlete: Athlete) -> None:
    """The displacement may move the hidden region, never uncover the athlete's own disc."""
    zone = Zone(athlete.lat, athlete.lng, athlete.radius_m)
    stored = stored_zone(athlete)
    shift = float(haversine_m(zone.lat, zone.lng, stored.lat, stored.lng))
    assert shift >= PERSISTENT_OFFSET_MIN * zone.radius_m - 1.0
    assert stored.radius_m >= zone.radius_m + shift
    for k in range(200):
        disc = hidden_disc(stored, k)
        assert disc.radius_m >= float(haversine_m(zone.lat, zone.lng, disc.lat, disc.lng)) + zone.radius_m

