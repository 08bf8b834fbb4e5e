"""Apple Health exports (export.xml) of any number of workouts, for the pipeline tests and the benchmarks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

T0 = datetime(2024, 3, 1, 7, 0, 0, tzinfo=UTC)
_SPORTS = ("Running", "Cycling", "Walking", "Hiking")


def _stamp(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S +0000")


def health_export(workouts: int, points: int = 60, *, filler_records: int = 0, lat0: float = 46.0,
                  empty: frozenset[int] = frozenset()) -> bytes:
    """An export with ``workouts`` workouts a day apart, each with a ``points``-point route (1 Hz) and heart-rate
    samples, plus ``filler_records`` step-count records (the bulk of a real export) to make it larger. The
    workouts numbered in ``empty`` have no route, no samples and no duration (nothing to import)."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE HealthData [\n<!ELEMENT HealthData ANY>\n]>\n'
             '<HealthData locale="en_US">\n<ExportDate value="2024-06-01 10:00:00 +0000"/>\n']
    parts += [f'<Record type="HKQuantityTypeIdentifierStepCount" sourceName="Phone" unit="count" '
              f'startDate="{_stamp(-86400 + i)}" endDate="{_stamp(-86400 + i + 1)}" value="{i % 50}"/>\n'
              for i in range(filler_records)]
    for w in range(workouts):
        start = w * 86400.0
        if w in empty:
            parts.append(f'<Workout workoutActivityType="HKWorkoutActivityTypeRunning" sourceName="Watch" '
                         f'startDate="{_stamp(start)}" endDate="{_stamp(start)}"/>\n')
            continue
        lat = lat0 + (w % 20) * 0.01  # every workout its own place: distinct files, distinct activities
        parts += [f'<Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" unit="count/min" '
                  f'startDate="{_stamp(start + s)}" endDate="{_stamp(start + s)}" value="{120 + s % 30}"/>\n'
                  for s in range(0, points, 5)]
        route = "".join(f'<Location date="{_stamp(start + i)}" latitude="{lat + i * 3e-5:.6f}" '
                        f'longitude="{8.0 + w * 1e-4:.6f}" altitude="400"/>\n' for i in range(points))
        parts.append(f'<Workout workoutActivityType="HKWorkoutActivityType{_SPORTS[w % len(_SPORTS)]}" '
                     f'duration="{points / 60:.3f}" durationUnit="min" sourceName="Watch" '
                     f'startDate="{_stamp(start)}" endDate="{_stamp(start + points - 1)}">\n'
                     f'<WorkoutRoute sourceName="Phone">\n{route}</WorkoutRoute>\n</Workout>\n')
    parts.append("</HealthData>\n")
    return "".join(parts).encode()
