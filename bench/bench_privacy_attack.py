"""The circle-fit attack on privacy zones, for many simulated athletes: how close each estimator of the home
gets, as a fraction of the zone radius, and how much more than the athlete's disc is hidden.

    python -m bench.bench_privacy_attack [--athletes 40] [--activities 12,50,200] [--before]

``--before`` sets the geometry constants back to the previous rule (persistent displacement U(0, 0.25) r,
per-activity jitter 0.25 / 0.25), which draws the same random numbers, to compare like with like.
Figures are in docs/privacy.md.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from domain.algorithms import privacy
from tests.support.zone_attack import DEFEATED, DIRECTIONAL, Athlete, cut_points, hidden_area_factor


def athletes(count: int) -> list[Athlete]:
    rng = np.random.default_rng(2018)
    return [Athlete(1000 + i, float(rng.uniform(-60, 65)), float(rng.uniform(-175, 175)),
                    float(rng.uniform(200, 1600)), int(rng.integers(2**62)), f"bench-{i}".encode(),
                    hide_start_end_m=float(rng.choice([0.0, 0.0, 200.0, 500.0])))
            for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--athletes", type=int, default=40)
    parser.add_argument("--activities", default="12,50,200")
    parser.add_argument("--before", action="store_true")
    args = parser.parse_args()
    if args.before:
        privacy.PERSISTENT_OFFSET_MIN, privacy.PERSISTENT_OFFSET_MAX = 0.0, 0.25
        privacy.CENTRE_OFFSET_FRACTION = privacy.EXTRA_RADIUS_FRACTION = 0.25
    counts = [int(c) for c in args.activities.split(",")]
    estimators = {**DEFEATED, **DIRECTIONAL}
    found: dict[tuple[str, int], list[float]] = {(name, n): [] for name in estimators for n in counts}
    areas = []
    started = time.perf_counter()
    for athlete in athletes(args.athletes):
        x, y = cut_points(athlete, max(counts))
        areas.append(hidden_area_factor(athlete, 200))
        for n in counts:
            for name, estimate in estimators.items():
                ex, ey = estimate(x[:2 * n], y[:2 * n])
                found[(name, n)].append(math.hypot(ex, ey) / athlete.radius_m)
    print(f"{'before' if args.before else 'after'}: {args.athletes} athletes, "
          f"{time.perf_counter() - started:.1f} s; hidden area per activity = "
          f"{np.mean(areas):.2f} × the athlete's disc (min {np.min(areas):.2f}, max {np.max(areas):.2f})")
    print(f"{'estimator':22} {'activities':>10} {'worst/r':>8} {'median/r':>9} {'share < r/2':>12}")
    for name in estimators:
        for n in counts:
            d = np.array(found[(name, n)])
            print(f"{name:22} {n:>10} {d.min():>8.2f} {np.median(d):>9.2f} {np.mean(d < 0.5):>12.0%}")


if __name__ == "__main__":
    main()
