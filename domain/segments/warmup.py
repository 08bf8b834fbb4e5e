"""Warming a fresh process for the segments stage, before its first activity.

A process's first run of the stage pays for work that every later run finds done: SQLAlchemy configures its
mappers and compiles each statement once per process (its compiled cache lives with the engine), the pool
opens its first connection, and numpy and scipy run some code paths for the first time. On a worker pool
process that is tens of milliseconds on the first upload after every (re)start. :func:`warm_up` does that
work ahead, without writing anything and without touching the per-process prepared-segment cache: the
stage's reading statements run once on arguments that match no row, in one read-only transaction that is
rolled back, and the matcher runs on a small synthetic track.

The database server keeps caches per connection too: the first insert into a table on a connection loads the
table's indexes and triggers, and compiles and plans its trigger functions (``segment_efforts`` has a
statement trigger that keeps the segments' counts). So the tables the stage writes get one insert of no rows
each (the efforts', awards' and notifications' own statements on empty arrays), which does all of that and
fires the statement triggers on an empty set, in a transaction that is rolled back and is checked to have
written nothing (no transaction id was ever assigned).

The counts trigger's plan is kept for the connection's life from its first run, planned for that run's number
of new rows. Planned on the empty set, it measured faster for every batch size we tried, from the stage's 50
efforts to a re-match's 10,000 (inserting 50 efforts on a new connection: ~12 ms then ~8 ms without this step,
~5 ms then ~4 ms after it; 2,000 efforts: 302 against 131 ms; 10,000: 2.9 against 1.5 s).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import configure_mappers

from domain.algorithms.geo import from_local_xy
from domain.algorithms.matching import (
    complete_segments,
    ends_within_reach,
    match_many_prepared,
    pack_segment,
    prepare_segments,
    prepare_track,
    unpack_keys,
)
from domain.algorithms.streams import decode_track, encode_track
from domain.algorithms.track import Track
from domain.notifications import outbox
from domain.privacy.settings import privacy_settings
from domain.segments import efforts
from models import Preferences, User, db
from models.pubsub import pubsub
from models.redis_store import redis_store

log = logging.getLogger(__name__)

#: Bounds of the empty candidate query: latitudes above 90° hold no segment, so the query reads no row.
_NOWHERE = (91.0, 0.0, 91.0, 0.0)
#: Ids no row has (ids start at 1): the stage's loads compile and run, and find nothing.
_NO_ID = 0
#: A start time for the history read (any: the athlete it is read for has no activity).
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
#: A cap on each statement of the warm-up, so that a slow database delays a process start by little.
_STATEMENT_TIMEOUT_MS = 2_000


def warm_up() -> dict[str, float]:
    """Do the stage's first-use work now; returns the milliseconds of each step (for the log and benchmarks).

    Raises what a step raised (the caller decides how harmless that is); the database step has rolled back
    and handed its connection back to the pool by then, so no transaction or lock outlives this call.
    """
    timings: dict[str, float] = {}
    steps: tuple[tuple[str, Callable[[], object]], ...] = (
        ("mappers", configure_mappers), ("matcher", _warm_matcher), ("database", _warm_database),
        ("writes", _warm_writes),
        ("redis", redis_store.client.ping),  # the boards' store: its pool's first connection
        ("pubsub", pubsub.client.ping))  # the socket frames' client (after-commit frames of the awards)
    for name, step in steps:
        started = time.perf_counter()
        step()
        timings[name] = (time.perf_counter() - started) * 1000.0
    return timings


def _synthetic_ride() -> tuple[Track, list[tuple[np.ndarray, np.ndarray]]]:
    """A 1 Hz ride of 4 minutes along a gentle curve, and two segments: one it rides, one it does not."""
    n = 240
    t = 1_700_000_000.0 + np.arange(n, dtype=np.float64)
    s = np.arange(n, dtype=np.float64) * 8.0  # 8 m/s
    lat, lon = from_local_xy(s, 40.0 * np.sin(s / 300.0), 46.0, 14.5)
    nan = np.full(n, np.nan)
    track = Track(time=t, lat=lat, lon=lon, ele=np.full(n, 300.0), hr=nan, cadence=nan, power=nan, temp=nan)
    ridden = (lat[40:200:5], lon[40:200:5])
    elsewhere = from_local_xy(s[40:200:5], 40.0 * np.sin(s[40:200:5] / 300.0) + 500.0, 46.0, 14.5)
    return track, [ridden, elsewhere]


def _warm_matcher() -> None:
    """Run the stage's numeric path once (stream decoding, track and segment preparation, the stored keys'
    decoding, the completion of segments from their paths, the end-point prefilter and the matcher with its
    kd-trees), on throwaway data only."""
    track, paths = _synthetic_ride()
    decoded = decode_track(encode_track(track))
    prepared = prepare_track(decoded.time, decoded.lat, decoded.lon)
    # As the stage sees uncached segments: stored keys first, whole geometry for those crossing both gates.
    keys = unpack_keys([-1, -2], [pack_segment(seg) for seg in prepare_segments(paths, [-1, -2])])
    path_of: dict[Hashable, tuple[np.ndarray, np.ndarray]] = {-1: paths[0], -2: paths[1]}
    ends = np.array([(lat[0], lon[0], lat[-1], lon[-1]) for lat, lon in paths], dtype=np.float64)
    ends_within_reach(prepared, ends[:, 0], ends[:, 1], ends[:, 2], ends[:, 3])
    match_many_prepared(prepared, [k for k in keys if k is not None],
                        complete=lambda some: complete_segments(some, [path_of[k.segment_id] for k in some]))


def _warm_database() -> None:
    """Open the pool's first connection and compile the stage's reading statements, running each on arguments
    that match no row, in a read-only transaction that is rolled back whatever happens."""
    with _throwaway_transaction(read_only=True):
        reads: tuple[Callable[[], object], ...] = (
            lambda: efforts.stage_rows(_NO_ID),
            lambda: efforts.candidate_ends(*_NOWHERE, "cycling"),
            lambda: efforts.stored_segments([_NO_ID]),
            lambda: efforts.whole_segments([], {}),  # the paths of segments crossing both gates
            lambda: privacy_settings(User(id=_NO_ID, preferences=Preferences(hide_start_end_m=0.0))),
            lambda: efforts.athlete_history(_NO_ID, _NO_ID, "cycling", _EPOCH),
        )
        for read in reads:
            read()


@contextmanager
def _throwaway_transaction(*, read_only: bool) -> Iterator[None]:
    """A transaction of the session's, each statement capped at _STATEMENT_TIMEOUT_MS, rolled back and its
    connection handed back to the pool whatever happens."""
    session = db.session
    try:
        if read_only:
            session.execute(text("SET TRANSACTION READ ONLY"))
        session.execute(text(f"SET LOCAL statement_timeout = {_STATEMENT_TIMEOUT_MS}"))
        yield
    finally:
        session.rollback()
        db.session.remove()


class WarmUpWrote(RuntimeError):
    """The warm-up's write step found a transaction id assigned: something was written (and rolled back)."""


def _warm_writes() -> None:
    """Load each written table's server-side caches (indexes, triggers, trigger functions) with an insert of no
    rows (the efforts' and awards' own statements, on empty arrays), and run the PR-rank refresh on an athlete
    with no efforts; then roll back, after checking that the transaction wrote nothing (PostgreSQL assigns a
    transaction id at the first row written)."""
    with _throwaway_transaction(read_only=False):
        outbox.warm_up_each()  # the awards' notifications
        efforts.insert_efforts([])
        efforts.insert_achievements(_NO_ID, _NO_ID, [])
        efforts.pr_ranks(_NO_ID, [], [])
        if db.session.execute(text("SELECT pg_current_xact_id_if_assigned()")).scalar() is not None:
            raise WarmUpWrote("the warm-up's inserts of no rows wrote a row")
