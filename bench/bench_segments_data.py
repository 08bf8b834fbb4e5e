"""Synthetic geography and bulk loading for ``bench_segments.py``.

Three areas, far enough apart that no query of one scenario sees another's rows:

* the *matching* area: a 32 km ride on a winding road and 1,000 segments in its bounds (50 on the route,
  950 nearby: parallel roads, branches, alternatives, the route the other way, random local roads), the
  same families as ``bench_matching_pure.py``;
* the *background*: every other segment, spread over a 5° × 10° region with the matching area cut out, so
  the candidate query has a realistic 100,000-row GiST index to search and skips almost all of it;
* the *re-matching* area: a 40 km road with a new 2 km segment on it, ridden forwards, backwards, on a
  parallel road or only partly by the activities the new segment is matched against.

Rows go in with ``COPY … FROM STDIN (FORMAT csv)`` on a raw psycopg2 connection (the API would spend the
whole run validating geometry), in chunks so the CSV never holds more than a few megabytes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

# The road geometry is the pure matching benchmark's, so both benchmarks ride the same kind of roads.
from bench_matching_pure import arc_length, cut, nearby_variant, normals, road

from domain.algorithms import polylines
from domain.algorithms.geo import from_local_xy
from domain.algorithms.matching import pack_segment, prepare_segments
from domain.algorithms.streams import encode_track
from domain.algorithms.track import Track
from domain.segments.efforts import decode_path, encode_path, pack_path
from tests.support.synthetic import track_along

MATCH_ORIGIN = (45.9, 6.1)
REMATCH_ORIGIN = (47.6, 9.3)
BOARD_ORIGIN = (44.2, 10.4)
#: Background segments are spread over this region (lat and lon ranges)...
BACKGROUND_LAT = (43.5, 48.5)
BACKGROUND_LON = (1.0, 11.0)
#: ... but never within this many degrees of the matching and re-matching areas' boxes.
KEEP_OUT_DEG = 0.05
RIDE_SPEED = 9.0
RIDE_POINTS = 3_600
RIDE_LENGTH_M = RIDE_SPEED * (RIDE_POINTS - 1)
NEARBY_KINDS = ("parallel", "branch", "alternative", "reverse", "random")

SEGMENT_COLUMNS = ("id", "name", "sport_type", "distance_m", "min_lat", "min_lng", "max_lat", "max_lng",
                   "start_lat", "start_lng", "end_lat", "end_lng", "polyline", "path", "prepared")
USER_COLUMNS = ("id", "firebase_uid", "display_name", "sex", "birth_year", "is_private")
PREFERENCE_COLUMNS = ("user_id", "notifications", "hide_from_leaderboards")
ACTIVITY_COLUMNS = ("id", "user_id", "name", "sport_type", "visibility", "start_time", "distance_m",
                    "elapsed_time_s", "moving_time_s", "details", "has_gps", "point_count",
                    "min_lat", "min_lng", "max_lat", "max_lng", "start_lat", "start_lng", "end_lat", "end_lng")
STREAM_COLUMNS = ("activity_id", "point_count", "data")
EFFORT_COLUMNS = ("id", "segment_id", "activity_id", "user_id", "start_index", "end_index", "start_time",
                  "elapsed_time_s", "moving_time_s", "hidden_by_privacy")
NOTIFICATIONS = json.dumps({k: True for k in ("kudos", "comments", "follows", "chat", "reminders",
                                              "weekly_summary", "achievements")})


# --- geometry --------------------------------------------------------------------------------------------

def rotation(a: float) -> np.ndarray:
    return np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])


def to_latlon(xy: np.ndarray, origin: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    lat, lon = from_local_xy(xy[:, 0], xy[:, 1], origin[0], origin[1])
    return np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)


@dataclass
class SegmentShape:
    kind: str
    lat: np.ndarray
    lon: np.ndarray
    sport: str = "cycling"


@dataclass
class MatchScene:
    """The ride's road and the segments in its bounds (``kind == "on"``: genuinely ridden)."""

    route: np.ndarray
    shapes: list[SegmentShape]

    @property
    def ridden(self) -> int:
        return sum(s.kind == "on" for s in self.shapes)


def match_scene(rng: np.random.Generator, in_bounds: int, ridden: int) -> MatchScene:
    route = road(RIDE_LENGTH_M + 200.0)
    arc = arc_length(route)

    def pick(lo: float = 500.0, hi: float = 5_000.0) -> tuple[float, float]:
        length = rng.uniform(lo, hi)
        a = rng.uniform(150.0, RIDE_LENGTH_M - length - 150.0)
        return a, a + length

    shapes: list[np.ndarray] = []
    kinds: list[str] = []
    for _ in range(ridden):
        shapes.append(cut(route, arc, *pick()))
        kinds.append("on")
    for i in range(in_bounds - ridden):
        kind = NEARBY_KINDS[i % len(NEARBY_KINDS)]
        seg = nearby_variant(kind, cut(route, arc, *pick()), rng)
        if seg is None:  # a random local road somewhere inside the ride's area
            centre = route[rng.integers(0, route.shape[0])] + rng.uniform(-2_000.0, 2_000.0, 2)
            local = road(rng.uniform(500.0, 3_000.0), phase=rng.uniform(0, 6.3))
            seg = centre + cut(local, arc_length(local), 0.0, float(arc_length(local)[-1]))
        shapes.append(seg)
        kinds.append(kind)
    return MatchScene(route, [SegmentShape(k, *to_latlon(s, MATCH_ORIGIN)) for k, s in zip(kinds, shapes, strict=True)])


def ride(route: np.ndarray, origin: tuple[float, float], *, seed: int, speed: float, start_time: float,
         noise_m: float = 4.0, sport: str = "cycling") -> Track:
    """A 1 Hz recording of a ride along ``route`` with slowly wandering GPS error."""
    lat, lon = to_latlon(route, origin)
    track, _ = track_along(lat, lon, speed, seed=seed, interval_s=1.0, noise_m=noise_m, start_time=start_time)
    track.sport = sport
    track.name = "Bench ride"
    return track


def _batch_polylines(lat: np.ndarray, lon: np.ndarray, first: np.ndarray) -> list[str]:
    """Google polylines of many polylines at once (``first``: index of each one's first vertex).

    The arithmetic of :func:`domain.algorithms.polylines.encode` on the concatenation, with each polyline's first
    delta taken from zero, then the text cut back into pieces: 100,000 separate calls take minutes.
    """
    ints = np.stack([np.sign(lat) * np.floor(np.abs(lat) * 1e5 + 0.5),
                     np.sign(lon) * np.floor(np.abs(lon) * 1e5 + 0.5)], axis=1).astype(np.int64)
    deltas = np.diff(ints, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    deltas[first] = ints[first]
    flat = deltas.reshape(-1)
    zigzag = np.where(flat < 0, ~(flat << 1), flat << 1).astype(np.uint64)
    shifts = np.arange(polylines.MAX_CHUNKS, dtype=np.uint64) * np.uint64(5)
    remaining = zigzag[:, None] >> shifts[None, :]
    n_chunks = np.maximum(1, (remaining > 0).sum(axis=1))
    used = np.arange(polylines.MAX_CHUNKS)[None, :] < n_chunks[:, None]
    more = np.arange(polylines.MAX_CHUNKS)[None, :] < (n_chunks[:, None] - 1)
    codes = ((remaining & np.uint64(0x1F)) | np.where(more, np.uint64(0x20), np.uint64(0))) + np.uint64(63)
    text = codes[used].astype(np.uint8).tobytes().decode("ascii")
    ends = np.cumsum(n_chunks.reshape(-1, 2).sum(axis=1))
    cuts = np.concatenate([[0], ends[np.append(first[1:], lat.shape[0]) - 1]])
    return [text[a:b] for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True)]


def background_rows(rng: np.random.Generator, first_id: int, count: int,
                    keep_out: Sequence[tuple[float, float, float, float]], *, templates: int = 400,
                    batch: int = 5_000) -> Iterator[tuple[Any, ...]]:
    """Segment rows for ``count`` local roads over the background region, outside the keep-out boxes.

    Built a batch at a time with numpy (a few hundred road shapes, each placed at many random spots and
    angles), so 100,000 segments take seconds.
    """
    lib = []
    for _ in range(templates):
        local = road(rng.uniform(400.0, 5_000.0), phase=rng.uniform(0, 6.3))
        lib.append(cut(local, arc_length(local), 0.0, float(arc_length(local)[-1])))
    made = 0
    while made < count:
        n = min(batch, count - made)
        lat_c = rng.uniform(*BACKGROUND_LAT, size=2 * n)
        lon_c = rng.uniform(*BACKGROUND_LON, size=2 * n)
        ok = np.ones(2 * n, dtype=bool)
        for lo_lat, lo_lon, hi_lat, hi_lon in keep_out:  # grown by the largest template's reach
            ok &= ~((lat_c >= lo_lat - KEEP_OUT_DEG - 0.06) & (lat_c <= hi_lat + KEEP_OUT_DEG + 0.06)
                    & (lon_c >= lo_lon - KEEP_OUT_DEG - 0.08) & (lon_c <= hi_lon + KEEP_OUT_DEG + 0.08))
        lat_c, lon_c = lat_c[ok][:n], lon_c[ok][:n]
        n = lat_c.shape[0]
        pick = rng.integers(0, templates, size=n)
        sizes = np.array([lib[t].shape[0] for t in pick])
        first = np.cumsum(sizes) - sizes
        xy = np.concatenate([lib[t] for t in pick])
        angle = np.repeat(rng.uniform(0.0, 6.3, size=n), sizes)
        c, s = np.cos(angle), np.sin(angle)
        x, y = xy[:, 0] * c - xy[:, 1] * s, xy[:, 0] * s + xy[:, 1] * c
        lat, lon = from_local_xy(x, y, np.repeat(lat_c, sizes), np.repeat(lon_c, sizes))
        lat, lon = np.asarray(lat), np.asarray(lon)
        paths = encode_path(lat, lon)  # 8 bytes a vertex: the batch's blob cut into each segment's
        lines = _batch_polylines(lat, lon, first)
        step = np.hypot(np.diff(y), np.diff(x))
        dist = np.add.reduceat(np.append(step, 0.0), first) - np.append(step, 0.0)[first + sizes - 1]
        lo_lat, hi_lat = np.minimum.reduceat(lat, first), np.maximum.reduceat(lat, first)
        lo_lon, hi_lon = np.minimum.reduceat(lon, first), np.maximum.reduceat(lon, first)
        last = first + sizes - 1
        sport = np.where(rng.random(n) < 0.6, "cycling", "running")
        # What segment creation stores with each row (domain.segments.efforts.pack_path), in one batch.
        blobs = [paths[8 * int(a):8 * (int(b) + 1)] for a, b in zip(first, last, strict=True)]
        prepared = [pack_segment(seg) for seg in prepare_segments([decode_path(c) for c in blobs], [None] * n)]
        for i in range(n):
            seg_id = first_id + made + i
            a, b = int(first[i]), int(last[i])
            yield (seg_id, f"Road {seg_id}", str(sport[i]), float(dist[i]), float(lo_lat[i]), float(lo_lon[i]),
                   float(hi_lat[i]), float(hi_lon[i]), float(lat[a]), float(lon[a]), float(lat[b]), float(lon[b]),
                   lines[i], blobs[i], prepared[i])
        made += n


def bounds(lat: np.ndarray, lon: np.ndarray) -> tuple[float, float, float, float]:
    return float(lat.min()), float(lon.min()), float(lat.max()), float(lon.max())


def segment_row(seg_id: int, name: str, shape: SegmentShape) -> tuple[Any, ...]:
    lat, lon = shape.lat, shape.lon
    xy_len = float(np.sum(np.hypot(np.diff(lat) * 111_195.0, np.diff(lon) * 111_195.0 * np.cos(np.radians(lat[0])))))
    lo_lat, lo_lon, hi_lat, hi_lon = bounds(lat, lon)
    return (seg_id, name, shape.sport, xy_len, lo_lat, lo_lon, hi_lat, hi_lon, float(lat[0]), float(lon[0]),
            float(lat[-1]), float(lon[-1]), polylines.encode(lat, lon), encode_path(lat, lon),
            pack_path(encode_path(lat, lon)))


# --- rows for athletes, activities and efforts --------------------------------------------------------------

@dataclass(frozen=True)
class Athletes:
    """Profiles of a block of athletes with consecutive ids, drawn like a real population."""

    first_id: int
    sex: np.ndarray  # "M" / "F" / "X" / "" (unknown)
    birth_year: np.ndarray  # 0 = unknown
    private: np.ndarray
    hide: np.ndarray

    @property
    def ids(self) -> np.ndarray:
        return self.first_id + np.arange(self.sex.shape[0])


def athletes(rng: np.random.Generator, first_id: int, count: int, *, private_share: float = 0.02,
             hide_share: float = 0.01) -> Athletes:
    sex = rng.choice(np.array(["M", "F", "X", ""]), size=count, p=[0.56, 0.40, 0.02, 0.02])
    birth = rng.integers(1950, 2009, size=count)
    birth[rng.random(count) < 0.05] = 0
    return Athletes(first_id, sex, birth, rng.random(count) < private_share, rng.random(count) < hide_share)


def user_rows(a: Athletes, tag: str) -> Iterator[tuple[Any, ...]]:
    for i, uid in enumerate(a.ids.tolist()):
        yield (uid, f"bench-{tag}-{uid}", f"Athlete {uid}", a.sex[i] or None, int(a.birth_year[i]) or None,
               bool(a.private[i]))


def preference_rows(a: Athletes) -> Iterator[tuple[Any, ...]]:
    for i, uid in enumerate(a.ids.tolist()):
        yield (uid, NOTIFICATIONS, bool(a.hide[i]))


def activity_row(act_id: int, user_id: int, start: datetime | str, *, visibility: str = "everyone",
                 track: Track | None = None, distance_m: float = 10_000.0, elapsed_s: float = 3_600.0,
                 sport: str = "cycling") -> tuple[Any, ...]:
    if track is None:
        geo: tuple[Any, ...] = (None,) * 8
        has_gps, points = False, 0
    else:
        lo_lat, lo_lon, hi_lat, hi_lon = bounds(track.lat, track.lon)
        geo = (lo_lat, lo_lon, hi_lat, hi_lon, float(track.lat[0]), float(track.lon[0]), float(track.lat[-1]),
               float(track.lon[-1]))
        has_gps, points = True, len(track)
        elapsed_s = float(track.time[-1] - track.time[0])
        distance_m = RIDE_SPEED * elapsed_s
    return (act_id, user_id, "Bench ride", sport, visibility, start, distance_m, elapsed_s, elapsed_s, "{}",
            has_gps, points, *geo)


def stream_row(act_id: int, track: Track, blob: bytes | None = None) -> tuple[Any, ...]:
    return (act_id, len(track), blob if blob is not None else encode_track(track))


# --- COPY ----------------------------------------------------------------------------------------------------

def _cell(value: Any) -> Any:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, float):
        return repr(value)
    return value


def copy_rows(raw_conn: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]],
              chunk: int = 20_000) -> int:
    """COPY ``rows`` into ``table`` in chunks; returns the number of rows. The caller commits."""
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    total = 0
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    with raw_conn.cursor() as cur:
        for row in rows:
            writer.writerow([_cell(v) for v in row])
            total += 1
            if total % chunk == 0:
                buf.seek(0)
                cur.copy_expert(sql, buf)
                buf = io.StringIO()
                writer = csv.writer(buf, lineterminator="\n")
        if buf.tell():
            buf.seek(0)
            cur.copy_expert(sql, buf)
    return total


def reset_sequences(raw_conn: Any, tables: Sequence[str]) -> None:
    """After COPY with explicit ids: move each id sequence past the largest id, as inserts would have."""
    with raw_conn.cursor() as cur:
        for table in tables:
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"GREATEST((SELECT max(id) FROM {table}), 1))")


# --- the re-matching area ------------------------------------------------------------------------------------

REMATCH_ROUTE_M = 40_000.0
#: The new segment: this stretch of the re-matching road (arc lengths, metres).
NEW_SEGMENT_ARC = (15_000.0, 17_000.0)
#: Share of the activities per way of riding near the new segment.
REMATCH_KINDS = (("forward", 0.45), ("reverse", 0.10), ("parallel", 0.25), ("branch", 0.20))


@dataclass
class RematchScene:
    segment: SegmentShape
    #: One recording per variant and its kind; activities re-use them with their own times.
    variants: list[tuple[str, Track]]


def rematch_route() -> np.ndarray:
    return road(REMATCH_ROUTE_M, phase=1.0)


def rematch_scene(rng: np.random.Generator, variants: int) -> RematchScene:
    """The new segment and ``variants`` rides whose bounds all overlap it; only "forward" ones ride it."""
    route = rematch_route()
    arc = arc_length(route)
    seg = cut(route, arc, *NEW_SEGMENT_ARC, spacing=20.0)
    kinds = [k for k, share in REMATCH_KINDS for _ in range(max(1, round(share * variants)))][:variants]
    out: list[tuple[str, Track]] = []
    for v, kind in enumerate(kinds):
        offset = rng.uniform(0.0, REMATCH_ROUTE_M - RIDE_LENGTH_M - 10.0)
        part = cut(route, arc, offset, offset + RIDE_LENGTH_M, spacing=2.0)
        if kind == "reverse":
            part = part[::-1].copy()
        elif kind == "parallel":  # the road next to it, all the way
            part = part + normals(part) * rng.choice([-1.0, 1.0]) * rng.uniform(70.0, 300.0)
        elif kind == "branch":  # on the route until the middle of the segment, then off onto another road
            split = float(np.mean(NEW_SEGMENT_ARC))
            head = cut(route, arc, offset, split, spacing=2.0)
            d = head[-1] - head[-2]
            turn = float(np.arctan2(d[1], d[0])) + rng.choice([-1.0, 1.0]) * rng.uniform(0.8, 1.6)
            tail = road(offset + RIDE_LENGTH_M - split, phase=turn)
            part = np.vstack([head, head[-1] + tail[1:]])
        out.append((kind, ride(part, REMATCH_ORIGIN, seed=1_000 + v, speed=RIDE_SPEED, start_time=0.0)))
    return RematchScene(SegmentShape("new", *to_latlon(seg, REMATCH_ORIGIN)), out)


def retimed(track: Track, start_time: float, stretch: float) -> Track:
    """The same positions recorded from ``start_time`` and ``stretch`` times slower (another athlete)."""
    return Track.from_columns(time=start_time + (track.time - track.time[0]) * stretch, lat=track.lat,
                              lon=track.lon, hr=track.hr, sport=track.sport, name=track.name, device="synthetic")
