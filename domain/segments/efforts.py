"""Segment matching, efforts, leaderboards and achievements for one activity (the chain's segments stage),
re-matching for new segments, and leaderboard rebuilds. Thin I/O around domain.algorithms."""

from __future__ import annotations

import json
import logging
import struct
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    LargeBinary,
    and_,
    any_,
    bindparam,
    distinct,
    func,
    literal_column,
    select,
    text,
    update,
)

from domain import offload
from domain.algorithms import achievements as rules
from domain.algorithms.matching import (
    PACK_RECORD,
    PACK_SIZE,
    Effort,
    PreparedSegment,
    PreparedTrack,
    SegmentKeys,
    complete_segments,
    ends_within_reach,
    is_current_pack,
    match_many_prepared,
    pack_segment,
    prepare_segments,
    prepare_track,
    unpack_records,
)
from domain.algorithms.metrics import sport_family
from domain.algorithms.streams import decode_track
from domain.algorithms.track import Track
from domain.notifications.outbox import notify_each
from domain.privacy.settings import hidden_points, privacy_settings
from domain.visibility import allows, blocked_ids_sql, visible_sql
from models import Activity, ActivityStream, Preferences, Segment, SegmentEffort, User, db
from models.activity import SPORT_TYPES
from models.db import id_array, table_of
from models.leaderboard import BoardEffort, Leaderboards
from models.redis_store import redis_store
from models.segment import SEGMENT_BOX

log = logging.getLogger(__name__)

#: Candidate boxes are grown by this much (degrees, ~50 m) so a segment at the edge of a track still counts.
BOX_MARGIN_DEG = 0.0005
_PREPARED_CACHE_SIZE = 20_000
#: Per (id, version): a segment's keys, or its whole geometry once an activity crossed both its gates.
_prepared: OrderedDict[tuple[int, float], SegmentKeys] = OrderedDict()
_STREAK_WINDOW = timedelta(days=400)


def leaderboards() -> Leaderboards:
    return Leaderboards(redis_store.client)


def decode_path(blob: bytes | memoryview) -> tuple[np.ndarray, np.ndarray]:
    pairs = np.frombuffer(blob, dtype="<i4").reshape(-1, 2)
    return pairs[:, 0] / 1e7, pairs[:, 1] / 1e7


def encode_path(lat: np.ndarray, lon: np.ndarray) -> bytes:
    return np.column_stack([np.round(lat * 1e7), np.round(lon * 1e7)]).astype("<i4").tobytes()


def version_of(updated_at: datetime) -> float:
    """The version a cached segment is known by: its ``updated_at`` in epoch seconds. The stage's queries read it
    as :data:`_VERSION_SQL`; both are the double nearest the same microseconds, so they are equal."""
    return updated_at.timestamp()


def cached_segment(seg_id: int, version: float) -> SegmentKeys | None:
    """What this process has of this version (:func:`version_of`) of the segment (marked recently used): its
    keys, or its whole geometry (a :class:`PreparedSegment`) once it was matched that far."""
    cache_key = (seg_id, version)
    hit = _prepared.get(cache_key)
    if hit is not None:
        _prepared.move_to_end(cache_key)
    return hit


def _cache(seg_id: int, version: float, seg: SegmentKeys) -> None:
    _prepared[(seg_id, version)] = seg
    while len(_prepared) > _PREPARED_CACHE_SIZE:
        _prepared.popitem(last=False)


def prepared_segment(seg_id: int, version: float, path: bytes) -> PreparedSegment:
    """Prepared geometry, cached per worker process: segments are matched far more often than edited."""
    hit = cached_segment(seg_id, version)
    if isinstance(hit, PreparedSegment):
        return hit
    if hit is not None:  # its keys only: made whole from the path
        seg = complete_segments([hit], [decode_path(path)])[0]
        _cache(seg_id, version, seg)
        return seg
    return prepared_segments([(seg_id, version, path)])[0]


def prepared_segments(rows: Sequence[tuple[int, float, bytes | memoryview]]) -> list[PreparedSegment]:
    """Prepare (in one batch) and cache these versions of segments, given as (id, version, path)."""
    prepared = prepare_segments([decode_path(path) for _, _, path in rows], [seg_id for seg_id, _, _ in rows])
    for (seg_id, version, _), seg in zip(rows, prepared, strict=True):
        _cache(seg_id, version, seg)
    return prepared


def pack_path(path: bytes) -> bytes:
    """The prepared geometry stored with a segment whose ``path`` this is (from the stored, rounded vertices,
    exactly as a worker prepares them)."""
    return pack_segment(prepare_segments([decode_path(path)], [None])[0])


# The stage's reads of the segments table return one value: the rows' fields packed by the server into one bytea
# (int8send/float8send: big-endian, bit for bit), read with one np.frombuffer. Hundreds of rows as separate
# values cost more than the query, on both sides: each float printed as text and parsed back, each row made a
# Python object (956 candidates' ends: 5.8 ms as rows, 1.7 ms packed).
_SEGMENTS = table_of(Segment)
_IDS = id_array("ids")
#: A segment's version (:func:`version_of`) as the queries read it.
_VERSION_SQL = "CAST(extract(epoch FROM updated_at) AS float8)"
_ID_VERSION = f"int8send(id) || float8send({_VERSION_SQL})"
_ID_VERSION_RECORD = [("id", ">i8"), ("version", ">f8")]
#: Rows whose stored keys this version can read whole (the fingerprint is checked when they are decoded).
_HAS_KEYS = f"coalesce(octet_length(prepared) = {PACK_SIZE}, false)"
_STORED_KEYS = select(
    literal_column(f"string_agg({_ID_VERSION} || prepared, ''::bytea) FILTER (WHERE {_HAS_KEYS})", LargeBinary),
    literal_column(f"array_agg(id) FILTER (WHERE NOT {_HAS_KEYS})", ARRAY(BigInteger)),
).select_from(_SEGMENTS).where(_SEGMENTS.c.id == any_(_IDS))
_KEYS_RECORD = np.dtype([*_ID_VERSION_RECORD, ("keys", PACK_RECORD)])
#: Paths differ in length: each comes after its id, version and byte count.
_PATHS = select(literal_column(
    f"string_agg({_ID_VERSION} || int4send(octet_length(path)) || path, ''::bytea)", LargeBinary),
).select_from(_SEGMENTS).where(_SEGMENTS.c.id == any_(_IDS))
_PATH_HEAD = struct.Struct(">qdi")


def _paths(segment_ids: Sequence[int]) -> list[tuple[int, float, memoryview]]:
    """(id, version, path) of these segments that exist."""
    blob = db.session.execute(_PATHS, {"ids": list(segment_ids)}).scalar()
    out: list[tuple[int, float, memoryview]] = []
    if blob is None:
        return out
    view, at = memoryview(blob), 0
    while at < len(view):
        seg_id, version, size = _PATH_HEAD.unpack_from(view, at)
        at += _PATH_HEAD.size
        out.append((seg_id, version, view[at:at + size]))
        at += size
    return out


def stored_segments(segment_ids: Sequence[int]) -> dict[int, tuple[float, SegmentKeys]]:
    """These segments' keys (:class:`SegmentKeys`) and the version they belong to, cached. Deleted segments are
    left out.

    Read from the stored prepared geometry alone (one query): ~250 bytes a row, where the path is several
    times that and is needed only for the few candidates that cross both gates (:func:`whole_segments`). A row
    without keys this version reads (not prepared yet, or by another version) is prepared whole from its
    path, read then for those rows only."""
    blob, stale = db.session.execute(_STORED_KEYS, {"ids": list(segment_ids)}).one()
    out: dict[int, tuple[float, SegmentKeys]] = {}
    stale = list(stale or [])
    if blob is not None:
        records = np.frombuffer(blob, dtype=_KEYS_RECORD)
        ids, versions = records["id"].tolist(), records["version"].tolist()
        for seg_id, version, keys in zip(ids, versions, unpack_records(ids, records["keys"]), strict=True):
            if keys is None:
                stale.append(seg_id)
            else:
                _cache(seg_id, version, keys)
                out[seg_id] = (version, keys)
    if stale:
        rows = _paths(stale)
        for (seg_id, version, _), seg in zip(rows, prepared_segments(rows), strict=True):
            out[seg_id] = (version, seg)
    return out


def whole_segments(keys: Sequence[SegmentKeys],
                   versions: Mapping[int, float]) -> tuple[list[PreparedSegment | None], list[PreparedSegment]]:
    """Segments known by their keys, read at ``versions`` (by id), made whole from their paths (one query, one
    batch) and cached in their place: one per key, None for a segment deleted or edited since; and the edited
    ones' new versions, prepared whole."""
    ids: list[int] = [cast(int, k.segment_id) for k in keys]  # the keys this module reads carry row ids
    rows = {seg_id: (version, path) for seg_id, version, path in _paths(ids)}
    same = [j for j, seg_id in enumerate(ids) if seg_id in rows and rows[seg_id][0] == versions[seg_id]]
    made = complete_segments([keys[j] for j in same], [decode_path(rows[ids[j]][1]) for j in same])
    whole: list[PreparedSegment | None] = [None] * len(keys)
    for j, seg in zip(same, made, strict=True):
        _cache(ids[j], rows[ids[j]][0], seg)
        whole[j] = seg
    edited = [(seg_id, *rows[seg_id]) for seg_id, seg in zip(ids, whole, strict=True)
              if seg is None and seg_id in rows]
    newer = prepared_segments(edited) if edited else []
    return whole, newer


def store_prepared(batch: int = 500) -> int:
    """Store the prepared geometry of segments that have none, or one this version does not read; returns how
    many were written. In batches, each committed; safe to run any time, and again."""
    written, after = 0, 0
    while True:
        rows = db.session.execute(
            select(Segment.id, Segment.path, Segment.prepared).where(Segment.id > after)
            .order_by(Segment.id).limit(batch)).all()
        if not rows:
            return written
        after = rows[-1].id
        for r in rows:
            if not is_current_pack(r.prepared):
                # updated_at stays: the geometry did not change, so what workers cached is still right.
                db.session.execute(update(Segment).where(Segment.id == r.id, Segment.path == r.path)
                                   .values(prepared=pack_path(r.path), updated_at=Segment.updated_at))
                written += 1
        db.session.commit()


def sport_families(sport: str) -> list[str]:
    family = sport_family(sport)
    return [s for s in SPORT_TYPES if sport_family(s) == family]


def candidates(min_lat: float, min_lng: float, max_lat: float, max_lng: float, sport: str) -> list[Any]:
    """Phase 1: segments whose bounding box overlaps the activity's (GiST index on a built-in box)."""
    return list(db.session.execute(_CANDIDATES, _box_params(min_lat, min_lng, max_lat, max_lng, sport)))


@dataclass(frozen=True)
class CandidateEnds:
    """The segments in an activity's box, in no particular order: ids, versions (:func:`version_of`) and each one's
    first and last vertex, (n, 4) as start lat, start lng, end lat, end lng."""

    ids: list[int]
    versions: list[float]
    ends: np.ndarray


def candidate_ends(min_lat: float, min_lng: float, max_lat: float, max_lng: float, sport: str) -> CandidateEnds:
    """:func:`candidates` without the path blobs: id, version and the first and last vertex of each, from the
    row's own start/end columns (no read of the toasted path). The stage reads whole paths only for what its
    cache lacks (see :func:`match_track`)."""
    blob = db.session.execute(_CANDIDATE_ENDS, _box_params(min_lat, min_lng, max_lat, max_lng, sport)).scalar()
    records = np.frombuffer(blob if blob is not None else b"", dtype=_ENDS_RECORD)
    return CandidateEnds(ids=records["id"].tolist(), versions=records["version"].tolist(),
                         ends=records["ends"].astype(np.float64))


def _box_params(min_lat: float, min_lng: float, max_lat: float, max_lng: float, sport: str) -> dict[str, Any]:
    m = BOX_MARGIN_DEG
    return {"a": min_lng - m, "b": min_lat - m, "c": max_lng + m, "d": max_lat + m, "sports": sport_families(sport)}


#: The candidates' condition, its values as parameters (:func:`_box_params`): the activity's box grown by
#: BOX_MARGIN_DEG, and the sport family. Both queries are prepared once (every upload with GPS asks one).
_IN_BOX = and_(text(f"{SEGMENT_BOX} && box(point(:a, :b), point(:c, :d))"),
               Segment.sport_type.in_(bindparam("sports", expanding=True)))
_CANDIDATES = select(Segment.id, Segment.updated_at, Segment.path).where(_IN_BOX)
_CANDIDATE_ENDS = select(literal_column(
    f"string_agg({_ID_VERSION} || float8send(start_lat) || float8send(start_lng) || float8send(end_lat)"
    " || float8send(end_lng), ''::bytea)", LargeBinary)).select_from(_SEGMENTS).where(_IN_BOX)
_ENDS_RECORD = np.dtype([*_ID_VERSION_RECORD, ("ends", ">f8", (4,))])


def eligible_for_boards(activity: Activity, owner: User) -> bool:
    """Segment boards are public: an effort counts when anybody at all may see its activity (the shared rule,
    for a viewer who is neither the owner nor a follower) and its athlete did not opt out of boards."""
    public = allows(activity.visibility, is_owner=False, blocked=False, follower=False,
                    owner_private=owner.is_private)
    return public and not owner.preferences.hide_from_leaderboards


def on_boards_sql() -> ColumnElement[bool]:
    """SQL twin of :func:`eligible_for_boards` (and of the effort's own privacy flag), on a query that joins
    the effort's ``Activity``, ``User`` and ``Preferences``."""
    return and_(SegmentEffort.hidden_by_privacy.is_(False), Preferences.hide_from_leaderboards.is_(False),
                visible_sql(None, Activity.user_id, Activity.visibility, User.is_private))


def board_efforts_query() -> Any:
    """Efforts with their activity, athlete and preferences joined, for :func:`on_boards_sql` to filter."""
    return (select(SegmentEffort.id, SegmentEffort.user_id, SegmentEffort.elapsed_time_s, SegmentEffort.start_time,
                   User.sex, User.birth_year)
            .join(Activity, Activity.id == SegmentEffort.activity_id)
            .join(User, User.id == SegmentEffort.user_id)
            .join(Preferences, Preferences.user_id == User.id))


@dataclass
class NewEffort:
    """An effort of this activity, with what the boards and the achievement rules need of it."""

    id: int
    segment_id: int
    segment_name: str
    elapsed_time_s: float
    start_time: datetime
    hidden_by_privacy: bool
    pr_rank: int | None
    #: The athlete's efforts on this segment, this one included.
    athlete_effort_count: int
    kom_rank: int | None = None
    #: Rank on the athlete's gender board (the QOM board for women), when this effort holds it.
    gender_rank: int | None = None
    #: Stored by an earlier run of the stage that may have stopped before the boards and the awards.
    replayed: bool = False


#: PR ranks (1-3) of the athlete's efforts on these segments, fastest first, earlier on ties, rewritten
#: where they changed; returns, for the new efforts, their rank, the athlete's effort count on the segment
#: and the segment's name. One statement: the UPDATE runs whether or not the SELECT reads it, and both see
#: the same snapshot (the efforts just inserted included).
_PR_RANKS_SQL = text("""
    WITH r AS (
        SELECT id, segment_id, row_number() OVER (PARTITION BY segment_id
                                                  ORDER BY elapsed_time_s, start_time, id) AS rank,
               count(*) OVER (PARTITION BY segment_id) AS n
        FROM segment_efforts WHERE user_id = :u AND segment_id = ANY(:ids)),
    changed AS (
        UPDATE segment_efforts e SET pr_rank = CASE WHEN r.rank <= 3 THEN r.rank END
        FROM r WHERE e.id = r.id AND e.pr_rank IS DISTINCT FROM CASE WHEN r.rank <= 3 THEN r.rank END)
    SELECT r.id, r.rank, r.n, s.name FROM r JOIN segments s ON s.id = r.segment_id WHERE r.id = ANY(:new)""")


#: The columns of an effort row (:func:`effort_rows`), each sent as one array.
_EFFORT_ARRAYS = (("segment_id", "bigint"), ("activity_id", "bigint"), ("user_id", "bigint"),
                  ("start_index", "integer"), ("end_index", "integer"), ("start_time", "timestamptz"),
                  ("elapsed_time_s", "double precision"), ("moving_time_s", "double precision"),
                  ("hidden_by_privacy", "boolean"), ("on_boards", "boolean"))
#: One statement and one array per column whatever the number of rows: SQLAlchemy's executemany processed every
#: parameter of every row in Python and compiled its batched form once per process (storing a ride's 50 efforts
#: took ~12 ms that way and takes ~7 ms so), where this text has nothing to compile and runs on no rows too (the
#: worker's warm-up does that).
_INSERT_EFFORTS = text(f"""
INSERT INTO segment_efforts ({", ".join(name for name, _ in _EFFORT_ARRAYS)})
SELECT * FROM unnest({", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _EFFORT_ARRAYS)})
ON CONFLICT DO NOTHING
RETURNING id, segment_id, elapsed_time_s, start_time, hidden_by_privacy""")


def insert_efforts(rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Insert these :func:`effort_rows` (an effort already stored is left as it is); returns the rows written:
    id, segment_id, elapsed_time_s, start_time, hidden_by_privacy."""
    return list(db.session.execute(_INSERT_EFFORTS, {name: [r[name] for r in rows] for name, _ in _EFFORT_ARRAYS}))


def pr_ranks(user_id: int, segment_ids: Sequence[int], new_ids: Sequence[int]) -> dict[int, Any]:
    """Refresh the athlete's PR ranks (top 3) on these segments; returns rank, count and segment name of each of
    the ``new_ids`` efforts, by id."""
    return {r.id: r for r in db.session.execute(_PR_RANKS_SQL, {
        "u": user_id, "ids": list(segment_ids), "new": list(new_ids)})}


def effort_rows(activity: Activity, owner: User, found: dict[Any, list[Effort]], hidden: Any) -> list[dict[str, Any]]:
    """``segment_efforts`` rows for one activity's matches; an effort starting or ending on a point the owner's
    privacy hides is kept (it counts for the owner) but flagged, so boards leave it out."""
    eligible = eligible_for_boards(activity, owner)
    return [{
        "segment_id": seg_id, "activity_id": activity.id, "user_id": owner.id,
        "start_index": int(e.start_index), "end_index": int(e.end_index),
        "start_time": datetime.fromtimestamp(e.start_time, UTC), "elapsed_time_s": float(e.elapsed_time_s),
        "moving_time_s": float(e.moving_time_s),
        "hidden_by_privacy": bool(hidden[e.start_index] or hidden[e.end_index]),
        "on_boards": eligible and not bool(hidden[e.start_index] or hidden[e.end_index]),
    } for seg_id, efforts in found.items() for e in efforts]


def store_efforts(activity: Activity, owner: User, track: Track, found: dict[Any, list[Effort]]) -> list[NewEffort]:
    """Insert one activity's efforts (idempotent) and refresh the athlete's PR ranks on their segments;
    returns the efforts this run created. Two statements whatever the number of efforts."""
    if not any(found.values()):
        return []  # nothing matched (most uploads): nothing to flag, so the privacy settings are not read
    rows = effort_rows(activity, owner, found, hidden_points(activity, owner, track))
    # segments.effort_count / athlete_count follow by database triggers (migration 0012).
    inserted = insert_efforts(rows)
    replayed = not inserted
    if replayed:
        # A re-run (a redelivered task): the efforts were committed by a run that may have died before the
        # boards or the awards. They are handed on again; both steps are idempotent (a board keeps one best
        # per athlete, awards and notifications have unique keys, a KOM rank once set is kept).
        table = table_of(SegmentEffort)
        inserted = list(db.session.execute(select(
            table.c.id, table.c.segment_id, table.c.elapsed_time_s, table.c.start_time, table.c.hidden_by_privacy,
        ).where(table.c.activity_id == activity.id).order_by(table.c.id)))
    ranks = pr_ranks(owner.id, sorted(set(found) | {r.segment_id for r in inserted}), [r.id for r in inserted])
    return [NewEffort(r.id, r.segment_id, ranks[r.id].name, r.elapsed_time_s, r.start_time, r.hidden_by_privacy,
                      int(ranks[r.id].rank) if ranks[r.id].rank <= 3 else None, int(ranks[r.id].n),
                      replayed=replayed)
            for r in inserted]


def store_efforts_many(items: Sequence[tuple[Activity, User, Track, dict[Any, list[Effort]]]]) -> list[int]:
    """:func:`store_efforts` for many activities at once (re-matching a batch): one insert, one count
    refresh and one PR-rank refresh per group of athletes, leaving the same rows as one call per item."""
    rows: list[dict[str, Any]] = []
    settings: dict[int, tuple[list[Any], float]] = {}
    touched_by: dict[int, set[int]] = {}
    for activity, owner, track, found in items:
        if not any(found.values()):
            continue  # as in store_efforts: nothing to flag, so the athlete's privacy settings are not read
        if owner.id not in settings:  # an athlete's privacy settings, read once per batch
            settings[owner.id] = privacy_settings(owner)
        hidden = hidden_points(activity, owner, track, settings[owner.id])
        rows += effort_rows(activity, owner, found, hidden)
        touched_by.setdefault(owner.id, set()).update(found)
    if not rows:
        return []
    new_ids = [r.id for r in insert_efforts(rows)]
    # segments.effort_count / athlete_count follow by database triggers (migration 0012).
    # Athletes who touched the same segments share one statement (re-matching: all of them, one segment).
    groups: dict[tuple[int, ...], list[int]] = {}
    for user_id, segment_ids in touched_by.items():
        groups.setdefault(tuple(sorted(segment_ids)), []).append(user_id)
    for shared_ids, user_ids in groups.items():
        refresh_pr_ranks_many(user_ids, shared_ids)
    return new_ids


def refresh_pr_ranks_many(user_ids: Sequence[int], segment_ids: Sequence[int]) -> None:
    """Recompute the PR ranks of these athletes on these segments, in one statement."""
    db.session.execute(text("""
        UPDATE segment_efforts e SET pr_rank = CASE WHEN r.rank <= 3 THEN r.rank END
        FROM (SELECT id, row_number() OVER (PARTITION BY user_id, segment_id
                                            ORDER BY elapsed_time_s, start_time, id) AS rank
              FROM segment_efforts WHERE user_id = ANY(:u) AND segment_id = ANY(:ids)) r
        WHERE e.id = r.id AND e.pr_rank IS DISTINCT FROM CASE WHEN r.rank <= 3 THEN r.rank END"""),
        {"u": list(user_ids), "ids": list(segment_ids)})


def sync_on_boards(segment_id: int) -> None:
    """Bring the efforts' ``on_boards`` flags of a segment up to date with the rule (after a change of
    visibility, privacy or preferences) and recount the segment's public counts exactly (which also heals
    the rare miscount of two concurrent first efforts by one athlete). Part of a board rebuild."""
    rule = select(on_boards_sql()).select_from(Activity).join(User, User.id == Activity.user_id).join(
        Preferences, Preferences.user_id == User.id).where(Activity.id == SegmentEffort.activity_id
                                                           ).scalar_subquery()
    db.session.execute(update(SegmentEffort).where(SegmentEffort.segment_id == segment_id,
                                                   SegmentEffort.on_boards.is_distinct_from(rule))
                       .values(on_boards=rule))
    on = select(func.count(), func.count(distinct(SegmentEffort.user_id))).where(
        SegmentEffort.segment_id == segment_id, SegmentEffort.on_boards.is_(True))
    efforts, athletes = db.session.execute(on).one()
    db.session.execute(update(Segment).where(Segment.id == segment_id)
                       .values(effort_count=efforts, athlete_count=athletes))


def public_counts(viewer_id: int, segment: Segment) -> tuple[int, int]:
    """(effort_count, athlete_count) of a segment as this viewer may count them: the efforts on its public
    boards, less those of athletes in a block with the viewer (left off every board page they read). While a
    change's rebuild is pending the stored counts may still hold what it takes away, so they are counted from
    the rule itself then."""
    blocked = blocked_ids_sql(viewer_id)
    if segment.boards_stale_since is not None:
        live = board_efforts_query().with_only_columns(func.count(), func.count(distinct(SegmentEffort.user_id)))
        efforts, athletes = db.session.execute(live.where(
            SegmentEffort.segment_id == segment.id, on_boards_sql(), SegmentEffort.user_id.not_in(blocked))).one()
        return int(efforts), int(athletes)
    less_efforts, less_athletes = db.session.execute(
        select(func.count(), func.count(distinct(SegmentEffort.user_id))).where(
            SegmentEffort.segment_id == segment.id, SegmentEffort.on_boards.is_(True),
            SegmentEffort.user_id.in_(blocked))).one()
    return segment.effort_count - int(less_efforts), segment.athlete_count - int(less_athletes)


def board_effort_rows(segment_id: int) -> list[Any]:
    """Every effort eligible for the public boards of a segment, as plain rows (see EffortRow)."""
    return list(db.session.execute(board_efforts_query().where(SegmentEffort.segment_id == segment_id,
                                                                on_boards_sql())))


def board_efforts(segment_id: int) -> list[BoardEffort]:
    """Every effort eligible for the public boards of a segment (the truth the boards are built from)."""
    return [BoardEffort(*r) for r in board_effort_rows(segment_id)]


def rebuild_segment(segment_id: int) -> int:
    # Plain rows, not BoardEffort objects: a popular segment has millions of efforts.
    # Rebuilt inside a read when Redis lost the boards (ensure_ready): the reduction runs off the event loop.
    return leaderboards().replace_segment_rows(segment_id, board_effort_rows(segment_id), run=offload.cpu)


def ensure_ready(segment_id: int) -> None:
    """The automatic path after Redis lost its data: rebuild a segment's boards before using them."""
    boards = leaderboards()
    if boards.is_ready(segment_id):
        return
    lock = redis_store.client.lock(f"lock:lb-rebuild:{segment_id}", timeout=60, blocking_timeout=30)
    with lock:
        if not boards.is_ready(segment_id):
            rebuild_segment(segment_id)


def update_boards(activity: Activity, owner: User, efforts: Sequence[NewEffort]) -> None:
    """Offer the new efforts to the boards and record the KOM rank each had at upload time (and, for
    women, the QOM rank the achievement rules read).

    Redis work is two round trips whatever the number of efforts: one finds segments whose boards need a
    rebuild, one script call offers every effort and reads back its ranks (in effort order, so each read
    sees the offers before it). The KOM ranks are then written in one statement, in the caller's
    transaction.
    """
    offered = [e for e in efforts if not e.hidden_by_privacy]
    if not offered or not eligible_for_boards(activity, owner):
        return
    boards = leaderboards()
    for segment_id in boards.missing(sorted({e.segment_id for e in offered})):
        ensure_ready(segment_id)  # a rebuild already includes this committed effort
    offers = [(e.segment_id, BoardEffort(e.id, owner.id, e.elapsed_time_s, e.start_time, owner.sex,
                                         owner.birth_year)) for e in offered]
    ranked = boards.offer_many(offers, rank_on="g:F" if owner.sex == "F" else None)
    for effort, ((rank, best), (g_rank, g_best)) in zip(offered, ranked, strict=True):
        if rank is not None and rank < 10 and best == effort.id:
            effort.kom_rank = rank + 1
        if g_rank is not None and g_best == effort.id:
            effort.gender_rank = g_rank + 1
    kom = [e for e in offered if e.kom_rank is not None]
    if kom:
        db.session.execute(text("""
            UPDATE segment_efforts e SET kom_rank = v.rank FROM unnest(:ids, :ranks) AS v(id, rank)
            WHERE e.id = v.id AND e.kom_rank IS NULL"""),
            {"ids": [e.id for e in kom], "ranks": [e.kom_rank for e in kom]})


#: Most activities earn something (a best effort, a streak): one statement with one array per column, as
#: :data:`_INSERT_EFFORTS` (nothing to compile, and it runs on no rows in the worker's warm-up).
_INSERT_ACHIEVEMENTS = text("""
INSERT INTO achievements (user_id, activity_id, effort_id, segment_id, kind, key, rank, value, details)
SELECT * FROM unnest(CAST(:user_id AS bigint[]), CAST(:activity_id AS bigint[]), CAST(:effort_id AS bigint[]),
                     CAST(:segment_id AS bigint[]), CAST(:kind AS text[]), CAST(:key AS text[]),
                     CAST(:rank AS smallint[]), CAST(:value AS double precision[]), CAST(:details AS jsonb[]))
ON CONFLICT DO NOTHING
RETURNING id, kind, rank, segment_id, details""")


def insert_achievements(user_id: int, activity_id: int, awards: Sequence[rules.Award]) -> list[Any]:
    """Store these awards of one activity (an award already stored is left as it is); returns the rows written:
    id, kind, rank, segment_id, details."""
    return list(db.session.execute(_INSERT_ACHIEVEMENTS, {
        "user_id": [user_id] * len(awards), "activity_id": [activity_id] * len(awards),
        "effort_id": [a.effort_id for a in awards], "segment_id": [a.segment_id for a in awards],
        "kind": [a.kind for a in awards], "key": [a.key for a in awards], "rank": [a.rank for a in awards],
        "value": [a.value for a in awards], "details": [json.dumps(a.details or {}) for a in awards]}).all())


def award(activity: Activity, owner: User, efforts: Sequence[NewEffort]) -> int:
    """Evaluate every achievement rule for this activity; returns how many were newly awarded."""
    awards: list[rules.Award] = []
    if efforts:
        awards += rules.segment_awards(_effort_facts(owner, efforts))
    awards += _activity_awards(activity, owner)
    if not awards:
        return 0
    created = insert_achievements(owner.id, activity.id, awards)
    # The outbox of the notification and push stages, one statement for all of them; the dedupe key makes a re-run
    # notify nothing twice.
    notify_each("achievement", [
        (owner.id, f"achievement:{row.id}", {"kind": row.kind, "rank": row.rank, "segment_id": row.segment_id,
                                             "activity_name": activity.name, **(row.details or {})})
        for row in created], refs=[{"achievement_id": row.id, "activity_id": activity.id} for row in created])
    return len(created)


def _effort_facts(owner: User, efforts: Sequence[NewEffort]) -> list[rules.EffortFacts]:
    """What the segment rules read, all of it gathered while storing the efforts and offering them."""
    return [rules.EffortFacts(e.id, e.segment_id, e.segment_name, e.elapsed_time_s, e.pr_rank,
                              e.athlete_effort_count, e.kom_rank, e.gender_rank, owner.sex) for e in efforts]


#: The athlete's history the activity rules read, in one round trip: earlier activities of the same sport,
#: distance in the sport family up to this one, and start times in the streak window.
_HISTORY_SQL = text("""
    SELECT (SELECT count(*) FROM activities
            WHERE user_id = :u AND id <> :a AND sport_type = :sport) AS same_sport,
           (SELECT coalesce(sum(distance_m), 0.0) FROM activities
            WHERE user_id = :u AND id <> :a AND sport_type = ANY(:family) AND start_time <= :t) AS before,
           (SELECT array_agg(start_time) FROM activities
            WHERE user_id = :u AND start_time > :since AND start_time <= :t) AS starts""")


def athlete_history(user_id: int, activity_id: int, sport: str, start_time: datetime) -> Any:
    """What the activity rules read of the athlete's other activities (see _HISTORY_SQL), as one row."""
    return db.session.execute(_HISTORY_SQL, {
        "u": user_id, "a": activity_id, "sport": sport, "family": sport_families(sport), "t": start_time,
        "since": start_time - _STREAK_WINDOW}).one()


def _activity_awards(activity: Activity, owner: User) -> list[rules.Award]:
    family = sport_family(activity.sport_type)
    history = athlete_history(owner.id, activity.id, activity.sport_type, activity.start_time)
    awards = rules.first_sport_award(activity.sport_type, int(history.same_sport or 0))
    before = float(history.before or 0.0)
    awards += rules.milestone_awards(family, before, before + activity.distance_m)
    tz = ZoneInfo(owner.preferences.timezone or "UTC")
    days = {d.astimezone(tz).date() for d in history.starts or []}
    awards += rules.streak_awards(days, activity.start_time.astimezone(tz).date())
    best = (activity.details or {}).get("best_efforts") or []
    if best:
        previous: dict[str, list[float]] = {}
        for name, elapsed in db.session.execute(text("""
                SELECT be->>'name', (be->>'elapsed_time_s')::float
                FROM activities a, jsonb_array_elements(a.details->'best_efforts') be
                WHERE a.user_id = :u AND a.id <> :a AND jsonb_typeof(a.details->'best_efforts') = 'array'"""),
                {"u": owner.id, "a": activity.id}):
            previous.setdefault(name, []).append(elapsed)
        awards += rules.best_effort_awards(activity.id, best, previous)
    return awards


#: What the stage reads of an activity, in one round trip (it used to be three): the activity, its athlete (with
#: their preferences) and the stored stream.
_STAGE_ROWS = (select(Activity, User, ActivityStream.data).join(User, User.id == Activity.user_id)
               .outerjoin(ActivityStream, ActivityStream.activity_id == Activity.id)
               .where(Activity.id == bindparam("activity_id")))


def stage_rows(activity_id: int) -> tuple[Activity, User, bytes | None] | None:
    """The activity, its athlete and its stored stream (None without one), or None when the activity is gone."""
    row = db.session.execute(_STAGE_ROWS, {"activity_id": activity_id}).first()
    return None if row is None else (row[0], row[1], row[2])


def process_activity(activity_id: int, *, commit: bool = True) -> int:
    """The segments stage for one activity: match, store efforts, update boards, award. Idempotent.

    Two transactions: the efforts are committed before they are offered to the boards (a board never
    holds an effort PostgreSQL could still roll back), then the KOM ranks and the achievements together.
    Without efforts (most uploads: no segment on the route) there is nothing to offer, and one transaction.
    With ``commit=False`` the second one is left open for the caller to add to and commit (the publish
    stage commits it with the feed fan-out and the upload's ready mark).
    """
    row = stage_rows(activity_id)
    if row is None:
        return 0
    activity, owner, blob = row
    efforts: list[NewEffort] = []
    if activity.has_gps and activity.min_lat is not None and blob is not None:
        track = decode_track(blob)
        found = match_track(track, activity)
        efforts = store_efforts(activity, owner, track, found)
        if efforts:  # none: store_efforts wrote nothing
            db.session.commit()
            update_boards(activity, owner, efforts)
    award(activity, owner, efforts)
    if commit:
        db.session.commit()
    return sum(not e.replayed for e in efforts)


def match_track(track: Track, activity: Activity) -> dict[Any, list[Effort]]:
    if activity.min_lat is None or activity.min_lng is None or activity.max_lat is None or activity.max_lng is None:
        return {}  # no positions, no box: nothing can match (the box query would find no row either)
    cands = candidate_ends(activity.min_lat, activity.min_lng, activity.max_lat, activity.max_lng,
                           activity.sport_type)
    if not cands.ids:
        return {}
    prepared_track: PreparedTrack = prepare_track(track.time, track.lat, track.lon)
    # Only segments whose two ends the track passes near are matched (ends_within_reach never drops one
    # that could match; the start/end columns are the path's end vertices before their rounding to
    # 1e-7 degrees, millimetres inside its 1 m of spare reach): in a city most candidates (parallel roads,
    # branches) fail that. Of those, what this process has not cached yet is read as stored keys, in one
    # query; the matcher's first stages reject most of them on their keys, and the paths of the few that
    # cross both gates are read then (complete), in a second query.
    ends = cands.ends
    near = ends_within_reach(prepared_track, ends[:, 0], ends[:, 1], ends[:, 2], ends[:, 3])
    kept = np.flatnonzero(near).tolist()
    kept_ids = [cands.ids[i] for i in kept]
    versions = {cands.ids[i]: cands.versions[i] for i in kept}
    segs: list[SegmentKeys | None] = [cached_segment(seg_id, versions[seg_id]) for seg_id in kept_ids]
    missing = [seg_id for seg_id, seg in zip(kept_ids, segs, strict=True) if seg is None]
    if missing:
        fresh = stored_segments(missing)
        for seg_id, (version, _) in fresh.items():
            versions[seg_id] = version
        segs = [seg if seg is not None else fresh.get(seg_id, (None, None))[1]
                for seg_id, seg in zip(kept_ids, segs, strict=True)]
    edited: list[PreparedSegment] = []

    def complete(keys: list[SegmentKeys]) -> list[PreparedSegment | None]:
        whole, newer = whole_segments(keys, versions)
        edited.extend(newer)  # matched on their own below: their keys above were another version's
        return whole

    found = match_many_prepared(prepared_track, [seg for seg in segs if seg is not None], complete=complete)
    if edited:
        found.update(match_many_prepared(prepared_track, edited))
    return found


def segments_touched_by(activity_id: int) -> list[int]:
    return list(db.session.scalars(
        select(SegmentEffort.segment_id).where(SegmentEffort.activity_id == activity_id).distinct()))
