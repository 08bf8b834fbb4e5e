"""A Track as Garmin Training Center (TCX v2): what older watch software and many coaching tools import.

One ``Activity`` with one ``Lap`` per lap the file reported (one lap otherwise); each point is a
``Trackpoint`` in the schema's element order (Time, Position, AltitudeMeters, DistanceMeters, HeartRateBpm,
Cadence, Extensions), points without a position included (TCX allows them: indoor sessions). Power is
written as the ActivityExtension ``TPX/Watts``, and the cadence of foot sports as ``TPX/RunCadence`` per foot
(Garmin's convention); temperature has no place in TCX and is left out. Pure: same track, same bytes.
"""

from __future__ import annotations

import math

import numpy as np

from domain.algorithms.track import Track
from domain.algorithms.writer_common import (
    FOOT_SPORTS,
    cadence_as_written,
    distance_along,
    format_time,
    lap_bounds,
)

__all__ = ["to_tcx"]

_SPORTS = {"running": "Running", "walking": "Running", "hiking": "Running", "cycling": "Biking"}
_NS = ('xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2" '
       'xmlns:ns3="http://www.garmin.com/xmlschemas/ActivityExtension/v2" '
       'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
       'xsi:schemaLocation="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2 '
       'http://www.garmin.com/xmlschemas/TrainingCenterDatabasev2.xsd"')


def _byte(value: float, low: int, high: int) -> int | None:
    """A value for an unsignedByte element of the schema, or None when it can't be one."""
    if math.isnan(value):
        return None
    v = round(value)
    return v if low <= v <= high else None


def to_tcx(track: Track, sport: str | None = None) -> bytes:
    sport = sport or track.sport
    dist = distance_along(track)
    cadence = cadence_as_written(track, sport)
    foot = sport in FOOT_SPORTS
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n', f"<TrainingCenterDatabase {_NS}>\n<Activities>\n",
           f'<Activity Sport="{_SPORTS.get(sport or "", "Other")}">\n']
    out.append(f"<Id>{format_time(float(track.time[0])) if len(track) else '1970-01-01T00:00:00Z'}</Id>\n")
    for a, b in lap_bounds(track) or [(0, 0)]:
        out.append(_lap(track, dist, cadence, foot, a, b))
    out.append("</Activity>\n</Activities>\n</TrainingCenterDatabase>\n")
    return "".join(out).encode("utf-8")


def _lap(track: Track, dist: np.ndarray, cadence: np.ndarray, foot: bool, a: int, b: int) -> str:
    t0 = float(track.time[a]) if b > a else 0.0
    seconds = float(track.time[b - 1]) - t0 if b > a else 0.0
    metres = float(dist[b - 1] - dist[a]) if b > a else 0.0
    parts = [f'<Lap StartTime="{format_time(t0)}">', f"<TotalTimeSeconds>{seconds:.3f}</TotalTimeSeconds>",
             f"<DistanceMeters>{metres:.2f}</DistanceMeters>", "<Calories>0</Calories>"]
    hr = track.hr[a:b]
    if b > a and np.any(~np.isnan(hr)):
        avg, peak = _byte(float(np.nanmean(hr)), 1, 255), _byte(float(np.nanmax(hr)), 1, 255)
        if avg is not None and peak is not None:
            parts.append(f"<AverageHeartRateBpm><Value>{avg}</Value></AverageHeartRateBpm>"
                         f"<MaximumHeartRateBpm><Value>{peak}</Value></MaximumHeartRateBpm>")
    parts.append("<Intensity>Active</Intensity><TriggerMethod>Manual</TriggerMethod>\n<Track>\n")
    for i in range(a, b):
        parts.append(_point(track, dist, cadence, foot, i))
    parts.append("</Track>\n</Lap>\n")
    return "".join(parts)


def _point(track: Track, dist: np.ndarray, cadence: np.ndarray, foot: bool, i: int) -> str:
    p = [f"<Trackpoint><Time>{format_time(float(track.time[i]))}</Time>"]
    lat, lon = track.lat[i], track.lon[i]
    if not (math.isnan(lat) or math.isnan(lon)):
        p.append(f"<Position><LatitudeDegrees>{lat:.7f}</LatitudeDegrees>"
                 f"<LongitudeDegrees>{lon:.7f}</LongitudeDegrees></Position>")
    if not math.isnan(track.ele[i]):
        p.append(f"<AltitudeMeters>{track.ele[i]:.2f}</AltitudeMeters>")
    p.append(f"<DistanceMeters>{dist[i]:.2f}</DistanceMeters>")
    hr = _byte(float(track.hr[i]), 1, 255)
    if hr is not None:
        p.append(f"<HeartRateBpm><Value>{hr}</Value></HeartRateBpm>")
    cad = _byte(float(cadence[i]), 0, 254)
    if cad is not None and not foot:
        p.append(f"<Cadence>{cad}</Cadence>")
    tpx = []
    if not math.isnan(track.power[i]):
        tpx.append(f"<ns3:Watts>{max(0, round(track.power[i]))}</ns3:Watts>")
    if cad is not None and foot:
        tpx.append(f"<ns3:RunCadence>{cad}</ns3:RunCadence>")
    if tpx:
        p.append("<Extensions><ns3:TPX>" + "".join(tpx) + "</ns3:TPX></Extensions>")
    p.append("</Trackpoint>\n")
    return "".join(p)
