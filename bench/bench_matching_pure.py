"""Benchmark: one 3,600-point activity against 1,000 candidate segments with match_many.

50 candidates lie on the ride; 950 are nearby but not ridden: parallel roads, roads that branch off
the route, alternative routes between two points of the ride, segments ridden the other way, and
random local roads. Prints the best of 5 wall-clock times (and CPU times, which a busy machine
disturbs less), track preparation and kd-tree build included; segment preparation is excluded (it
happens once, when a segment is created). Also prints the number of efforts found (expected: 50).

Run from the checkout root: ``.venv/bin/python bench/bench_matching_pure.py``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from domain.algorithms.geo import from_local_xy
from domain.algorithms.matching import densify, match_many, prepare_segment

LAT0, LON0 = 45.9, 6.1
T0 = 1_700_000_000.0
N_POINTS = 3_600
SPEED = 9.0


def road(length: float, step: float = 2.0, phase: float = 0.0) -> np.ndarray:
    """A winding road (local metres) that slowly turns, so a 32 km ride makes a big lap."""
    s = np.arange(0.0, length + step, step)
    heading = phase + s / 5_000.0 + 0.9 * np.sin(s / 170.0) + 0.4 * np.sin(s / 53.0 + 1.0)
    xy = np.zeros((s.shape[0], 2))
    xy[1:, 0] = np.cumsum(np.cos(heading[:-1]) * step)
    xy[1:, 1] = np.cumsum(np.sin(heading[:-1]) * step)
    return xy


def arc_length(xy: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])


def cut(path: np.ndarray, arc: np.ndarray, s_a: float, s_b: float, spacing: float = 25.0) -> np.ndarray:
    """The part of ``path`` between arc lengths s_a and s_b, a vertex every ``spacing`` metres."""
    s = np.linspace(s_a, s_b, max(2, int(np.ceil((s_b - s_a) / spacing)) + 1))
    return np.column_stack([np.interp(s, arc, path[:, 0]), np.interp(s, arc, path[:, 1])])


def nearby_variant(kind: str, seg: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """A stretch of the route turned into a nearby segment the ride must NOT match; None for "random"
    (each benchmark places its random roads its own way)."""
    if kind == "parallel":  # the next road over, 60-500 m away
        return seg + normals(seg) * rng.choice([-1.0, 1.0]) * rng.uniform(60.0, 500.0)
    if kind == "branch":  # starts on the route, then turns off it
        k = seg.shape[0] // 3
        return seg + normals(seg) * np.clip(np.arange(seg.shape[0]) - k, 0, None)[:, None] * 8.0
    if kind == "alternative":  # same start and end, a different way in the middle
        return seg + normals(seg) * np.sin(np.linspace(0.0, np.pi, seg.shape[0]))[:, None] * rng.uniform(120.0, 400.0)
    if kind == "reverse":
        return seg[::-1].copy()
    return None


def normals(xy: np.ndarray) -> np.ndarray:
    d = np.gradient(xy, axis=0)
    n = np.column_stack([-d[:, 1], d[:, 0]])
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def build(rng: np.random.Generator) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list]:
    path = road(N_POINTS * SPEED + 100.0)
    arc = arc_length(path)
    t = np.arange(N_POINTS, dtype=np.float64)
    s = t * SPEED
    xy = np.column_stack([np.interp(s, arc, path[:, 0]), np.interp(s, arc, path[:, 1])])
    xy += rng.normal(0.0, 4.0, xy.shape)
    lat, lon = from_local_xy(xy[:, 0], xy[:, 1], LAT0, LON0)
    track = (T0 + t, lat, lon)

    ridden = s[-1]
    shapes: list[tuple[str, np.ndarray]] = []

    def pick(lo: float = 500.0, hi: float = 5_000.0) -> tuple[float, float]:
        length = rng.uniform(lo, hi)
        a = rng.uniform(100.0, ridden - length - 100.0)
        return a, a + length

    for _ in range(50):
        shapes.append(("on", cut(path, arc, *pick())))
    kinds = ["parallel", "branch", "alternative", "reverse", "random"]
    for i in range(950):
        kind = kinds[i % len(kinds)]
        seg = nearby_variant(kind, cut(path, arc, *pick()), rng)
        if seg is None:  # a random local road somewhere inside the ride's area
            centre = xy[rng.integers(0, N_POINTS)] + rng.uniform(-3_000.0, 3_000.0, 2)
            seg = densify(centre + road(rng.uniform(500.0, 3_000.0))[::12] @ _rot(rng.uniform(0, 6.3)), 25.0)
        shapes.append((kind, seg))

    prepared = []
    for i, (kind, seg) in enumerate(shapes):
        slat, slon = from_local_xy(seg[:, 0], seg[:, 1], LAT0, LON0)
        prepared.append(prepare_segment(slat, slon, (i, kind)))
    return track, prepared


def _rot(a: float) -> np.ndarray:
    return np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])


def main() -> None:
    rng = np.random.default_rng(42)
    track, prepared = build(rng)
    match_many(*track, prepared)  # warm-up
    timings, cpu = [], []
    for _ in range(5):
        t, c = time.perf_counter(), time.process_time()
        found = match_many(*track, prepared)
        timings.append((time.perf_counter() - t) * 1000.0)
        cpu.append((time.process_time() - c) * 1000.0)
    efforts = sum(len(v) for v in found.values())
    wrong = sorted({kind for (_, kind) in found if kind != "on"})
    print(f"track points: {N_POINTS}, candidate segments: {len(prepared)}")
    print(f"match_many best of 5: {min(timings):.1f} ms wall (all: {', '.join(f'{x:.1f}' for x in timings)}); "
          f"{min(cpu):.1f} ms CPU")
    print(f"efforts found: {efforts} on {len(found)} segments (expected 50 on the 50 ridden ones)")
    if wrong:
        print(f"unexpected matches on: {wrong}")


if __name__ == "__main__":
    main()
