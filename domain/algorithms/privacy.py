"""Privacy zones and start/end hiding: what a non-owner may see of a track.

Threat model. Anyone other than the owner must never see a recorded point inside a privacy zone or inside
the hidden start/end stretch: not in streams, polylines, start/end coordinates, bounds, nor in distances
that would reveal how long the hidden part was. The published attack on circular zones (Hassan et al.,
USENIX Security 2018) collects the points where many public tracks become visible and fits a circle to
them, or takes their centroid. docs/privacy.md gives the measurements and the trade-off; in short:

* Each zone is stored once, at creation, as a *persistent* disc whose centre is displaced from the home
  by a secret ``U(PERSISTENT_OFFSET_MIN, PERSISTENT_OFFSET_MAX) × r`` at a secret bearing, its radius
  grown by that displacement so it still contains the athlete's disc (:func:`persistent_zone`). Every
  estimate that converges on the hidden region's centre (circle fits, hull centre, farthest-pair midpoint)
  therefore converges on a point at least ``PERSISTENT_OFFSET_MIN × r`` from the home, and the centroid of
  the cut points of tracks leaving home converges half-way between home and that centre (for rays from a
  point inside a disc, the mean exit point is exactly that midpoint): hence a displacement above r.
* Every activity then hides that disc with its *own* randomized disc: centre displaced by
  ``U(0, CENTRE_OFFSET_FRACTION) × R`` at a uniform bearing, radius ``R + offset + U(0,
  EXTRA_RADIUS_FRACTION) × R`` (plus a 1 m margin for float rounding), so by the triangle inequality it
  contains the whole persistent disc while the cut points of different activities lie on different circles.
* The hidden start/end stretch is ``N × U(1.0, 1.5)`` metres along the track, drawn independently for
  the start and the end, so a cut is never exactly ``N`` metres from home.

The per-activity randomness is a pure function of a per-activity seed (``activity_seed``: HMAC of a server
secret and a stable activity key). Recomputing the view of the same activity must give the same boundary;
otherwise every re-read would reveal a fresh sample of cut points for the same activity. Each zone's disc is
drawn from its own stream keyed by (seed, zone), so adding or removing one zone does not redraw the others.

Known limit, true of *any* hiding region: the median of the cut points (per axis, or the geometric median)
of tracks that leave home straight in uniformly spread directions converges on the home whatever is hidden,
because every visible point of such a track lies on the same side of any line through the home as the
direction it left in. No zone geometry defends against that; docs/privacy.md measures it.

Distances use the haversine formula directly rather than a planar projection: it is exact on the sphere,
so the containment guarantee holds at any latitude and across the antimeridian without special cases.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from domain.algorithms.geo import EARTH_RADIUS_M, bounds, cumulative_distance, haversine_m, wrap_lon
from domain.algorithms.track import Track

#: Range of the persistent (stored) displacement of a zone's centre, as a fraction of the athlete's radius.
#: Well above 1: the centroid of cut points converges half-way to the displaced centre (≥ 0.75 r), which leaves
#: room for the noise of a few dozen activities above r/2 (docs/privacy.md has the measurements).
PERSISTENT_OFFSET_MIN = 1.5
PERSISTENT_OFFSET_MAX = 1.9
#: Maximum displacement of a per-activity disc's centre, as a fraction of the (persistent) zone's radius.
#: Small: the persistent displacement is the defence; this only keeps cut points off one common circle
#: (0.25–0.29 × the athlete's radius, about as before, now that the persistent radius is 2.5–2.9 of it).
CENTRE_OFFSET_FRACTION = 0.1
#: Maximum extra radius beyond ``radius + offset``, as a fraction of the (persistent) zone's radius.
EXTRA_RADIUS_FRACTION = 0.1
#: The hidden start/end stretch is ``N × U(1.0, START_END_MAX_FACTOR)``.
START_END_MAX_FACTOR = 1.5
#: Added to every hidden radius so float rounding can never put a zone point just outside the disc.
SAFETY_MARGIN_M = 1.0

# Domain-separation tags for the independent random streams derived from one activity seed.
_TAG_ZONE = 1
_TAG_START_END = 2
_TAG_PERSISTENT = 3
_SEED_MASK = (1 << 128) - 1


@dataclass(frozen=True)
class Zone:
    """A privacy zone: a disc of ``radius_m`` metres around (lat, lng) in degrees."""

    lat: float
    lng: float
    radius_m: float

    def __post_init__(self) -> None:
        # A zone with a NaN centre or radius would silently hide nothing, which is a leak, not a no-op.
        if not (math.isfinite(self.lat) and math.isfinite(self.lng) and -90.0 <= self.lat <= 90.0):
            raise ValueError(f"invalid privacy zone centre ({self.lat}, {self.lng})")
        if not (math.isfinite(self.radius_m) and self.radius_m > 0.0):
            raise ValueError(f"invalid privacy zone radius {self.radius_m}")


@dataclass(frozen=True)
class HiddenDisc:
    """The randomized disc actually hidden for one zone in one activity."""

    lat: float
    lng: float
    radius_m: float


@dataclass(frozen=True)
class PublicView:
    """What a non-owner may see of one activity.

    ``runs`` are ``[start, end)`` index ranges into ``track`` (the visible track, hidden points already
    removed), one per contiguous visible stretch. Callers should draw one polyline per run: joining runs
    would draw a straight line across the hidden part, i.e. through a zone. ``visible_runs(mask)`` gives
    the same runs in the original track's indices.

    ``distance_offset_m`` is the along-track distance of the first visible point; subtract it from the
    distance stream so it starts at 0 and does not reveal the hidden start length. Distance jumps across
    mid-track gaps reveal the hidden path length there, so a non-owner distance stream is best recomputed
    from the visible points (summing within runs only).
    """

    mask: np.ndarray
    track: Track
    start_latlng: tuple[float, float] | None
    end_latlng: tuple[float, float] | None
    bounds: tuple[float, float, float, float] | None
    runs: list[tuple[int, int]]
    distance_offset_m: float


def activity_seed(secret: bytes, activity_key: str) -> int:
    """Deterministic per-activity randomness: the first 128 bits of HMAC-SHA256(secret, activity_key).

    Without the server secret an attacker cannot predict the hidden discs of an activity; with the same
    key the same activity always gets the same discs, so repeated reads leak nothing new.
    """
    digest = hmac.new(secret, activity_key.encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest[:16], "big")


def _zone_key(zone: Zone) -> int:
    """A stable integer identifying a zone, so its random stream does not depend on list order."""
    return int.from_bytes(hashlib.sha256(struct.pack("<ddd", zone.lat, zone.lng, zone.radius_m)).digest()[:16],
                          "big")


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed & _SEED_MASK, *keys])


def _destination(lat: float, lon: float, bearing_rad: float, distance_m: float) -> tuple[float, float]:
    """Point reached from (lat, lon) along a great circle; exact near the poles, wraps longitude."""
    phi1, lmb1 = math.radians(lat), math.radians(lon)
    delta = distance_m / EARTH_RADIUS_M
    sin_phi2 = math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(bearing_rad)
    phi2 = math.asin(max(-1.0, min(1.0, sin_phi2)))
    lmb2 = lmb1 + math.atan2(math.sin(bearing_rad) * math.sin(delta) * math.cos(phi1),
                             math.cos(delta) - math.sin(phi1) * sin_phi2)
    return math.degrees(phi2), float(wrap_lon(math.degrees(lmb2)))


def hidden_disc(zone: Zone, seed: int) -> HiddenDisc:
    """The randomized disc hidden for ``zone`` in the activity with ``seed``; always contains the zone."""
    rng = _rng(seed, _TAG_ZONE, _zone_key(zone))
    r = zone.radius_m
    offset = rng.uniform(0.0, CENTRE_OFFSET_FRACTION) * r
    bearing = rng.uniform(0.0, 2.0 * math.pi)
    extra = rng.uniform(0.0, EXTRA_RADIUS_FRACTION) * r
    lat, lng = _destination(zone.lat, zone.lng, bearing, offset)
    # Use the realised displacement (not the requested one) so containment rests only on the triangle
    # inequality of the same distance function that tests membership.
    realised = float(haversine_m(zone.lat, zone.lng, lat, lng))
    return HiddenDisc(lat, lng, r + realised + extra + SAFETY_MARGIN_M)


def persistent_zone(zone: Zone, seed: int) -> Zone:
    """The zone as stored for filtering: centre displaced once (at creation, from a secret seed) by
    ``U(PERSISTENT_OFFSET_MIN, PERSISTENT_OFFSET_MAX) × r`` and grown so it still contains the athlete's zone.

    Per-activity randomization alone is centred on the true zone, so averaging the cut points of many
    activities converges on the athlete's home. Filtering against this displaced zone instead makes circle
    fits converge on a point more than a radius away from the home, and the centroid of the cut points on a
    point more than half a radius away, which no number of activities changes.
    """
    rng = _rng(seed, _TAG_PERSISTENT, _zone_key(zone))
    offset = rng.uniform(PERSISTENT_OFFSET_MIN, PERSISTENT_OFFSET_MAX) * zone.radius_m
    lat, lng = _destination(zone.lat, zone.lng, rng.uniform(0.0, 2.0 * math.pi), offset)
    realised = float(haversine_m(zone.lat, zone.lng, lat, lng))
    return Zone(lat, lng, zone.radius_m + realised + SAFETY_MARGIN_M)


def start_end_lengths(hide_start_end_m: float, seed: int) -> tuple[float, float]:
    """Hidden lengths (start, end) in metres: each ``N × U(1.0, 1.5)``, independent, never below ``N``."""
    if not (math.isfinite(hide_start_end_m) and hide_start_end_m >= 0.0):
        raise ValueError(f"invalid hide_start_end_m {hide_start_end_m}")
    if hide_start_end_m == 0.0:
        return 0.0, 0.0
    u_start, u_end = _rng(seed, _TAG_START_END).uniform(1.0, START_END_MAX_FACTOR, size=2)
    return hide_start_end_m * float(u_start), hide_start_end_m * float(u_end)


def _spread_over_missing(hidden: np.ndarray, positioned: np.ndarray) -> np.ndarray:
    """Hide position-less points whose nearest positioned neighbour on either side is hidden.

    Such a point may have been recorded inside the zone (GPS lost indoors, at home), and its time/HR
    would otherwise appear in the streams next to the cut. The visible part stays a clean set of runs.
    """
    n = hidden.shape[0]
    idx = np.arange(n)
    prev = np.maximum.accumulate(np.where(positioned, idx, -1))
    nxt = np.minimum.accumulate(np.where(positioned, idx, n)[::-1])[::-1]
    prev_hidden = np.zeros(n, dtype=bool)
    has_prev = prev >= 0
    prev_hidden[has_prev] = hidden[prev[has_prev]]
    next_hidden = np.zeros(n, dtype=bool)
    has_next = nxt < n
    next_hidden[has_next] = hidden[nxt[has_next]]
    return hidden | (~positioned & (prev_hidden | next_hidden))


def hidden_mask(lat: np.ndarray, lon: np.ndarray, zones: Sequence[Zone], *, hide_start_end_m: float,
                seed: int) -> np.ndarray:
    """Boolean mask (True = hide from non-owners) over the points of one activity.

    Hidden are: points inside any zone's randomized disc, points within the randomized start/end
    stretch measured along the track, and position-less points adjacent to a hidden run.
    """
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    if lat.shape != lon.shape or lat.ndim != 1:
        raise ValueError("lat and lon must be 1-D arrays of equal length")
    n = lat.shape[0]
    hidden = np.zeros(n, dtype=bool)
    if n == 0:
        return hidden
    positioned = np.isfinite(lat) & np.isfinite(lon)
    for zone in zones:
        disc = hidden_disc(zone, seed)
        with np.errstate(invalid="ignore"):
            hidden |= haversine_m(lat, lon, disc.lat, disc.lng) <= disc.radius_m
    start_m, end_m = start_end_lengths(hide_start_end_m, seed)
    if start_m > 0.0:
        along = cumulative_distance(lat, lon)
        hidden |= along <= start_m
        hidden |= (along[-1] - along) <= end_m
    return _spread_over_missing(hidden, positioned)


def visible_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous visible (mask False) index ranges ``[start, end)``, in order."""
    visible = np.concatenate(([False], ~np.asarray(mask, dtype=bool), [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(visible))
    return [(int(s), int(e)) for s, e in zip(edges[0::2], edges[1::2], strict=True)]


def apply_privacy(track: Track, mask: np.ndarray) -> Track:
    """The track a non-owner may see: hidden points removed from every column."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (len(track),):
        raise ValueError(f"mask has shape {mask.shape}, track has {len(track)} points")
    return track.take(~mask)


def public_view(track: Track, zones: Sequence[Zone], *, hide_start_end_m: float, seed: int) -> PublicView:
    """Everything a non-owner may see of ``track``, derived only from visible points."""
    mask = hidden_mask(track.lat, track.lon, zones, hide_start_end_m=hide_start_end_m, seed=seed)
    visible = apply_privacy(track, mask)
    positioned = np.flatnonzero(np.isfinite(visible.lat) & np.isfinite(visible.lon))
    start = end = None
    if positioned.size:
        i, j = positioned[0], positioned[-1]
        start = (float(visible.lat[i]), float(visible.lon[i]))
        end = (float(visible.lat[j]), float(visible.lon[j]))
    runs = visible_runs(mask)
    # Re-index runs into the visible track: run k starts after the lengths of runs 0..k-1.
    lengths = np.array([e - s for s, e in runs], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])) if runs else np.zeros(0, dtype=np.int64)
    local_runs = [(int(s), int(s + n)) for s, n in zip(starts, lengths, strict=True)]
    offset = 0.0
    if runs:
        offset = float(cumulative_distance(track.lat, track.lon)[runs[0][0]])
    return PublicView(mask=mask, track=visible, start_latlng=start, end_latlng=end,
                      bounds=bounds(visible.lat, visible.lon), runs=local_runs, distance_offset_m=offset)


def live_point_hidden(lat: float, lon: float, zones: Sequence[Zone], *, seed: int,
                      distance_from_start_m: float | None = None, hide_start_end_m: float = 0.0) -> bool:
    """Whether one live-tracking point must be withheld from non-owners.

    Uses the same randomized discs as :func:`hidden_mask` for the same seed (use the live session's
    activity key). The start stretch applies only when ``distance_from_start_m`` is given (hide until the
    athlete is ``N'`` metres along); the end stretch cannot be known live, so only zones protect the end.
    A point without a position is withheld: there is nothing safe to show and it may be inside a zone.
    """
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return True
    if distance_from_start_m is not None:
        start_m, _ = start_end_lengths(hide_start_end_m, seed)
        if start_m > 0.0 and not distance_from_start_m > start_m:  # NaN distance counts as "unknown"
            return True
    for zone in zones:
        disc = hidden_disc(zone, seed)
        if float(haversine_m(lat, lon, disc.lat, disc.lng)) <= disc.radius_m:
            return True
    return False
