"""Everything the ingest stage stores for one activity, computed from a normalized track in one pass.

Pure: the stage loads the file and the owner's privacy settings, calls :func:`summarize`, and writes the
result. The owner's map and the public (privacy-filtered) map are both prepared here so that no read path
ever has to filter on the fly in the common case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from domain.algorithms import polylines
from domain.algorithms.geo import known_positions
from domain.algorithms.metrics import ActivityMetrics, compute_metrics, headline_figures
from domain.algorithms.privacy import PublicView, Zone, public_view
from domain.algorithms.segment_geometry import simplify_indices
from domain.algorithms.streams import encode_track
from domain.algorithms.track import Track

#: The detailed polyline keeps at most this many points (evenly spread); streams hold the full track.
DETAIL_MAX_POINTS = 5000
#: Douglas–Peucker tolerance of the summary polyline used in feeds and lists.
SUMMARY_TOLERANCE_M = 15.0
SUMMARY_MAX_INPUT = 800
#: The shape of the stored non-owner view; a view of an older shape is recomputed before it is shown.
#: 2: ``totals`` (the figures of the visible stretch) added, so totals no longer reveal a hidden start's length.
PUBLIC_VIEW_VERSION = 2
#: The figures a non-owner gets for the visible stretch instead of the whole track's.
TOTALS = ("distance_m", "elapsed_time_s", "moving_time_s", "elevation_gain_m", "avg_speed_mps")


@dataclass
class MapView:
    polyline: str
    summary_polyline: str
    #: One polyline per contiguous visible stretch (only differs from ``[polyline]`` when privacy cut it).
    polylines: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"polyline": self.polyline, "summary_polyline": self.summary_polyline, "polylines": self.polylines}


@dataclass
class ActivitySummary:
    metrics: ActivityMetrics
    owner_map: MapView | None
    #: JSON stored on the activity: what non-owners see of the map (None without GPS).
    public: dict[str, Any] | None
    stream_blob: bytes


def _positions(track: Track) -> tuple[np.ndarray, np.ndarray]:
    ok = known_positions(track.lat, track.lon)
    return track.lat[ok], track.lon[ok]


def _even(n: int, limit: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def map_view(lat: np.ndarray, lon: np.ndarray, runs: Sequence[tuple[int, int]] | None = None) -> MapView | None:
    """Detailed + summary polylines of NaN-free points; ``runs`` split it into separately drawn stretches."""
    n = lat.shape[0]
    if n == 0:
        return None
    detail = _even(n, DETAIL_MAX_POINTS)
    # Douglas–Peucker on an evenly thinned copy: the summary is drawn a few hundred pixels wide, and the
    # thinning keeps its cost flat however dense the recording was.
    thin = _even(n, SUMMARY_MAX_INPUT)
    summary = thin[simplify_indices(lat[thin], lon[thin], SUMMARY_TOLERANCE_M)] if thin.size > 2 else thin
    detail_line = polylines.encode(lat[detail], lon[detail])
    runs = [(a, b) for a, b in (runs or [(0, n)]) if b > a]
    if runs == [(0, n)]:
        pieces = [detail_line]
    else:
        pieces = [polylines.encode(lat[a:b][_even(b - a, DETAIL_MAX_POINTS)], lon[a:b][_even(b - a, DETAIL_MAX_POINTS)])
                  for a, b in runs]
    return MapView(detail_line, polylines.encode(lat[summary], lon[summary]), pieces)


def visible_totals(track: Track, visible: np.ndarray, sport: str | None) -> dict[str, float | None]:
    """Distance, times, climb and speed of the stretch from the first to the last visible point: what the
    non-owner's streams show. The whole track's figures minus these would be the hidden start and end, which the
    hiding exists to keep secret."""
    if not visible.size:
        return {"distance_m": 0.0, "elapsed_time_s": 0.0, "moving_time_s": 0.0, "elevation_gain_m": None,
                "avg_speed_mps": None}
    return headline_figures(track.take(np.arange(int(visible[0]), int(visible[-1]) + 1)), sport)


def public_summary(track: Track, zones: Sequence[Zone], *, hide_start_end_m: float, seed: int,
                   owner_map: MapView | None = None, sport: str | None = None) -> dict[str, Any]:
    """What anyone but the owner may see of the track: its geometry and, when part of it is hidden, the figures
    of the visible stretch (``totals``), as stored JSON (``v``: :data:`PUBLIC_VIEW_VERSION`)."""
    return public_summary_and_mask(track, zones, hide_start_end_m=hide_start_end_m, seed=seed, owner_map=owner_map,
                                   sport=sport)[0]


def public_summary_and_mask(track: Track, zones: Sequence[Zone], *, hide_start_end_m: float, seed: int,
                            owner_map: MapView | None = None, sport: str | None = None,
                            ) -> tuple[dict[str, Any], np.ndarray]:
    """:func:`public_summary` and the mask of hidden points it was drawn from (for a caller that needs both,
    e.g. to flag the segment efforts that touch a hidden part, without computing the mask a second time)."""
    if not track.has_gps or (not zones and hide_start_end_m <= 0):
        lat, lon = _positions(track)
        view = owner_map or map_view(lat, lon)
        return {
            "v": PUBLIC_VIEW_VERSION, "filtered": False, "map": view.as_dict() if view else None,
            "start_latlng": [float(lat[0]), float(lon[0])] if lat.size else None,
            "end_latlng": [float(lat[-1]), float(lon[-1])] if lat.size else None,
            "bounds": [float(lat.min()), float(lon.min()), float(lat.max()), float(lon.max())] if lat.size else None,
            "distance_offset_m": 0.0, "time_offset_s": 0.0, "first_index": 0,
        }, np.zeros(len(track), dtype=bool)
    pv: PublicView = public_view(track, zones, hide_start_end_m=hide_start_end_m, seed=seed)
    vis = pv.track
    ok = known_positions(vis.lat, vis.lon)
    # Runs over positioned points only, re-indexed into the NaN-free arrays handed to map_view.
    pos_index = np.cumsum(ok) - 1
    runs = [(int(pos_index[a]) + (0 if ok[a] else 1), int(pos_index[b - 1]) + 1) for a, b in pv.runs if b > a]
    view = map_view(vis.lat[ok], vis.lon[ok], runs)
    visible = np.flatnonzero(~pv.mask)
    return {
        "v": PUBLIC_VIEW_VERSION, "filtered": True, "map": view.as_dict() if view else None,
        "start_latlng": list(pv.start_latlng) if pv.start_latlng else None,
        "end_latlng": list(pv.end_latlng) if pv.end_latlng else None,
        "bounds": list(pv.bounds) if pv.bounds else None,
        "distance_offset_m": float(pv.distance_offset_m),
        "time_offset_s": float(vis.time[0] - track.time[0]) if len(vis) else 0.0,
        "first_index": int(visible[0]) if visible.size else None,
        "totals": visible_totals(track, visible, sport),
    }, pv.mask


def summarize(track: Track, sport: str | None, zones: Sequence[Zone], *, hide_start_end_m: float,
              seed: int) -> ActivitySummary:
    metrics = compute_metrics(track, sport)
    owner_map = map_view(*_positions(track))
    return ActivitySummary(
        metrics=metrics,
        owner_map=owner_map,
        public=public_summary(track, zones, hide_start_end_m=hide_start_end_m, seed=seed, owner_map=owner_map,
                              sport=sport),
        stream_blob=encode_track(track),
    )
