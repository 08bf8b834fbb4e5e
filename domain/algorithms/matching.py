"""Segment matching: find and time every effort of an activity on a segment.

An effort is a stretch of the activity that

1. crosses the segment's *start gate* — the line through the segment's first point perpendicular to its
   initial direction — forwards, within ``start_radius_m`` of the start point;
2. then follows the whole segment in order: every sample of the (densified) segment lies within
   ``corridor_m`` of the track *polyline* between the two gate crossings, at positions along the track
   that never go backwards (so a reverse ride or parts ridden out of order do not count, and a shortcut
   leaves segment samples uncovered), and every recorded track point in between lies within
   ``corridor_m`` of the segment (so a side trip does not count);
3. and crosses the *end gate* (same construction at the last point, with the final direction) forwards.

Times are interpolated linearly at the gate crossings, not snapped to the nearest recorded point, so
sparse recordings (one point every 5 s) still get times within a couple of seconds.

Geometry: everything that is done for many segments at once — cheap rejection and the gate crossings
— runs in 3-D Earth-centred coordinates (metres; chord = distance at these scales), vectorised across
all candidate segments, with no projection and so no trouble at the antimeridian or the poles. A gate
is then the plane through the gate point containing the vertical and perpendicular to the segment's
direction there, i.e. exactly the perpendicular gate line on the ground. The per-segment path check
runs in the local equirectangular projection centred on the segment's start
(:func:`domain.algorithms.geo.to_local_xy`), applied identically to segment and track. Its scale error grows
with the distance from the start (about tan(lat) × Δlat: ~1 % for a 10 km segment at 45°, ~9 % for a
100 km one at 80°), which at worst slightly changes the corridor far out on very long polar segments.

Default corridor: 35 m. Consumer GPS has ~±10 m error on the track *and* on the recording the segment
was drawn from, and at 5 s sampling the straight chords between points cut bends by up to ~15 m; 35 m
covers those together while still rejecting a parallel road one block over (typically ≥ 50 m) and any
side trip worth the name.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cached_property

import numpy as np
from scipy.spatial import cKDTree

from domain.algorithms.geo import EARTH_RADIUS_M, from_local_xy, to_local_xy

DEFAULT_START_RADIUS_M = 25.0
DEFAULT_CORRIDOR_M = 35.0
#: Spacing of the densified segment and track polylines. The distance to a polyline measured to its
#: nearest sample overestimates by at most sqrt(d² + (h/2)²) - d, i.e. < 0.4 m at the corridor edge.
SAMPLE_SPACING_M = 10.0
#: Gate directions are taken over this much of the segment, so a jittery first/last vertex does not
#: tilt the gate.
GATE_DIRECTION_BASE_M = 20.0
#: Speed below which a step counts as stopped (when no ``moving`` flags are given).
STOPPED_SPEED_MPS = 0.5
#: Interior points (fractions of the length) checked against the track in the cheap rejection stage.
_CHECKPOINTS = (0.25, 0.5, 0.75)
#: Margin for the difference between distances in the local projection and in 3-D (coarse stages
#: must never reject a true match, so be generous).
_COARSE_SCALE, _COARSE_PAD_M = 1.1, 1.0
#: Efforts must not overlap, except by this much track distance (a closed-loop segment whose end gate
#: sits a few metres past its start gate: lap n+1 starts just before lap n ends).
_MAX_OVERLAP_M = 2.0 * DEFAULT_START_RADIUS_M
#: The track between the gates must be at least this fraction of the segment long, minus the slack
#: (cheap early reject of end-gate crossings that come too soon, e.g. on loop segments).
_MIN_LENGTH_RATIO = 0.5
_MIN_LENGTH_SLACK_M = 2.0 * DEFAULT_START_RADIUS_M
#: In the batched certificate, segment samples this far apart are looked up in the track's kd-tree
#: to map the segment onto the track; positions in between are interpolated.
_ANCHOR_SPACING_M = 80.0
#: Composite sort keys (pair × scale + value) let one numpy call work on many windows at once.
_KEY_ALONG = 1e9  # > any distance along a track, in metres
_KEY_SAMPLE = 1e7  # > any segment's sample count
#: Safety valve for the ordered-coverage fixpoint (converges in 1-3 rounds on real data).
_MAX_ORDER_ROUNDS = 64


#: ``complete`` of :func:`match_many_prepared`: whole segments for segments known by their keys (None: left out).
Completer = Callable[[list["SegmentKeys"]], Sequence["PreparedSegment | None"]]


@dataclass(frozen=True)
class Effort:
    #: Index (in the activity's arrays) of the recorded point just before the start-gate crossing.
    start_index: int
    #: Index of the recorded point just after the end-gate crossing.
    end_index: int
    #: Interpolated gate crossing times (epoch seconds).
    start_time: float
    end_time: float
    elapsed_time_s: float
    #: Elapsed time minus the stopped time inside the effort.
    moving_time_s: float
    #: Mean / max distance of the track's points in the effort (recorded points and the two
    #: interpolated crossings) from the segment, in metres, to within the 10 m sample spacing.
    mean_offset_m: float
    max_offset_m: float
    #: 1 − mean_offset / corridor, clipped to [0, 1]: 1 = the track lies on the segment.
    quality: float


@dataclass(frozen=True, eq=False)
class SegmentKeys:
    """What the coarse stages and the gate crossings read of a segment: a few points, independent of its length.

    A fresh process reads these (stored with the segment, :func:`pack_segment`) for every candidate, and the
    path only for the few that cross both gates (see ``complete`` in :func:`match_many_prepared`).
    """

    segment_id: Hashable
    length_m: float
    #: Earth-centred (metres) start and end gate points, (2, 3), and their unit directions, (2, 3).
    gates: np.ndarray
    gate_dirs: np.ndarray
    #: Earth-centred interior points at the _CHECKPOINTS fractions of the length, (3, 3).
    checkpoints: np.ndarray
    #: Axis-aligned box of the segment's vertices in Earth-centred coordinates: rows min, max.
    box: np.ndarray


@dataclass(frozen=True, eq=False)
class PreparedSegment(SegmentKeys):
    """A segment's geometry precomputed once, to be matched against many activities."""

    lat0: float
    lon0: float
    #: The vertices in the local frame centred on the start (metres, x east / y north), (V, 2).
    vertices: np.ndarray

    # Derived on first use: most candidates of an activity are rejected by the coarse stages, which
    # read only the keys, and most efforts are settled by the certificate without the kd-tree.
    # (prepare_segments fills in samples and arc at once, as it computes them anyway, and
    # complete_segments the Earth-centred samples too, in one batch; the properties below are the same
    # arithmetic one segment at a time.)

    @cached_property
    def samples(self) -> np.ndarray:
        """The densified polyline in the local frame (no edge longer than SAMPLE_SPACING_M), (K, 2)."""
        return _densify_vertices(self.vertices)

    @cached_property
    def arc(self) -> np.ndarray:
        """Distance along the segment at each sample, (K,)."""
        return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(self.samples, axis=0).T))])

    @cached_property
    def samples_ecef(self) -> np.ndarray:
        """The samples in Earth-centred coordinates, (K, 3)."""
        return ecef(*from_local_xy(self.samples[:, 0], self.samples[:, 1], self.lat0, self.lon0))

    @cached_property
    def arc_ecef(self) -> np.ndarray:
        """The 3-D distance along :attr:`samples_ecef` at each sample, (K,)."""
        return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(self.samples_ecef, axis=0), axis=1))])

    @cached_property
    def anchors(self) -> np.ndarray:
        """Indices of the samples used as anchors by the batched certificate."""
        return np.unique(np.searchsorted(self.arc, np.arange(0.0, self.length_m, _ANCHOR_SPACING_M)))

    @cached_property
    def tree(self) -> cKDTree:
        """kd-tree of :attr:`samples`, for the exact path check."""
        return cKDTree(self.samples)


@dataclass(frozen=True, eq=False)
class PreparedTrack:
    """An activity's positions prepared once (kd-tree etc.) for matching against many segments."""

    #: Indices into the caller's arrays of the points kept (finite time and position).
    index: np.ndarray
    time: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    ecef: np.ndarray
    tree: cKDTree
    #: Distance along the track at each kept point (metres).
    cumdist: np.ndarray
    max_step_m: float
    #: Whether the step from kept point i to i+1 counts as moving, (n-1,).
    moving_step: np.ndarray
    #: Moving seconds from the first kept point to each kept point, (n,).
    moving_cum: np.ndarray
    ecef_lo: np.ndarray
    ecef_hi: np.ndarray

    def __len__(self) -> int:
        return int(self.time.shape[0])


class _Verdict(Enum):
    OK = "ok"
    TOO_SHORT = "too_short"
    DETOUR = "detour"
    NOT_FOLLOWED = "not_followed"


@dataclass(frozen=True)
class _Crossings:
    """Forward crossings of one gate, in track order: step i is the edge from kept point i to i+1."""

    step: np.ndarray
    frac: np.ndarray
    time: np.ndarray
    cumdist: np.ndarray

    @property
    def pos(self) -> np.ndarray:
        return self.step + self.frac


# --------------------------------------------------------------------------------------------------
# Preparation
# --------------------------------------------------------------------------------------------------

def ecef(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Earth-centred coordinates (metres, spherical Earth) of points given in degrees, shape (n, 3)."""
    la, lo = np.radians(np.asarray(lat, dtype=np.float64)), np.radians(np.asarray(lon, dtype=np.float64))
    c = np.cos(la)
    return np.stack([c * np.cos(lo), c * np.sin(lo), np.sin(la)], axis=-1) * EARTH_RADIUS_M


def prepare_segment(seg_lat: np.ndarray, seg_lon: np.ndarray, segment_id: Hashable = None) -> PreparedSegment:
    """Project, densify and index a segment polyline (validate it first with ``validate_segment``)."""
    return prepare_segments([(seg_lat, seg_lon)], [segment_id])[0]


def prepare_segments(paths: Sequence[tuple[np.ndarray, np.ndarray]],
                     segment_ids: Sequence[Hashable]) -> list[PreparedSegment]:
    """:func:`prepare_segment` for many segments at once; each segment's numbers are the same whatever
    batch it comes in.

    A worker with an empty cache prepares the hundreds of candidates of its first activity, most of
    which the coarse stages then reject. So only what those stages read is computed here — the
    densified path in the local frame, the gates and checkpoints, the box —, with the elementwise work
    run once over all segments' vertices concatenated; the Earth-centred samples the certificate needs
    and the kd-tree of the exact check are derived on first use (:class:`PreparedSegment`).
    """
    if len(paths) != len(segment_ids):
        raise ValueError("One id per segment path is needed.")
    if not paths:
        return []
    n_seg = len(paths)
    frame = _LocalFrames(paths)
    lat0s, lon0s, n_vert, v_first = frame.lat0s, frame.lon0s, frame.n_vert, frame.v_first
    samples, s_first, n_samp, arcs = _densify_batch(frame.xy, v_first, n_vert)
    keys = []
    for lo, k, arc in zip(s_first.tolist(), n_samp.tolist(), arcs, strict=True):
        length = float(arc[-1])
        if length <= 0.0:
            raise ValueError("The segment has zero length.")
        base = min(GATE_DIRECTION_BASE_M, length / 4.0)
        at = np.array([0.0, base, length - base, length, *(f * length for f in _CHECKPOINTS)])
        keys.append(np.column_stack([np.interp(at, arc, samples[lo:lo + k, 0]),
                                     np.interp(at, arc, samples[lo:lo + k, 1])]))
    n_key = 4 + len(_CHECKPOINTS)
    key = np.concatenate(keys)
    key_ecef = ecef(*from_local_xy(key[:, 0], key[:, 1], np.repeat(lat0s, n_key), np.repeat(lon0s, n_key)))
    key_ecef = key_ecef.reshape(n_seg, n_key, 3)
    gates = key_ecef[:, [0, 3]]
    gate_dirs = np.stack([_tangents(key_ecef[:, 1] - key_ecef[:, 0], gates[:, 0]),
                          _tangents(key_ecef[:, 3] - key_ecef[:, 2], gates[:, 1])], axis=1)
    # The box of the vertices (which are samples, computed the same way): it lies inside the box of all
    # samples, so the coarse box test, a necessary condition, lets through at least what it did.
    vertex_ecef = ecef(*from_local_xy(frame.xy[:, 0], frame.xy[:, 1], frame.v_lat0, frame.v_lon0))
    box = np.stack([np.minimum.reduceat(vertex_ecef, v_first, axis=0),
                    np.maximum.reduceat(vertex_ecef, v_first, axis=0)], axis=1)
    out = []
    for i, (lo, k) in enumerate(zip(s_first.tolist(), n_samp.tolist(), strict=True)):
        seg = PreparedSegment(
            segment_id=segment_ids[i], lat0=float(lat0s[i]), lon0=float(lon0s[i]), length_m=float(arcs[i][-1]),
            vertices=frame.xy[v_first[i]:v_first[i] + n_vert[i]], gates=gates[i], gate_dirs=gate_dirs[i],
            checkpoints=key_ecef[i, 4:], box=box[i])
        seg.__dict__.update(samples=samples[lo:lo + k], arc=arcs[i])  # the cached properties, computed already
        out.append(seg)
    return out


class _LocalFrames:
    """Many segments' vertices concatenated, each in the local frame centred on its own first vertex."""

    def __init__(self, paths: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        lats = [np.asarray(lat, dtype=np.float64).ravel() for lat, _ in paths]
        lons = [np.asarray(lon, dtype=np.float64).ravel() for _, lon in paths]
        for lat, lon in zip(lats, lons, strict=True):
            if lat.shape[0] < 2 or lat.shape != lon.shape:
                raise ValueError("A segment needs at least 2 points with finite coordinates.")
        lat, lon = np.concatenate(lats), np.concatenate(lons)
        if not (np.isfinite(lat).all() and np.isfinite(lon).all()):
            raise ValueError("A segment needs at least 2 points with finite coordinates.")
        self.n_vert = np.array([a.shape[0] for a in lats], dtype=np.int64)
        self.v_first = np.cumsum(self.n_vert) - self.n_vert
        self.lat0s, self.lon0s = lat[self.v_first], lon[self.v_first]
        self.v_lat0, self.v_lon0 = np.repeat(self.lat0s, self.n_vert), np.repeat(self.lon0s, self.n_vert)
        x, y = to_local_xy(lat, lon, self.v_lat0, self.v_lon0)
        self.xy = np.column_stack([x, y])


def _densify_batch(xy: np.ndarray, v_first: np.ndarray,
                   n_vert: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Many segments' samples (as :func:`densify`), concatenated: samples, each one's first sample and count,
    and each one's distance along it at every sample."""
    # Each vertex but a segment's last opens an edge cut into `pieces`; the last vertex is a zero-length
    # edge of one piece, i.e. itself.
    last = v_first + n_vert - 1
    vec = np.zeros_like(xy)
    vec[:-1] = xy[1:] - xy[:-1]
    vec[last] = 0.0
    pieces = np.maximum(1, np.ceil(np.hypot(vec[:, 0], vec[:, 1]) / SAMPLE_SPACING_M)).astype(np.int64)
    pieces[last] = 1
    edge = np.repeat(np.arange(xy.shape[0]), pieces)
    first = np.repeat(np.cumsum(pieces) - pieces, pieces)
    frac = (np.arange(edge.shape[0]) - first) / pieces[edge]
    samples = xy[edge] + frac[:, None] * vec[edge]
    n_samp = np.add.reduceat(pieces, v_first)
    s_first = np.cumsum(n_samp) - n_samp
    return samples, s_first, n_samp, _running_sums(np.hypot(*np.diff(samples, axis=0).T), s_first, n_samp)


def _running_sums(step: np.ndarray, first: np.ndarray, count: np.ndarray) -> list[np.ndarray]:
    """For each run of ``count`` points from ``first`` (steps concatenated, step i from point i to i+1): 0 then
    the running sum of its steps, element for element ``np.concatenate([[0.0], np.cumsum(run_steps)])``.

    Many runs at once: each is a row of a zero-padded matrix summed along the row, in order as the run alone
    would be (a running sum over the concatenation would carry one segment's rounding into the next). Runs
    are grouped by length (within a factor of two), so the padding at most doubles the memory and the work
    even when one 100 km segment comes with hundreds of short ones."""
    out: list[np.ndarray] = [np.zeros(0)] * count.shape[0]
    order = np.argsort(count, kind="stable")
    by_length = count[order]
    lo = 0
    while lo < order.shape[0]:
        hi = int(np.searchsorted(by_length, 2 * by_length[lo], side="right"))
        runs = order[lo:hi]
        n, inner = runs.shape[0], count[runs] - 1
        row = np.repeat(np.arange(n), inner)
        col = np.arange(row.shape[0]) - np.repeat(np.cumsum(inner) - inner, inner)
        grid = np.zeros((n, int(by_length[hi - 1])))
        grid[row, col + 1] = step[np.repeat(first[runs], inner) + col]
        np.cumsum(grid, axis=1, out=grid)
        for r, i, k in zip(range(n), runs.tolist(), count[runs].tolist(), strict=True):
            out[i] = grid[r, :k].copy()
        lo = hi
    return out


def _densify_vertices(xy: np.ndarray) -> np.ndarray:
    """One segment's samples, element for element the arithmetic of :func:`_densify_batch`."""
    vec = np.zeros_like(xy)
    vec[:-1] = xy[1:] - xy[:-1]
    pieces = np.maximum(1, np.ceil(np.hypot(vec[:, 0], vec[:, 1]) / SAMPLE_SPACING_M)).astype(np.int64)
    pieces[-1] = 1
    edge = np.repeat(np.arange(xy.shape[0]), pieces)
    first = np.repeat(np.cumsum(pieces) - pieces, pieces)
    frac = (np.arange(edge.shape[0]) - first) / pieces[edge]
    return xy[edge] + frac[:, None] * vec[edge]


def complete_segments(keys: Sequence[SegmentKeys],
                      paths: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[PreparedSegment]:
    """Segments known by their stored keys (:func:`unpack_keys`) made whole from their paths, in one batch: the
    same segments, with the same numbers, as :func:`prepare_segments` makes of those paths.

    Only segments that cross both gates come this far, and every one of them goes on to the certificate, which
    reads the samples in Earth-centred coordinates; so those are worked out here too, for all of them at once
    (one segment at a time they cost more in numpy calls than in arithmetic).
    """
    if len(keys) != len(paths):
        raise ValueError("One path per segment is needed.")
    if not keys:
        return []
    frame = _LocalFrames(paths)
    samples, s_first, n_samp, arcs = _densify_batch(frame.xy, frame.v_first, frame.n_vert)
    # Element for element the arithmetic of PreparedSegment.samples_ecef / arc_ecef.
    samples_ecef = ecef(*from_local_xy(samples[:, 0], samples[:, 1], np.repeat(frame.lat0s, n_samp),
                                       np.repeat(frame.lon0s, n_samp)))
    arcs_ecef = _running_sums(np.linalg.norm(np.diff(samples_ecef, axis=0), axis=1), s_first, n_samp)
    lat0s, lon0s, v_first, n_vert = (a.tolist() for a in (frame.lat0s, frame.lon0s, frame.v_first, frame.n_vert))
    out = []
    for i, (key, lo, k) in enumerate(zip(keys, s_first.tolist(), n_samp.tolist(), strict=True)):
        seg = PreparedSegment(
            segment_id=key.segment_id, lat0=lat0s[i], lon0=lon0s[i], length_m=key.length_m,
            vertices=frame.xy[v_first[i]:v_first[i] + n_vert[i]], gates=key.gates, gate_dirs=key.gate_dirs,
            checkpoints=key.checkpoints, box=key.box)
        seg.__dict__.update(samples=samples[lo:lo + k], arc=arcs[i], samples_ecef=samples_ecef[lo:lo + k],
                            arc_ecef=arcs_ecef[i])
        out.append(seg)
    return out


#: Layout of :func:`pack_segment`'s blobs. The fingerprint covers the constants that shape a prepared
#: segment, so a blob written before one of them changed is not read (the segment is prepared afresh);
#: bump the layout number when prepare_segments changes in any other way.
_PACK_LAYOUT = 1
_PACK_FINGERPRINT = zlib.crc32(repr((_PACK_LAYOUT, SAMPLE_SPACING_M, GATE_DIRECTION_BASE_M, _CHECKPOINTS)).encode())
#: float64 values: length, gates (2, 3), gate_dirs (2, 3), checkpoints (C, 3), box (2, 3).
_PACK = struct.Struct(f"<I{1 + 18 + 3 * len(_CHECKPOINTS)}d")
#: Size in bytes of every blob :func:`pack_segment` writes.
PACK_SIZE = _PACK.size
#: The same layout as a numpy record, so that many blobs are read with one np.frombuffer.
PACK_RECORD = np.dtype([("fingerprint", "<u4"), ("values", "<f8", (1 + 18 + 3 * len(_CHECKPOINTS),))])


def pack_segment(seg: SegmentKeys) -> bytes:
    """What is stored with a segment so that a fresh process need not work it out again: its
    :class:`SegmentKeys` (236 bytes whatever the segment's length). The samples are batch work from the path,
    and are derived only for the few candidates that cross both gates."""
    values = np.concatenate([[seg.length_m], seg.gates.ravel(), seg.gate_dirs.ravel(), seg.checkpoints.ravel(),
                             seg.box.ravel()])
    return _PACK.pack(_PACK_FINGERPRINT, *values.tolist())


def unpack_keys(segment_ids: Sequence[Hashable],
                stored: Sequence[bytes | memoryview | None]) -> list[SegmentKeys | None]:
    """The :class:`SegmentKeys` that :func:`pack_segment` stored, one per id; None where there is no blob, or one
    written by a different preparation (fingerprint), or not whole (the segment must be prepared from its path).

    The blobs are decoded together (hundreds of them in a fresh process): one buffer, one np.frombuffer."""
    if len(segment_ids) != len(stored):
        raise ValueError("One stored blob per segment id is needed.")
    whole = [(i, blob) for i, blob in enumerate(stored) if blob is not None and len(blob) == PACK_SIZE]
    out: list[SegmentKeys | None] = [None] * len(stored)
    if whole:
        records = np.frombuffer(b"".join([blob for _, blob in whole]), dtype=PACK_RECORD)
        for (i, _), keys in zip(whole, unpack_records([segment_ids[i] for i, _ in whole], records), strict=True):
            out[i] = keys
    return out


def unpack_records(segment_ids: Sequence[Hashable], records: np.ndarray) -> list[SegmentKeys | None]:
    """:func:`unpack_keys` of whole blobs already read as one array of :data:`PACK_RECORD` (possibly a field of a
    wider record, as a query that returns each row's id with its blob gives them); None where the fingerprint is
    another preparation's."""
    if len(segment_ids) != records.shape[0]:
        raise ValueError("One stored record per segment id is needed.")
    current = (records["fingerprint"] == _PACK_FINGERPRINT).tolist()
    values = np.ascontiguousarray(records["values"], dtype=np.float64)
    c = 13 + 3 * len(_CHECKPOINTS)
    lengths = values[:, 0].tolist()
    gates, gate_dirs = values[:, 1:7].reshape(-1, 2, 3), values[:, 7:13].reshape(-1, 2, 3)
    checkpoints, box = values[:, 13:c].reshape(values.shape[0], -1, 3), values[:, c:].reshape(-1, 2, 3)
    return [SegmentKeys(segment_id=seg_id, length_m=lengths[j], gates=gates[j], gate_dirs=gate_dirs[j],
                        checkpoints=checkpoints[j], box=box[j]) if current[j] else None
            for j, seg_id in enumerate(segment_ids)]


def is_current_pack(blob: bytes | memoryview | None) -> bool:
    """Whether ``blob`` is a :func:`pack_segment` blob this version reads."""
    return unpack_keys([None], [blob])[0] is not None


def _tangents(v: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Rows of ``v`` made horizontal at the rows of ``at`` and of unit length (zero rows stay zero)."""
    up = at / np.linalg.norm(at, axis=1, keepdims=True)
    h = v - np.einsum("ij,ij->i", v, up)[:, None] * up
    n = np.linalg.norm(h, axis=1, keepdims=True)
    return np.divide(h, n, out=np.zeros_like(h), where=n > 0)


def prepare_track(track_time: np.ndarray, track_lat: np.ndarray, track_lon: np.ndarray,
                  moving: np.ndarray | None = None) -> PreparedTrack:
    """Keep points with a time and a position, build the kd-tree and per-step moving flags.

    Times must be non-decreasing (as in a parsed Track). With ``moving`` (one flag per point of the
    caller's arrays) the step ending at a point is moving when that point's flag is set; otherwise a
    step is moving when its speed is at least STOPPED_SPEED_MPS (a recording gap with little
    displacement, e.g. auto-pause, therefore counts as stopped).
    """
    t = np.asarray(track_time, dtype=np.float64)
    la = np.asarray(track_lat, dtype=np.float64)
    lo = np.asarray(track_lon, dtype=np.float64)
    index = np.flatnonzero(np.isfinite(t) & np.isfinite(la) & np.isfinite(lo))
    t, la, lo = t[index], la[index], lo[index]
    pts = ecef(la, lo).reshape(-1, 3)
    steps = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    cumdist = np.concatenate([[0.0], np.cumsum(steps)])[: index.shape[0]]
    if moving is not None:
        moving_step = np.asarray(moving, dtype=bool)[index][1:]
    else:
        dt = np.diff(t)
        moving_step = (dt > 0) & (steps >= STOPPED_SPEED_MPS * dt)
    empty = index.shape[0] == 0
    moving_cum = np.concatenate([[0.0], np.cumsum(np.diff(t) * moving_step)])[: index.shape[0]]
    return PreparedTrack(
        index=index, time=t, lat=la, lon=lo, ecef=pts, tree=cKDTree(pts),
        cumdist=cumdist, max_step_m=float(steps.max()) if steps.shape[0] else 0.0,
        moving_step=moving_step, moving_cum=moving_cum,
        ecef_lo=np.full(3, np.inf) if empty else pts.min(axis=0),
        ecef_hi=np.full(3, -np.inf) if empty else pts.max(axis=0),
    )


def densify(xy: np.ndarray, spacing_m: float) -> np.ndarray:
    """Polyline (n, 2) with points added so no edge is longer than ``spacing_m``; vertices are kept."""
    if xy.shape[0] < 2:
        return xy.copy()
    vec = np.diff(xy, axis=0)
    lens = np.hypot(vec[:, 0], vec[:, 1])
    pieces = np.maximum(1, np.ceil(lens / spacing_m)).astype(np.int64)
    edge = np.repeat(np.arange(lens.shape[0]), pieces)
    first = np.repeat(np.cumsum(pieces) - pieces, pieces)
    frac = (np.arange(edge.shape[0]) - first) / pieces[edge]
    out = xy[edge] + frac[:, None] * vec[edge]
    return np.vstack([out, xy[-1:]])


# --------------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------------

def match_segment(track_time: np.ndarray, track_lat: np.ndarray, track_lon: np.ndarray,
                  seg_lat: np.ndarray, seg_lon: np.ndarray, *,
                  start_radius_m: float = DEFAULT_START_RADIUS_M, corridor_m: float = DEFAULT_CORRIDOR_M,
                  moving: np.ndarray | None = None) -> list[Effort]:
    """All (non-overlapping) efforts of one activity on one segment, in time order."""
    track = prepare_track(track_time, track_lat, track_lon, moving)
    seg = prepare_segment(seg_lat, seg_lon)
    return match_prepared(track, seg, start_radius_m=start_radius_m, corridor_m=corridor_m)


def match_many(track_time: np.ndarray, track_lat: np.ndarray, track_lon: np.ndarray,
               segments: Iterable[PreparedSegment], *,
               start_radius_m: float = DEFAULT_START_RADIUS_M, corridor_m: float = DEFAULT_CORRIDOR_M,
               moving: np.ndarray | None = None) -> dict[Hashable, list[Effort]]:
    """Efforts of one activity on each candidate segment; segments without an effort are left out.

    Builds the activity's kd-tree once; see :func:`match_many_prepared` for the stages.
    """
    track = prepare_track(track_time, track_lat, track_lon, moving)
    return match_many_prepared(track, segments, start_radius_m=start_radius_m, corridor_m=corridor_m)


def match_prepared(track: PreparedTrack, seg: PreparedSegment, *,
                   start_radius_m: float = DEFAULT_START_RADIUS_M,
                   corridor_m: float = DEFAULT_CORRIDOR_M) -> list[Effort]:
    """Efforts of a prepared track on one prepared segment."""
    found = match_many_prepared(track, [seg], start_radius_m=start_radius_m, corridor_m=corridor_m)
    return found.get(seg.segment_id, [])


def match_many_prepared(track: PreparedTrack, segments: Iterable[SegmentKeys], *,
                        start_radius_m: float = DEFAULT_START_RADIUS_M,
                        corridor_m: float = DEFAULT_CORRIDOR_M,
                        complete: Completer | None = None) -> dict[Hashable, list[Effort]]:
    """:func:`match_many` on an already prepared track (e.g. when candidates arrive in batches).

    Stages, each vectorised over all remaining candidates, cheapest first:
    1. the segment's box must lie inside the track's box grown by the corridor;
    2. both gate points must have a track point within radius + half the longest step, and the
       interior checkpoints one within corridor + half the longest step (kd-tree, one query);
    3. forward gate crossings within the radius (all candidates' gates at once);
    4. a sufficient certificate, batched over every (start crossing, next end crossing) pair of all
       segments, that settles ordinary efforts;
    then, per segment, the pairing into efforts, with the exact path check for whatever the
    certificate did not settle (detours, shortcuts, tangled hairpins...).

    Stages 1-3 read only the :class:`SegmentKeys`. Segments may therefore be given by their keys alone with
    ``complete``, which is called once, with those of them that cross both gates (typically a few of the
    hundreds of candidates), and returns each one's :class:`PreparedSegment` (same id and keys), or None to
    leave it out (e.g. it is gone).
    """
    segs = list(segments)
    if len(track) < 2 or not segs:
        return {}
    cand = _coarse_candidates(track, segs, start_radius_m, corridor_m)
    if cand.shape[0] == 0:
        return {}
    gated_keys = [segs[i] for i in cand]
    crossed = _gate_crossings(track, gated_keys, start_radius_m)
    whole: list[PreparedSegment | None] = [
        seg if isinstance(seg, PreparedSegment) else None for seg in (gated_keys[c] for c, _, _ in crossed)]
    todo = [k for k, seg in enumerate(whole) if seg is None]
    if todo:
        if complete is None:
            raise ValueError("Segments given by their keys alone need `complete`.")
        done = complete([gated_keys[crossed[k][0]] for k in todo])
        if len(done) != len(todo):
            raise ValueError("`complete` must return one segment (or None) per segment it is given.")
        for k, seg in zip(todo, done, strict=True):
            whole[k] = seg
    # From here on, `gated` holds the whole segments and the crossings index into it.
    gated: list[PreparedSegment] = []
    crossings: list[tuple[int, _Crossings, _Crossings]] = []
    for seg, (_, starts, ends) in zip(whole, crossed, strict=True):
        if seg is not None:
            crossings.append((len(gated), starts, ends))
            gated.append(seg)
    certified = _certify(track, gated, crossings, corridor_m)
    out: dict[Hashable, list[Effort]] = {}
    for c, starts, ends in crossings:
        seg = gated[c]
        efforts = _pair_efforts(track, seg, starts, ends, corridor_m, certified.get(c, {}))
        if efforts:
            out[seg.segment_id] = efforts
    return out


def ends_within_reach(track: PreparedTrack, first_lat: np.ndarray, first_lon: np.ndarray, last_lat: np.ndarray,
                      last_lon: np.ndarray, *, start_radius_m: float = DEFAULT_START_RADIUS_M) -> np.ndarray:
    """Which segments, given by their first and last vertices, could have an effort on this track.

    A necessary condition, checked *before* preparing segments (preparing costs far more than this): both
    end points within reach of a recorded point. It is the gate-point test of
    :func:`match_many_prepared`'s coarse stage with 1 m more reach (the gate points are the end vertices
    after a round trip through the local projection, nanometres off), so it never drops a segment that
    stage would keep, and the efforts found are the same with or without it.
    """
    n = np.asarray(first_lat).shape[0]
    if n == 0 or len(track) < 2:
        return np.zeros(n, dtype=bool)
    reach = start_radius_m * _COARSE_SCALE + _COARSE_PAD_M + track.max_step_m / 2.0 + 1.0
    ends = ecef(np.concatenate([first_lat, last_lat]), np.concatenate([first_lon, last_lon]))
    dist, _ = track.tree.query(ends, k=1, distance_upper_bound=reach)
    near = np.isfinite(dist)
    return near[:n] & near[n:]


# --------------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------------

def _coarse_candidates(track: PreparedTrack, segs: Sequence[SegmentKeys],
                       radius_m: float, corridor_m: float) -> np.ndarray:
    """Indices of the segments passing the box, gate-point and checkpoint tests."""
    half_step = track.max_step_m / 2.0
    grow = corridor_m * _COARSE_SCALE + _COARSE_PAD_M
    box = np.array([s.box for s in segs])
    cand = np.flatnonzero(np.all((box[:, 0] >= track.ecef_lo - grow) & (box[:, 1] <= track.ecef_hi + grow),
                                 axis=1))
    if cand.shape[0] == 0:
        return cand
    # A point of the track polyline within d of p implies a recorded point within d + half a step.
    gate_reach = radius_m * _COARSE_SCALE + _COARSE_PAD_M + half_step
    dist, _ = track.tree.query(np.concatenate([segs[i].gates for i in cand.tolist()]), k=1,
                               distance_upper_bound=gate_reach)
    cand = cand[np.all(np.isfinite(dist.reshape(-1, 2)), axis=1)]
    if cand.shape[0] == 0:
        return cand
    dist, _ = track.tree.query(np.concatenate([segs[i].checkpoints for i in cand.tolist()]), k=1,
                               distance_upper_bound=grow + half_step)
    return cand[np.all(np.isfinite(dist.reshape(cand.shape[0], -1)), axis=1)]


def _gate_crossings(track: PreparedTrack, segs: Sequence[SegmentKeys],
                    radius_m: float) -> list[tuple[int, _Crossings, _Crossings]]:
    """Forward crossings of every segment's start and end gates within ``radius_m`` of the gate point.

    Returns (index into ``segs``, start crossings, end crossings) for the segments that have both.
    Gate g = 2·(segment) + (0 start | 1 end). A crossing on track edge i within the radius has an
    endpoint within radius + half the edge, so only edges touching those points are tested.
    """
    gates = np.concatenate([s.gates for s in segs])
    dirs = np.concatenate([s.gate_dirs for s in segs])
    reach = radius_m + track.max_step_m / 2.0 + _COARSE_PAD_M
    near = track.tree.query_ball_point(gates, reach)
    counts = np.fromiter((len(x) for x in near), dtype=np.int64, count=gates.shape[0])
    points = np.fromiter(itertools.chain.from_iterable(near), dtype=np.int64, count=int(counts.sum()))
    g = np.repeat(np.arange(gates.shape[0]), counts)
    n = len(track)
    # Edges ending and starting at each nearby point (an edge with both ends near comes up twice;
    # duplicates are dropped once only the few crossings are left).
    g = np.concatenate([g, g])
    step = np.concatenate([points - 1, points])
    valid = (step >= 0) & (step < n - 1)
    g, step = g[valid], step[valid]
    p0, p1 = track.ecef[step], track.ecef[step + 1]
    a0 = np.einsum("ij,ij->i", p0 - gates[g], dirs[g])
    a1 = np.einsum("ij,ij->i", p1 - gates[g], dirs[g])
    fwd = (a0 < 0.0) & (a1 >= 0.0)
    g, step, a0, a1, p0, p1 = g[fwd], step[fwd], a0[fwd], a1[fwd], p0[fwd], p1[fwd]
    frac = -a0 / (a1 - a0)
    cross = p0 + frac[:, None] * (p1 - p0)
    close = np.linalg.norm(cross - gates[g], axis=1) <= radius_m
    key, first = np.unique(g[close] * n + step[close], return_index=True)  # sorted: gate, then edge
    g, step, frac = key // n, key % n, frac[close][first]
    t0, t1 = track.time[step], track.time[step + 1]
    c0, c1 = track.cumdist[step], track.cumdist[step + 1]
    time, cum = t0 + frac * (t1 - t0), c0 + frac * (c1 - c0)
    # Only segments with crossings at both gates go on; slice each gate's run of crossings.
    has = np.zeros(gates.shape[0], dtype=bool)
    has[g] = True
    both = np.flatnonzero(has[0::2] & has[1::2])
    lo = np.searchsorted(g, np.stack([2 * both, 2 * both + 1]))
    hi = np.searchsorted(g, np.stack([2 * both, 2 * both + 1]), side="right")
    out: list[tuple[int, _Crossings, _Crossings]] = []
    for c, (a0_, a1_), (b0_, b1_) in zip(both.tolist(), lo.T.tolist(), hi.T.tolist(), strict=True):
        out.append((c, _Crossings(step[a0_:b0_], frac[a0_:b0_], time[a0_:b0_], cum[a0_:b0_]),
                    _Crossings(step[a1_:b1_], frac[a1_:b1_], time[a1_:b1_], cum[a1_:b1_])))
    return out


def _pair_efforts(track: PreparedTrack, seg: PreparedSegment, starts: _Crossings, ends: _Crossings,
                  corridor_m: float, certified: dict[tuple[int, int], tuple[float, float]]) -> list[Effort]:
    """Pair start and end crossings into valid, non-overlapping efforts, earliest first.

    ``certified`` maps (start, end) crossing pairs already shown valid to their offsets.
    """

    def check(si: int, ei: int) -> tuple[_Verdict, tuple[float, float]]:
        if (si, ei) in certified:
            return _Verdict.OK, certified[(si, ei)]
        return _check(track, seg, starts, si, ends, ei, corridor_m)

    s_pos, e_pos = starts.pos, ends.pos
    efforts: list[Effort] = []
    free_from = -np.inf  # track distance before which no new effort may start
    n_start = s_pos.shape[0]
    si = 0
    while si < n_start:
        if starts.cumdist[si] < free_from:
            si += 1
            continue
        found: tuple[int, tuple[float, float]] | None = None
        for end in np.flatnonzero(e_pos > s_pos[si]).tolist():
            verdict, offsets = check(si, end)
            if verdict is _Verdict.OK:
                found = (end, offsets)
                break
            if verdict is _Verdict.DETOUR:
                break  # any later end gate would include the same stray point
        if found is None:
            si += 1
            continue
        ei, offsets = found
        # Several start crossings can precede one effort (GPS jitter on the line, a false start):
        # time it from the last one that still gives a valid effort, as a rider would expect.
        best = si
        for sj in range(si + 1, n_start):
            if s_pos[sj] >= e_pos[ei]:
                break
            verdict, offs = check(sj, ei)
            if verdict is _Verdict.OK:
                best, offsets = sj, offs
        efforts.append(_effort(track, starts, best, ends, ei, offsets, corridor_m))
        free_from = ends.cumdist[ei] - _MAX_OVERLAP_M
        si = best + 1
    return efforts


def _certify(track: PreparedTrack, segs: Sequence[PreparedSegment],
             crossings: list[tuple[int, _Crossings, _Crossings]],
             corridor_m: float) -> dict[int, dict[tuple[int, int], tuple[float, float]]]:
    """Batched sufficient test for every (start crossing, first end crossing after it) pair.

    For a pair, the window is the track polyline from the start crossing to the end crossing. Each
    window vertex j is assigned a segment sample cut_j, non-decreasing from the first sample to the
    last: segment anchors (every _ANCHOR_SPACING_M) are mapped to their nearest track point (one
    kd-tree query for all segments) and the vertices between are interpolated by distance along the
    track. The segment between samples cut_j and cut_j+1 has arc length s and chord c, so it lies
    within h = sqrt(s² − c²) / 2 of that chord (an ellipse with the chord's ends as foci), and the
    chord lies within max(e_j, e_j+1) of track edge j, e being the vertex-to-sample distance. If
    h + max(e) ≤ corridor on every edge, every sample is within the corridor of "its" edge, in
    order, and every vertex is within the corridor of the segment: the pair is a valid effort.
    Work is in 3-D Earth-centred coordinates, all windows concatenated (composite keys keep them
    apart). Returns {segment: {(start, end): (mean, max) vertex offset}} for the pairs shown valid.
    """
    if not crossings:
        return {}
    # Natural pairs — each start crossing with the first end crossing after it that is far enough
    # along the track — flattened: segment, local start/end crossing index, the crossings' data.
    slack = [_MIN_LENGTH_RATIO * segs[c].length_m - _MIN_LENGTH_SLACK_M for c, _, _ in crossings]
    firsts = [np.maximum(np.searchsorted(en.pos, st.pos, side="right"),
                         np.searchsorted(en.cumdist, st.cumdist + sl))
              for (_, st, en), sl in zip(crossings, slack, strict=True)]
    keep = [np.flatnonzero(e < en.pos.shape[0]) for e, (_, _, en) in zip(firsts, crossings, strict=True)]
    p_seg = np.concatenate([np.full(k.shape[0], c) for k, (c, _, _) in zip(keep, crossings, strict=True)])
    if p_seg.shape[0] == 0:
        return {}
    p_si = np.concatenate(keep)
    p_ei = np.concatenate([e[k] for e, k in zip(firsts, keep, strict=True)])
    p_i0 = np.concatenate([st.step[k] for k, (_, st, _) in zip(keep, crossings, strict=True)])
    p_f0 = np.concatenate([st.frac[k] for k, (_, st, _) in zip(keep, crossings, strict=True)])
    p_c0 = np.concatenate([st.cumdist[k] for k, (_, st, _) in zip(keep, crossings, strict=True)])
    p_i1 = np.concatenate([en.step[e[k]] for e, k, (_, _, en) in zip(firsts, keep, crossings, strict=True)])
    p_f1 = np.concatenate([en.frac[e[k]] for e, k, (_, _, en) in zip(firsts, keep, crossings, strict=True)])
    p_c1 = np.concatenate([en.cumdist[e[k]] for e, k, (_, _, en) in zip(firsts, keep, crossings, strict=True)])
    n_pairs = p_seg.shape[0]
    pair_ids = np.arange(n_pairs)

    # Concatenated samples of the segments involved; per pair: sample offset and count.
    involved = np.unique(p_seg)
    n_samp = np.array([segs[c].samples_ecef.shape[0] for c in involved])
    seg_off = np.zeros(len(segs), dtype=np.int64)
    seg_off[involved] = np.cumsum(n_samp) - n_samp
    seg_len = np.zeros(len(segs), dtype=np.int64)
    seg_len[involved] = n_samp
    samples = np.concatenate([segs[c].samples_ecef for c in involved])
    arc = np.concatenate([segs[c].arc_ecef for c in involved])
    length = np.array([segs[c].length_m for c in p_seg])
    p_off, p_k = seg_off[p_seg], seg_len[p_seg]

    # Windows: crossing point, recorded points in between, crossing point.
    counts = p_i1 - p_i0 + 2
    w_first = np.cumsum(counts) - counts
    w_pair = np.repeat(pair_ids, counts)
    w_local = np.arange(w_pair.shape[0]) - w_first[w_pair]
    w_vertex = p_i0[w_pair] + w_local
    w_last = w_first + counts - 1
    window = track.ecef[np.minimum(w_vertex, len(track) - 1)]
    window[w_first] = track.ecef[p_i0] + p_f0[:, None] * (track.ecef[p_i0 + 1] - track.ecef[p_i0])
    window[w_last] = track.ecef[p_i1] + p_f1[:, None] * (track.ecef[p_i1 + 1] - track.ecef[p_i1])
    along = track.cumdist[np.minimum(w_vertex, len(track) - 1)]
    along[w_first], along[w_last] = p_c0, p_c1

    # Anchors: segment samples → nearest recorded point, kept for the pairs whose window holds it.
    a_seg = np.concatenate([np.full(segs[c].anchors.shape[0], c) for c in involved])
    a_k = np.concatenate([segs[c].anchors for c in involved])
    _, a_v = track.tree.query(samples[seg_off[a_seg] + a_k], k=1,
                              distance_upper_bound=corridor_m * _COARSE_SCALE + track.max_step_m / 2.0)
    pair_lo = np.searchsorted(p_seg, a_seg)  # pairs are grouped by segment
    reps = np.searchsorted(p_seg, a_seg, side="right") - pair_lo
    a_pair = np.repeat(pair_lo, reps) + (np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps))
    a_k, a_v = np.repeat(a_k, reps), np.repeat(a_v, reps)
    inside = (a_v > p_i0[a_pair]) & (a_v <= p_i1[a_pair])
    a_pair, a_k, a_v = a_pair[inside], a_k[inside], a_v[inside]
    # Where the anchor projects along the track: from its nearest point, forwards onto the next
    # edge or backwards onto the previous one (matters for sparse recordings).
    a_pt = samples[seg_off[p_seg[a_pair]] + a_k]
    fwd_len = track.cumdist[a_v + 1] - track.cumdist[a_v]
    back_len = track.cumdist[a_v] - track.cumdist[a_v - 1]
    t_fwd = np.einsum("ij,ij->i", a_pt - track.ecef[a_v], track.ecef[a_v + 1] - track.ecef[a_v])
    t_back = np.einsum("ij,ij->i", a_pt - track.ecef[a_v], track.ecef[a_v - 1] - track.ecef[a_v])
    a_along = (track.cumdist[a_v] + np.clip(t_fwd / np.maximum(fwd_len, 1e-9), 0.0, fwd_len)
               - np.clip(t_back / np.maximum(back_len, 1e-9), 0.0, back_len))
    a_along = np.clip(a_along, p_c0[a_pair], p_c1[a_pair])
    # Interpolation knots per pair: (along, sample), with the crossings pinned to the first and
    # last sample. Keys are offset by pair so one sort / running max / interp serves all pairs.
    kx = np.concatenate([pair_ids * _KEY_ALONG + p_c0, a_pair * _KEY_ALONG + a_along,
                         pair_ids * _KEY_ALONG + p_c1])
    ky = np.concatenate([pair_ids * _KEY_SAMPLE, a_pair * _KEY_SAMPLE + a_k,
                         pair_ids * _KEY_SAMPLE + p_k - 1]).astype(np.float64)
    order = np.argsort(kx, kind="stable")
    kx, ky = kx[order], np.maximum.accumulate(ky[order])
    cut = np.rint(np.interp(w_pair * _KEY_ALONG + along, kx, ky)).astype(np.int64)
    cut = np.maximum.accumulate(cut) - (w_pair * int(_KEY_SAMPLE))
    cut = np.clip(cut, 0, p_k[w_pair] - 1)
    pinned = (cut[w_first] == 0) & (cut[w_last] == p_k - 1)  # bands must span the whole segment
    cut += p_off[w_pair]

    # The certificate itself.
    near = samples[cut]
    e = np.linalg.norm(window - near, axis=1)
    s = np.diff(arc[cut])
    c = np.linalg.norm(np.diff(near, axis=0), axis=1)
    h = 0.5 * np.sqrt(np.maximum(s * s - c * c, 0.0))
    same = w_pair[1:] == w_pair[:-1]
    bad = same & (h + np.maximum(e[:-1], e[1:]) > corridor_m)
    ok = (np.bincount(w_pair[:-1][bad], minlength=n_pairs) == 0) & pinned
    ok &= (p_c1 - p_c0) >= _MIN_LENGTH_RATIO * length - _MIN_LENGTH_SLACK_M
    mean = np.bincount(w_pair, weights=e, minlength=n_pairs) / counts
    worst = np.maximum.reduceat(e, w_first)
    out: dict[int, dict[tuple[int, int], tuple[float, float]]] = {}
    for p in np.flatnonzero(ok).tolist():
        out.setdefault(int(p_seg[p]), {})[(int(p_si[p]), int(p_ei[p]))] = (float(mean[p]), float(worst[p]))
    return out


def _check(track: PreparedTrack, seg: PreparedSegment, starts: _Crossings, si: int,
           ends: _Crossings, ei: int, corridor_m: float) -> tuple[_Verdict, tuple[float, float]]:
    """Does the track between start crossing ``si`` and end crossing ``ei`` follow the segment?

    The exact test, in the segment's local frame. Returns the verdict and the (mean, max) distance
    of the window's vertices from the segment.
    """
    none = (np.nan, np.nan)
    if ends.cumdist[ei] - starts.cumdist[si] < _MIN_LENGTH_RATIO * seg.length_m - _MIN_LENGTH_SLACK_M:
        return _Verdict.TOO_SHORT, none
    i0, i1 = int(starts.step[si]), int(ends.step[ei])
    # Points i0 .. i1+1: the crossing edges' ends plus everything recorded between the crossings.
    x, y = to_local_xy(track.lat[i0:i1 + 2], track.lon[i0:i1 + 2], seg.lat0, seg.lon0)
    pts = np.column_stack([x, y])
    c_start = pts[0] + starts.frac[si] * (pts[1] - pts[0])
    c_end = pts[-2] + ends.frac[ei] * (pts[-1] - pts[-2])
    window = np.vstack([c_start, pts[1:-1], c_end])
    d, nearest = seg.tree.query(window, k=1)
    if np.any(d[1:-1] > corridor_m):
        return _Verdict.DETOUR, none  # a recorded point strays from the segment
    nearest = np.where(d <= corridor_m, nearest, seg.samples.shape[0])
    if not (_banded_cover(seg, window, nearest, corridor_m) or _exact_cover(seg, window, corridor_m)):
        return _Verdict.NOT_FOLLOWED, none
    return _Verdict.OK, (float(d.mean()), float(d.max()))


def _banded_cover(seg: PreparedSegment, window: np.ndarray, nearest: np.ndarray,
                  corridor_m: float) -> bool:
    """Sufficient test of ordered coverage (False means "not shown", not "not covered").

    Each window vertex's nearest segment sample, made non-decreasing (running max), cuts the
    segment's samples into consecutive bands, one per window edge. If every sample is within the
    corridor of the edge of its band, the bands are an ordered assignment and the track follows the
    segment. When this fails (a shortcut — or legs of a hairpin confusing the nearest-sample map) the
    exact test decides.
    """
    n_seg = seg.samples.shape[0]
    cut = np.maximum.accumulate(np.minimum(nearest, n_seg - 1))
    cut[0], cut[-1] = 0, n_seg - 1
    cut = np.maximum.accumulate(cut)
    size = np.diff(cut) + 1
    edge = np.repeat(np.arange(size.shape[0]), size)
    sample = np.repeat(cut[:-1], size) + (np.arange(edge.shape[0]) - np.repeat(np.cumsum(size) - size, size))
    dist = _point_edge_distance(seg.samples[sample], window[edge], window[edge + 1])
    covered = np.zeros(n_seg, dtype=bool)
    covered[sample[dist <= corridor_m]] = True
    return bool(covered.all())


def _exact_cover(seg: PreparedSegment, window: np.ndarray, corridor_m: float) -> bool:
    """Is every segment sample within the corridor of the (densified) window, in order?"""
    wtree = cKDTree(densify(window, SAMPLE_SPACING_M))
    d, m = wtree.query(seg.samples, k=1, distance_upper_bound=corridor_m)
    if not np.all(np.isfinite(d)):
        return False
    return bool(np.all(np.diff(m) >= 0) or _ordered_cover(seg, wtree, corridor_m))


def _point_edge_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from points p to the segments a-b, all (n, 2)."""
    ab = b - a
    ap = p - a
    len2 = np.einsum("ij,ij->i", ab, ab)
    t = np.clip(np.einsum("ij,ij->i", ap, ab) / np.where(len2 > 0, len2, 1.0), 0.0, 1.0)
    r = ap - t[:, None] * ab
    return np.sqrt(np.einsum("ij,ij->i", r, r))


def _ordered_cover(seg: PreparedSegment, wtree: cKDTree, corridor_m: float) -> bool:
    """Is there a non-decreasing choice of window position for the segment samples, each in range?

    F_k = window samples within the corridor of segment sample k. The greedy choice
    tau_k = min{m in F_k : m >= tau_(k-1)} succeeds iff any ordered choice exists; it is the least
    fixpoint of tau = cummax(next_F(tau)), which we reach by iterating whole-array steps.
    """
    pairs = seg.tree.sparse_distance_matrix(wtree, corridor_m, output_type="ndarray")
    n_seg, n_win = seg.samples.shape[0], wtree.n
    key = np.sort(pairs["i"].astype(np.int64) * n_win + pairs["j"].astype(np.int64))
    if key.shape[0] == 0:
        return False
    ks = np.arange(n_seg, dtype=np.int64) * n_win
    tau = np.zeros(n_seg, dtype=np.int64)
    for _ in range(_MAX_ORDER_ROUNDS):
        pos = np.searchsorted(key, ks + tau)
        if np.any(pos >= key.shape[0]):
            return False
        hit = key[pos]
        if np.any(hit // n_win != np.arange(n_seg)):
            return False  # no window position >= tau_k is near sample k
        nxt = hit % n_win
        if np.array_equal(nxt, tau):
            return True
        tau = np.maximum.accumulate(nxt)
    return False


def _effort(track: PreparedTrack, starts: _Crossings, si: int, ends: _Crossings, ei: int,
            offsets: tuple[float, float], corridor_m: float) -> Effort:
    t_start, t_end = float(starts.time[si]), float(ends.time[ei])
    i0, i1 = int(starts.step[si]), int(ends.step[ei])
    # The crossing steps count for their part inside the effort, whole steps in between in full.
    if i0 == i1:
        moving = (t_end - t_start) * bool(track.moving_step[i0])
    else:
        moving = ((float(track.time[i0 + 1]) - t_start) * bool(track.moving_step[i0])
                  + float(track.moving_cum[i1] - track.moving_cum[i0 + 1])
                  + (t_end - float(track.time[i1])) * bool(track.moving_step[i1]))
    mean_off, max_off = offsets
    return Effort(
        start_index=int(track.index[i0]), end_index=int(track.index[i1 + 1]),
        start_time=t_start, end_time=t_end, elapsed_time_s=t_end - t_start, moving_time_s=moving,
        mean_offset_m=mean_off, max_offset_m=max_off,
        quality=float(np.clip(1.0 - mean_off / corridor_m, 0.0, 1.0)),
    )
