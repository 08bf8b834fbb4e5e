"""Workout samples as a health app sends them to POST /health/sync, with or without a route."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.algorithms.track import Track
from tests.support.synthetic import synthetic_track


def iso(moment: datetime) -> str:
    return moment.isoformat()


def workout_track(start: datetime, minutes: int = 20, seed: int = 7, speed_mps: float = 3.0) -> Track:
    """A run recorded at 1 Hz from ``start``: what the watch records, and what the phone's route follows."""
    return synthetic_track(seed=seed, n_points=minutes * 60, start_time=start.timestamp(), speed_mps=speed_mps)


def route_of(track: Track) -> list[dict[str, Any]]:
    """The track's points as a route (HKWorkoutRoute locations): time, position, elevation and heart rate."""
    points = []
    for t, lat, lon, ele, hr in zip(track.time, track.lat, track.lon, track.ele, track.hr, strict=True):
        point: dict[str, Any] = {"at": iso(datetime.fromtimestamp(float(t), UTC)), "lat": round(float(lat), 7),
                                 "lon": round(float(lon), 7)}
        if not math.isnan(ele):
            point["ele"] = round(float(ele), 1)
        if not math.isnan(hr):
            point["hr"] = round(float(hr))
        points.append(point)
    return points


def workout(source_id: str, start: datetime, minutes: int = 20, *, route: list[dict[str, Any]] | None = None,
            activity: str = "running", **extra: Any) -> dict[str, Any]:
    sample: dict[str, Any] = {"type": "workout", "source_id": source_id, "activity": activity, "start": iso(start),
                              "end": iso(start + timedelta(minutes=minutes)), "value": 250, **extra}
    if route is not None:
        sample["route"] = route
    return sample
