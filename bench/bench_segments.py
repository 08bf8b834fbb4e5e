"""Benchmark: segment matching in the pipeline stage, leaderboards, and re-matching, on real servers.

Figures (each printed with the command line and nproc):

1. ``tasks.segments.process_activity`` end to end for a 3,600-point ride with the segments table full
   (default 100,000 rows, 1,000 in the ride's bounds, 50 of them ridden): cold (first run in a fresh
   process, prepared-segment cache empty), warm (cache hot), and a breakdown by step. Target ≤ 50 ms.
   Each fresh process first does what a new worker pool process does before its first task (the
   worker_process_init warm-up), timed and printed apart as start-up cost; --no-warm-up skips it.
2. Leaderboards of one segment with 1,000,000 efforts: rank lookup and top 10 at the store level
   (``models.leaderboard.Leaderboards``) and through ``webapp.segments.service.leaderboard`` (targets
   ≤ 1 ms), the following filter with 1,000 followed athletes (≤ 10 ms), and a full rebuild from
   PostgreSQL, in-process and with ``flask --app webapp leaderboards-rebuild`` (≤ 60 s).
3. Re-matching a new segment against 10,000 activities in its bounds with
   ``domain.segments.rematch.rematch_activities`` in-process (batches of REMATCH_BATCH, as the fan-out sends
   them), and optionally through a real Celery worker with concurrency 2.

PostgreSQL and Redis are found as the test suite finds them (DATABASE_URL / REDIS_URL, else 127.0.0.1,
else embedded servers). Everything lives in a throwaway database (strava_bench_segments, built by the
migrations and dropped at the end) and Redis database 10 (flushed at the start and the end). Data is
bulk-loaded with COPY (see bench_segments_data.py), then the service code runs inside an app context.

Run from the checkout root::

    .venv/bin/python bench/bench_segments.py            # full sizes (~15-25 min on 2 cores)
    .venv/bin/python bench/bench_segments.py --quick    # smoke run with small sizes (~1-2 min)
    .venv/bin/python bench/bench_segments.py --only match --segments 20000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
for p in (str(ROOT), str(BENCH)):
    if p not in sys.path:
        sys.path.insert(0, p)

import bench_segments_data as data  # noqa: E402
from bench_ingest_stack import BenchStack, remove_tree  # noqa: E402
from bench_segments_child import Timers  # noqa: E402

MATCH_TARGET_MS = 50.0
LOOKUP_TARGET_MS = 1.0
FOLLOWING_TARGET_MS = 10.0
REBUILD_TARGET_S = 60.0


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def out(line: str = "") -> None:
    print(line, flush=True)


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


def verdict(value: float, target: float) -> str:
    return "meets" if value <= target else "MISSES"


def spread(values: Sequence[float]) -> str:
    return f"p50 {pct(values, 50):.3f} ms, p99 {pct(values, 99):.3f} ms, max {max(values):.3f} ms (n={len(values)})"


@dataclass
class Sizes:
    segments: int
    in_bounds: int
    ridden: int
    history: int
    cold_runs: int
    warm_runs: int
    breakdown_runs: int
    efforts: int
    per_athlete: int
    follows: int
    calls: int
    activities: int
    variants: int
    celery: bool
    profile: bool = False
    only: set[str] = field(default_factory=set)
    #: Load segments without their stored prepared geometry (every cold process prepares from the paths).
    no_prepared: bool = False
    #: Fresh processes skip the pool process warm-up (worker_process_init) and only open their connections.
    no_warm_up: bool = False

    def runs(self, part: str) -> bool:
        return not self.only or part in self.only


@dataclass
class Ids:
    """Next free id per table (rows are COPYed with explicit ids; sequences are moved past them)."""

    user: int = 1
    activity: int = 1
    effort: int = 1
    segment: int = 1

    def sync(self, stack: BenchStack) -> None:
        """Move past ids the service code took from the sequences meanwhile."""
        for kind, table in (("user", "users"), ("activity", "activities"), ("effort", "segment_efforts"),
                            ("segment", "segments")):
            top = stack.sql(f"SELECT coalesce(max(id), 0) FROM {table}")[0][0]
            setattr(self, kind, max(getattr(self, kind), int(top) + 1))

    def take(self, kind: str, n: int) -> int:
        first = getattr(self, kind)
        setattr(self, kind, first + n)
        return first


def recount_segments(segment_ids: list[int]) -> None:
    """After a COPY with triggers off: set the counts the trigger (migration 0004) keeps in normal running."""
    from models import db

    db.session.execute(sa.text("""
        UPDATE segments s SET effort_count = c.efforts, athlete_count = c.athletes
        FROM (SELECT segment_id, count(*) AS efforts, count(DISTINCT user_id) AS athletes
              FROM segment_efforts WHERE segment_id = ANY(:ids) GROUP BY segment_id) c
        WHERE s.id = c.segment_id"""), {"ids": [int(i) for i in segment_ids]})


class Loader:
    """One raw psycopg2 connection for COPY, with foreign-key triggers off (the rows are consistent)."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.raw = self.engine.raw_connection()
        with self.raw.cursor() as cur:
            cur.execute("SET synchronous_commit = off")
            try:
                cur.execute("SET session_replication_role = replica")
            except Exception:  # not a superuser: keep the checks, only slower
                self.raw.rollback()

    def copy(self, table: str, columns: Sequence[str], rows: Any) -> int:
        return data.copy_rows(self.raw, table, columns, rows)

    def finish(self, tables: Sequence[str]) -> None:
        data.reset_sequences(self.raw, [t for t in tables if t in ("users", "activities", "segments",
                                                                    "segment_efforts")])
        self.raw.commit()
        old = self.raw.isolation_level
        self.raw.set_isolation_level(0)  # VACUUM outside a transaction block
        with self.raw.cursor() as cur:
            for table in tables:
                # As on a running system, whose rows are not all new: VACUUM sets the rows' hint bits and the
                # visibility map now, which the first reads after a bulk load would otherwise do (the first
                # timed runs paid for it), and autovacuum has nothing left to start in the middle of a figure.
                cur.execute(f"VACUUM (ANALYZE) {table}")
        self.raw.set_isolation_level(old)

    def close(self) -> None:
        self.raw.close()
        self.engine.dispose()


def load_athletes(loader: Loader, ids: Ids, rng: np.random.Generator, count: int, tag: str, **kw: Any) -> data.Athletes:
    block = data.athletes(rng, ids.take("user", count), count, **kw)
    loader.copy("users", data.USER_COLUMNS, data.user_rows(block, tag))
    loader.copy("user_preferences", data.PREFERENCE_COLUMNS, data.preference_rows(block))
    return block


def iso_times(now: datetime, seconds_ago: np.ndarray) -> list[str]:
    base = np.datetime64(now.replace(tzinfo=None), "ms")
    stamps = base - (seconds_ago * 1000).astype("timedelta64[ms]")
    return [s + "+00:00" for s in np.datetime_as_string(stamps, unit="ms").tolist()]


# --- 1. matching in the stage ---------------------------------------------------------------------------------

def bench_matching(stack: BenchStack, loader: Loader, ids: Ids, sizes: Sizes, rng: np.random.Generator,
                   keep_out: list[tuple[float, float, float, float]]) -> None:
    from domain.segments import efforts as engine
    from models import db

    started = time.perf_counter()
    scene = data.match_scene(rng, sizes.in_bounds, sizes.ridden)
    first_seg = ids.take("segment", sizes.in_bounds)
    scene_ids = list(range(first_seg, first_seg + sizes.in_bounds))
    ridden = [i for i, s in zip(scene_ids, scene.shapes, strict=True) if s.kind == "on"]
    loader.copy("segments", data.SEGMENT_COLUMNS,
                (data.segment_row(i, f"{s.kind} {i}", s) for i, s in zip(scene_ids, scene.shapes, strict=True)))
    n_background = max(0, sizes.segments - sizes.in_bounds)
    loader.copy("segments", data.SEGMENT_COLUMNS,
                data.background_rows(rng, ids.take("segment", n_background), n_background, keep_out))
    if sizes.no_prepared:
        with loader.raw.cursor() as cur:  # committed with the rest of the load (Loader.finish)
            cur.execute("UPDATE segments SET prepared = NULL")
    say(f"segments loaded: {sizes.in_bounds} in the ride's bounds + {n_background} elsewhere "
        f"({time.perf_counter() - started:.0f} s; prepared geometry {'not ' if sizes.no_prepared else ''}stored)")

    # History: athletes who already rode the ridden segments (counts, PR ranks and boards have real work).
    now = datetime.now(UTC)
    n_hist = max(1, sizes.history * 2) if sizes.history else 0
    if n_hist:
        hist = load_athletes(loader, ids, rng, n_hist, "hist")
        first_act = ids.take("activity", n_hist)
        ago = rng.uniform(86_400.0, 700 * 86_400.0, n_hist)
        starts = iso_times(now, ago)
        loader.copy("activities", data.ACTIVITY_COLUMNS,
                    (data.activity_row(first_act + i, int(hist.ids[i]), starts[i]) for i in range(n_hist)))
        rows = []
        effort_starts = iso_times(now, ago - 600.0)
        lengths = {i: float(np.sum(np.hypot(np.diff(s.lat) * 111_195.0, np.diff(s.lon) * 78_000.0)))
                   for i, s in zip(scene_ids, scene.shapes, strict=True)}
        for seg_id in ridden:
            riders = rng.choice(n_hist, size=min(sizes.history, n_hist), replace=False)
            speed = np.clip(rng.normal(8.5, 1.5, riders.shape[0]), 4.0, 14.0)
            for r, v in zip(riders.tolist(), speed.tolist(), strict=True):
                elapsed = round(lengths[seg_id] / v, 1)
                rows.append((ids.take("effort", 1), seg_id, first_act + r, int(hist.ids[r]), 100, 900,
                             effort_starts[r], elapsed, elapsed, False))
        loader.copy("segment_efforts", data.EFFORT_COLUMNS, rows)

    # The rides to process: one new athlete each, recorded over the last days (current boards fill up).
    n_profile = 3 if sizes.profile else 0
    n_rides = sizes.cold_runs + 1 + sizes.warm_runs + sizes.breakdown_runs + 2 + n_profile
    riders = load_athletes(loader, ids, rng, n_rides, "rider", private_share=0.0, hide_share=0.0)
    first_ride = ids.take("activity", n_rides)
    rides = list(range(first_ride, first_ride + n_rides))
    points = []
    act_rows, stream_rows = [], []
    for k, act_id in enumerate(rides):
        start = now.timestamp() - (k + 1) * 3_600.0
        track = data.ride(scene.route, data.MATCH_ORIGIN, seed=k, speed=rng.uniform(9.0, 9.3), start_time=start)
        points.append(len(track))
        act_rows.append(data.activity_row(act_id, int(riders.ids[k]), datetime.fromtimestamp(start, UTC), track=track))
        stream_rows.append(data.stream_row(act_id, track))
    loader.copy("activities", data.ACTIVITY_COLUMNS, act_rows)
    loader.copy("activity_streams", data.STREAM_COLUMNS, stream_rows)
    loader.finish(["users", "user_preferences", "activities", "activity_streams", "segments", "segment_efforts"])

    recount_segments(ridden)
    db.session.commit()
    for seg_id in ridden:  # boards exist (ready) as on a running system
        engine.rebuild_segment(seg_id)
    first = db.session.get(engine.Activity, rides[0])
    n_cand = len(engine.candidates(first.min_lat, first.min_lng, first.max_lat, first.max_lng, "cycling"))
    db.session.remove()
    say(f"matching data ready in {time.perf_counter() - started:.0f} s; running the stage in fresh processes")

    # Fresh processes: child 0 runs cold then warm, breakdown and cleared-cache runs; the others cold only.
    k = sizes.cold_runs + 1
    warm = rides[k:k + sizes.warm_runs]
    breakdown = rides[k + sizes.warm_runs:k + sizes.warm_runs + sizes.breakdown_runs]
    cleared = rides[k + sizes.warm_runs + sizes.breakdown_runs:k + sizes.warm_runs + sizes.breakdown_runs + 2]
    profiled = rides[len(rides) - n_profile:] if n_profile else []
    specs = [{"cold": rides[0], "warm": warm, "breakdown": breakdown, "cache_cleared": cleared,
              "profile": profiled}]
    specs += [{"cold": rides[i]} for i in range(1, sizes.cold_runs)]
    specs.append({"cold": rides[sizes.cold_runs], "instrument_cold": True})
    if sizes.no_warm_up:
        for spec in specs:
            spec["no_warm_up"] = True
    results = [run_child(stack, spec) for spec in specs]

    cold = [r["cold"] for r in results if not r["cold"].get("steps")]
    cold_steps = next(r["cold"] for r in results if r["cold"].get("steps"))
    warm_runs = results[0]["warm"]
    bd = results[0]["breakdown"]
    cl = results[0]["cache_cleared"]
    all_runs = [*cold, cold_steps, *warm_runs, *bd, *cl]
    wrong = stack.sql("SELECT count(*) FROM segment_efforts WHERE activity_id = ANY(:a) "
                      "AND NOT (segment_id = ANY(:r))", a=rides, r=ridden)[0][0]

    out("\n1. Matching in the stage: tasks.segments.process_activity(activity_id), end to end")
    out(f"   segments in the database: {sizes.segments:,}; candidates for the ride (bounds + sport): {n_cand:,} "
        f"({len(ridden)} genuinely ridden; the rest parallel roads, branches, alternatives, reversed, random)")
    out(f"   ride: cycling, 1 Hz, {min(points):,}-{max(points):,} points, 32 km; earlier efforts per ridden "
        f"segment: {sizes.history:,}")
    out(f"   efforts found per ride: {sorted({r['efforts'] for r in all_runs})} (expected {len(ridden)}); "
        f"efforts on segments not ridden: {wrong}")
    cold_ms = [r["ms"] for r in cold]
    kind = "unwarmed" if sizes.no_warm_up else "warmed-up"
    out(f"   cold (fresh {kind} process, prepared-segment cache empty; {results[0]['cached_segments']} prepared): "
        f"median {pct(cold_ms, 50):.1f} ms over {len(cold_ms)} processes "
        f"({', '.join(f'{x:.0f}' for x in cold_ms)}), CPU {pct([r['cpu_ms'] for r in cold], 50):.1f} ms "
        f"-> {verdict(pct(cold_ms, 50), MATCH_TARGET_MS)} the {MATCH_TARGET_MS:.0f} ms target")
    warm_ups = [r["warm_up"] for r in results if "warm_up" in r]
    if warm_ups:
        out(f"   start-up warm-up of each fresh process (worker_process_init, as a pool process before its first "
            f"task; not in the figures above): median {pct([w['ms'] for w in warm_ups], 50):.1f} ms wall, "
            f"{pct([w['cpu_ms'] for w in warm_ups], 50):.1f} ms CPU over {len(warm_ups)} processes")
    else:
        out("   start-up warm-up: off (--no-warm-up); fresh processes only opened their connections")
    if cl:
        cl_ms = ", ".join(f"{r['ms']:.1f}" for r in cl)
        out(f"   cold cache in a warm process: {cl_ms} ms")
    wm = [r["ms"] for r in warm_runs]
    if wm:
        out(f"   warm (cache hot), {len(wm)} rides: p50 {pct(wm, 50):.1f} ms, p90 {pct(wm, 90):.1f} ms, "
            f"min {min(wm):.1f} ms; CPU p50 {pct([r['cpu_ms'] for r in warm_runs], 50):.1f} ms "
            f"-> {verdict(pct(wm, 50), MATCH_TARGET_MS)} the {MATCH_TARGET_MS:.0f} ms target")
    print_breakdown("warm breakdown", bd)
    print_breakdown("cold breakdown (fresh process)", [cold_steps])
    print_breakdown("cold-cache breakdown (warm process)", cl)
    if results[0].get("profile"):
        out("   cProfile of warm runs (cumulative):")
        for line in results[0]["profile"].splitlines():
            out("     " + line)


def print_breakdown(title: str, runs: list[dict[str, Any]]) -> None:
    if not runs:
        return
    from bench_segments_child import STEPS

    total = float(np.mean([r["ms"] for r in runs]))
    out(f"   {title} (mean of {len(runs)}, timers on; total {total:.1f} ms):")
    top = 0.0
    for label, _ in STEPS:
        value = float(np.mean([r["steps"].get(label, 0.0) for r in runs]))
        if not any(label in r["steps"] for r in runs):
            continue  # a step this version of the code does not run
        if not label.startswith(" "):
            top += value
        out(f"     {label:<34} {value:8.2f} ms")
    out(f"     {'other (loads, commits, awards...)':<34} {total - top:8.2f} ms")


def run_child(stack: BenchStack, spec: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, str(BENCH / "bench_segments_child.py"), json.dumps(spec)]
    proc = subprocess.run(cmd, env=stack.env(), cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"matching child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- 2. leaderboards ------------------------------------------------------------------------------------------

def bench_boards(stack: BenchStack, loader: Loader, ids: Ids, sizes: Sizes, rng: np.random.Generator) -> None:
    from sqlalchemy import text

    from domain.segments import efforts as engine
    from domain.segments import service
    from models import User, db
    from models.leaderboard import Leaderboards
    from models.redis_store import redis_store

    started = time.perf_counter()
    route = data.road(3_000.0, phase=2.0)
    shape = data.SegmentShape("board", *data.to_latlon(data.cut(route, data.arc_length(route), 300.0, 2_700.0),
                                                       data.BOARD_ORIGIN))
    seg_id = ids.take("segment", 1)
    loader.copy("segments", data.SEGMENT_COLUMNS, [data.segment_row(seg_id, "The big climb", shape)])
    n_eff = sizes.efforts
    n_ath = max(1, n_eff // sizes.per_athlete)
    block = load_athletes(loader, ids, rng, n_ath, "board")
    say(f"{n_ath:,} athletes loaded ({time.perf_counter() - started:.0f} s)")
    now = datetime.now(UTC)
    first_act = ids.take("activity", n_eff)
    first_eff = ids.take("effort", n_eff)
    owner = block.ids[np.arange(n_eff) % n_ath]
    ago = rng.uniform(0.0, 730 * 86_400.0, n_eff)
    ago[: n_eff // 200] = rng.uniform(0.0, 86_400.0 * 3, n_eff // 200)  # a few this week: current boards
    act_start = iso_times(now, ago + 600.0)
    eff_start = iso_times(now, ago)
    vis = rng.choice(np.array(["everyone", "followers", "only_me"]), size=n_eff, p=[0.95, 0.04, 0.01])
    elapsed = np.round(np.clip(rng.lognormal(np.log(420.0), 0.25, n_eff), 180.0, 3_000.0), 1)
    hidden = rng.random(n_eff) < 0.02
    loader.copy("activities", data.ACTIVITY_COLUMNS,
                (data.activity_row(first_act + j, int(owner[j]), act_start[j], visibility=str(vis[j]))
                 for j in range(n_eff)))
    say(f"{n_eff:,} activities loaded ({time.perf_counter() - started:.0f} s)")
    loader.copy("segment_efforts", data.EFFORT_COLUMNS,
                ((first_eff + j, seg_id, first_act + j, int(owner[j]), 120, 540, eff_start[j], float(elapsed[j]),
                  float(elapsed[j]) - 3.0, bool(hidden[j])) for j in range(n_eff)))
    say(f"{n_eff:,} efforts loaded ({time.perf_counter() - started:.0f} s)")
    eligible = (~block.private) & (~block.hide)
    viewer_id = int(block.ids[np.flatnonzero(eligible)[0]])
    others = block.ids[block.ids != viewer_id]
    followees = rng.choice(others, size=min(sizes.follows, others.shape[0]), replace=False)
    loader.copy("follows", ("follower_id", "followee_id", "status"),
                ((viewer_id, int(f), "accepted") for f in followees))
    loader.finish(["users", "user_preferences", "activities", "segments", "segment_efforts", "follows"])
    recount_segments([seg_id])
    db.session.commit()
    expected = db.session.scalar(text("""
        SELECT count(DISTINCT e.user_id) FROM segment_efforts e JOIN activities a ON a.id = e.activity_id
        JOIN users u ON u.id = e.user_id JOIN user_preferences p ON p.user_id = u.id
        WHERE e.segment_id = :s AND NOT e.hidden_by_privacy AND a.visibility = 'everyone'
          AND NOT u.is_private AND NOT p.hide_from_leaderboards"""), {"s": seg_id})
    db.session.remove()
    say(f"leaderboard data ready in {time.perf_counter() - started:.0f} s; rebuilding")

    # Rebuild, in-process: fetch (SQL + rows), reduce (Python) and Redis timed apart, while a probe
    # measures how long Redis stops answering other clients.
    boards = Leaderboards(redis_store.client)
    boards.drop_segment(seg_id)
    rebuild = measure_rebuild(engine, seg_id)
    db.session.remove()
    board = boards.board_key(seg_id)
    if rebuild.error:  # the boards must exist for the lookups: build them as the fixed code would not
        say(f"rebuild failed ({rebuild.error}); the lookups below need boards, building them in slices")
        boards_fallback(seg_id)
    on_board = boards.count(board)

    # The same through the operator's command, in its own process.
    t = time.perf_counter()
    cli = subprocess.run([str(Path(sys.executable).parent / "flask"), "--app", "webapp", "leaderboards-rebuild",
                          "--segment", str(seg_id)], env=stack.env(), cwd=ROOT, capture_output=True, text=True,
                         timeout=1_800, check=False)
    cli_s = time.perf_counter() - t
    cli_msg = (cli.stderr.strip().splitlines() or ["(no output)"])[-1]

    # Store level.
    members = [int(m) for m in redis_store.client.zrandmember(board.zset, sizes.calls)]
    rank_ms = timed_calls(lambda u: boards.rank_of(board, u), members)
    top_ms = timed_calls(lambda _: boards.top(board, 0, 9), members)
    count_ms = timed_calls(lambda _: boards.count(board), members[:200])
    around_ms = timed_calls(lambda u: boards.top(board, max(0, (boards.rank_of(board, u) or 0) - 5),
                                                 (boards.rank_of(board, u) or 0) + 4), members[:200])
    ids_follow = [viewer_id, *map(int, followees)]
    subset_ms = timed_calls(lambda _: boards.subset(board, ids_follow), members[:200])
    filtered = {}
    for label, kw in (("gender F", {"gender": "F"}), ("age 35-44", {"age": "35-44"}),
                      ("gender M + age 25-34", {"gender": "M", "age": "25-34"}),
                      ("this_year", {"date_range": "this_year"}), ("this_week", {"date_range": "this_week"})):
        redis_store.client.delete(*redis_store.client.keys("lbtmp:*") or ["none"])
        t = time.perf_counter()
        fb = boards.board_key(seg_id, **kw)
        boards.top(fb, 0, 9)
        first_ms = (time.perf_counter() - t) * 1000.0
        again = timed_calls(lambda _, kw=kw: boards.top(boards.board_key(seg_id, **kw), 0, 9), members[:200])
        filtered[label] = (first_ms, pct(again, 50), boards.count(fb))

    # Service level: one fresh session per call, as each request has.
    viewers = []
    for uid in members:
        viewers.append(db.session.get(User, uid))
    db.session.remove()
    args = {"filter": "overall", "gender": None, "age_group": None, "date_range": None, "limit": 10,
            "around_me": False}
    svc_ms = timed_calls(lambda v: service.leaderboard(v, seg_id, args), viewers, between=db.session.remove)
    around_args = {**args, "around_me": True}
    svc_around = timed_calls(lambda v: service.leaderboard(v, seg_id, around_args), viewers[:200],
                             between=db.session.remove)
    viewer = db.session.get(User, viewer_id)
    db.session.remove()
    fol_args = {**args, "filter": "following"}
    svc_fol = timed_calls(lambda _: service.leaderboard(viewer, seg_id, fol_args), range(min(200, sizes.calls)),
                          between=db.session.remove)
    fol_result = service.leaderboard(viewer, seg_id, fol_args)
    db.session.remove()
    gender_args = {**args, "gender": "F"}
    svc_gender = timed_calls(lambda v: service.leaderboard(v, seg_id, gender_args), viewers[:200],
                             between=db.session.remove)

    # What an upload touching this segment pays for its counts: the trigger's work for one new effort.
    some = db.session.execute(text(
        "SELECT activity_id, user_id FROM segment_efforts WHERE segment_id = :s LIMIT 1"), {"s": seg_id}).first()
    t = time.perf_counter()
    db.session.execute(text("""
        INSERT INTO segment_efforts (segment_id, activity_id, user_id, start_index, end_index, start_time,
                                     elapsed_time_s, moving_time_s, hidden_by_privacy)
        VALUES (:s, :a, :u, 999999, 1000000, now(), 1e6, 1e6, false)"""), {"s": seg_id, "a": some[0], "u": some[1]})
    counts_ms = (time.perf_counter() - t) * 1000.0
    db.session.rollback()
    db.session.remove()

    out(f"\n2. Leaderboard of one segment with {n_eff:,} efforts "
        f"({n_ath:,} athletes x {sizes.per_athlete} effort{'s' if sizes.per_athlete > 1 else ''}; "
        f"~5 % not public, 2 % private athletes, 1 % hidden from boards, 2 % in privacy zones)")
    out(f"   rebuild in-process (tasks.segments.rebuild_segment): {rebuild.line()}")
    out(f"   rebuild via `flask --app webapp leaderboards-rebuild --segment {seg_id}`: {cli_s:.1f} s wall "
        f"incl. start-up; it says: {cli_msg}")
    out(f"   board 'all': {on_board:,} athletes (expected {expected:,}; rebuild returned {rebuild.size:,})")
    out(f"   one effort insert on this segment, counts kept by the trigger: {counts_ms:.1f} ms")
    out("   store level (models.leaderboard.Leaderboards):")
    out(f"     rank_of        {spread(rank_ms)} -> {verdict(pct(rank_ms, 50), LOOKUP_TARGET_MS)}")
    out(f"     top 10         {spread(top_ms)} -> {verdict(pct(top_ms, 50), LOOKUP_TARGET_MS)}")
    out(f"     count          {spread(count_ms)}")
    out(f"     around me (10) {spread(around_ms)}")
    out(f"     subset of {len(ids_follow):,} (following) {spread(subset_ms)} "
        f"-> {verdict(pct(subset_ms, 50), FOLLOWING_TARGET_MS)}")
    for label, (first_ms, again_ms, n) in filtered.items():
        out(f"     filtered top 10, {label:<22} first call {first_ms:8.1f} ms (builds the 30 s cache), "
            f"then p50 {again_ms:.3f} ms; {n:,} athletes")
    out("   service level (webapp.segments.service.leaderboard, app context, fresh session per call):")
    out(f"     overall, top 10 + my rank   {spread(svc_ms)} -> {verdict(pct(svc_ms, 50), LOOKUP_TARGET_MS)}")
    out(f"     overall, around me          {spread(svc_around)}")
    out(f"     gender F (cache warm)       {spread(svc_gender)}")
    out(f"     following ({len(followees):,} followed)    {spread(svc_fol)} "
        f"-> {verdict(pct(svc_fol, 50), FOLLOWING_TARGET_MS)}; {fol_result['entry_count']} on it")


@dataclass
class Rebuild:
    seconds: float = 0.0
    cpu: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    redis_stall_ms: float = 0.0
    rss_mb: float = 0.0
    size: int = 0
    error: str = ""

    def line(self) -> str:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in self.steps.items())
        head = f"FAILED after {self.seconds:.1f} s: {self.error}" if self.error else f"{self.seconds:.1f} s"
        tail = "" if self.error else f" -> {verdict(self.seconds, REBUILD_TARGET_S)} the {REBUILD_TARGET_S:.0f} s"
        return (f"{head} ({parts}; CPU {self.cpu:.1f} s; peak RSS +{self.rss_mb:.0f} MB; longest Redis stall "
                f"seen by another client {self.redis_stall_ms:.0f} ms){tail}")


def measure_rebuild(engine: Any, seg_id: int) -> Rebuild:
    """``engine.rebuild_segment(seg_id)`` with timers on its parts and a Redis latency probe running."""
    import threading

    import redis

    from models import leaderboard
    from models.redis_store import redis_store

    timers = Timers(engine)
    patches = [(engine, name, label) for name, label in (("board_effort_rows", "fetch"), ("board_efforts", "fetch"))
               if hasattr(engine, name)][:1]
    if hasattr(leaderboard, "_best_per_board"):
        patches.append((leaderboard, "_best_per_board", "reduce"))
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in patches]
    for mod, name, label in patches:
        setattr(mod, name, timers._wrap(label, getattr(mod, name)))
    probe = redis.Redis.from_url(redis_store.url or "", socket_timeout=120)
    stop = threading.Event()
    worst = [0.0]

    def ping() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            probe.ping()
            worst[0] = max(worst[0], time.perf_counter() - t)
            time.sleep(0.01)

    thread = threading.Thread(target=ping, daemon=True)
    thread.start()
    result = Rebuild()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t, c = time.perf_counter(), time.process_time()
    try:
        result.size = engine.rebuild_segment(seg_id)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        result.seconds, result.cpu = time.perf_counter() - t, time.process_time() - c
        for mod, name, fn in saved:
            setattr(mod, name, fn)
        stop.set()
        thread.join()
        probe.close()
    result.rss_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    result.steps = dict(timers.totals)
    rest = result.seconds - sum(result.steps.values())
    result.steps["redis" if "reduce" in result.steps else "reduce + redis"] = rest
    result.redis_stall_ms = worst[0] * 1000.0
    return result


def boards_fallback(seg_id: int) -> None:
    """Build the overall board only, in slices, so the read figures can still be taken."""
    from domain.segments import efforts as engine
    from models.leaderboard import key, score
    from models.redis_store import redis_store

    best: dict[int, tuple[float, int]] = {}
    for r in engine.board_efforts(seg_id):
        v = score(r.elapsed_s, r.start)
        if r.user_id not in best or v < best[r.user_id][0]:
            best[r.user_id] = (v, r.effort_id)
    items = list(best.items())
    for i in range(0, len(items), 10_000):
        part = items[i:i + 10_000]
        redis_store.client.zadd(key(seg_id, "all"), {str(u): v[0] for u, v in part})
        redis_store.client.hset(key(seg_id, "all") + ":e", mapping={str(u): v[1] for u, v in part})
    redis_store.client.set(key(seg_id, "ready"), "1")


def timed_calls(fn: Callable[[Any], Any], items: Any, between: Callable[[], None] | None = None) -> list[float]:
    """Milliseconds per call of ``fn(item)``; ``between`` runs untimed after each call."""
    times = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - t) * 1000.0)
        if between is not None:
            between()
    return times


# --- 3. re-matching -------------------------------------------------------------------------------------------

def bench_rematch(stack: BenchStack, loader: Loader, ids: Ids, sizes: Sizes, rng: np.random.Generator) -> None:
    from sqlalchemy import text

    from domain.algorithms.streams import encode_track
    from domain.segments import efforts as engine
    from domain.segments import rematch as rematching
    from models import Segment, db
    from models.leaderboard import key
    from models.redis_store import redis_store

    started = time.perf_counter()
    scene = data.rematch_scene(rng, sizes.variants)
    n_act = sizes.activities
    n_ath = max(1, n_act // 5)
    block = load_athletes(loader, ids, rng, n_ath, "rematch")
    first_act = ids.take("activity", n_act)
    now = datetime.now(UTC).timestamp()
    kinds: list[str] = []

    def rows() -> Any:
        for j in range(n_act):
            kind, base = scene.variants[j % len(scene.variants)]
            kinds.append(kind)
            track = data.retimed(base, now - rng.uniform(3_600.0, 365 * 86_400.0), rng.uniform(0.85, 1.2))
            yield (data.activity_row(first_act + j, int(block.ids[j % n_ath]),
                                     datetime.fromtimestamp(float(track.time[0]), UTC), track=track),
                   data.stream_row(first_act + j, track, encode_track(track)))

    batch: list[Any] = []
    for pair in rows():
        batch.append(pair)
        if len(batch) == 500:
            loader.copy("activities", data.ACTIVITY_COLUMNS, [a for a, _ in batch])
            loader.copy("activity_streams", data.STREAM_COLUMNS, [s for _, s in batch])
            batch.clear()
    if batch:
        loader.copy("activities", data.ACTIVITY_COLUMNS, [a for a, _ in batch])
        loader.copy("activity_streams", data.STREAM_COLUMNS, [s for _, s in batch])
    seg_id = ids.take("segment", 1)
    loader.copy("segments", data.SEGMENT_COLUMNS, [data.segment_row(seg_id, "New segment", scene.segment)])
    loader.finish(["users", "user_preferences", "activities", "activity_streams", "segments"])
    expected = sum(k == "forward" for k in kinds)
    say(f"re-matching data ready in {time.perf_counter() - started:.0f} s")

    segment = db.session.get(Segment, seg_id)
    assert segment is not None
    act_ids = list(db.session.scalars(text("""
        SELECT id FROM activities WHERE min_lat IS NOT NULL
          AND box(point(min_lng, min_lat), point(max_lng, max_lat)) && box(point(:a, :b), point(:c, :d))
          AND sport_type = ANY(:s) ORDER BY id"""),
        {"a": segment.min_lng, "b": segment.min_lat, "c": segment.max_lng, "d": segment.max_lat,
         "s": engine.sport_families(segment.sport_type)}))
    db.session.remove()

    # In-process, in the fan-out's batches; timers on the steps (per-activity calls: negligible overhead).
    timers = Timers(engine)
    patched = {name: getattr(rematching, name) for name in ("decode_track", "prepare_track", "match_many_prepared")}
    for name, fn in patched.items():
        setattr(rematching, name, timers._wrap(name, fn))
    originals = {name: getattr(engine, name) for name in ("store_efforts", "store_efforts_many", "rebuild_segment")
                 if hasattr(engine, name)}
    for name, fn in originals.items():
        setattr(engine, name, timers._wrap(name, fn))
    t, c = time.perf_counter(), time.process_time()
    created = 0
    try:
        for i in range(0, len(act_ids), rematching.REMATCH_BATCH):
            created += rematching.rematch_activities(seg_id, act_ids[i:i + rematching.REMATCH_BATCH],
                                                        rebuild=True)
            db.session.remove()
    finally:
        for name, fn in patched.items():
            setattr(rematching, name, fn)
        for name, fn in originals.items():
            setattr(engine, name, fn)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    on_board = redis_store.client.zcard(key(seg_id, "all"))

    out(f"\n3. Re-matching a new {data.NEW_SEGMENT_ARC[1] - data.NEW_SEGMENT_ARC[0]:.0f} m segment against "
        f"{len(act_ids):,} activities in its bounds (3,600-point rides: "
        + ", ".join(f"{k} {share:.0%}" for k, share in data.REMATCH_KINDS) + ")")
    out(f"   in-process, domain.segments.rematch.rematch_activities in batches of {rematching.REMATCH_BATCH} "
        f"(rebuild after each, as rematch_batch does): {wall:.1f} s -> {len(act_ids) / wall:.0f} activities/s "
        f"(CPU {cpu:.1f} s); efforts {created:,} (expected {expected:,}); board {on_board:,} athletes")
    labels = {"decode_track": "decode streams", "prepare_track": "prepare tracks", "match_many_prepared": "match",
              "store_efforts": "store efforts", "store_efforts_many": "store efforts (batched)",
              "rebuild_segment": "rebuild boards"}
    parts = ", ".join(f"{labels[k]} {v:.1f} s" for k, v in timers.totals.items())
    out(f"   split: {parts}, other (loads, commits) {wall - sum(timers.totals.values()):.1f} s")

    if sizes.celery:
        bench_rematch_celery(stack, seg_id, len(act_ids), created, int(on_board))


def bench_rematch_celery(stack: BenchStack, seg_id: int, n_act: int, expected: int, board_size: int) -> None:
    from flask import current_app

    from domain.segments import efforts as engine
    from models import db
    from models.leaderboard import Leaderboards, key
    from models.redis_store import redis_store
    from tasks import segments as segment_tasks

    db.session.execute(sa.text("DELETE FROM segment_efforts WHERE segment_id = :s"), {"s": seg_id})
    db.session.execute(sa.text("UPDATE segments SET effort_count = 0, athlete_count = 0 WHERE id = :s"),
                       {"s": seg_id})
    db.session.commit()
    Leaderboards(redis_store.client).drop_segment(seg_id)
    engine._prepared.clear()
    celery = current_app.extensions["celery"]
    stack.start_worker(2)
    try:
        deadline = time.monotonic() + 90
        while not celery.control.ping(timeout=1.0):
            stack.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"Celery worker not answering; see {stack.workdir / 'worker.log'}")
        t = time.perf_counter()
        segment_tasks.rematch.delay(seg_id)
        deadline = time.monotonic() + 1_800
        while True:
            n = stack.sql("SELECT count(*) FROM segment_efforts WHERE segment_id = :s", s=seg_id)[0][0]
            if n >= expected and redis_store.client.zcard(key(seg_id, "all")) >= board_size:
                break
            stack.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"re-matching through Celery did not finish ({n} efforts)")
            time.sleep(0.05)
        wall = time.perf_counter() - t
    finally:
        stack.stop_worker()
    out(f"   through Celery (real worker, prefork concurrency 2, segments.rematch fan-out): {wall:.1f} s "
        f"-> {n_act / wall:.0f} activities/s ({n:,} efforts)")


# --- main -----------------------------------------------------------------------------------------------------

def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, Sizes]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--segments", type=int, help="segments in the database (default 100,000)")
    ap.add_argument("--in-bounds", type=int, help="of them in the ride's bounds (default 1,000)")
    ap.add_argument("--ridden", type=int, help="of those genuinely ridden (default 50)")
    ap.add_argument("--history", type=int, help="earlier efforts on each ridden segment (default 500)")
    ap.add_argument("--warm-runs", type=int, help="rides timed warm (default 20)")
    ap.add_argument("--cold-runs", type=int, help="fresh processes timed cold (default 3)")
    ap.add_argument("--efforts", type=int, help="efforts on the leaderboard segment (default 1,000,000)")
    ap.add_argument("--efforts-per-athlete", type=int, default=1, help="1: all distinct athletes (default)")
    ap.add_argument("--follows", type=int, help="athletes the viewer follows (default 1,000)")
    ap.add_argument("--calls", type=int, help="calls per lookup figure (default 1,000)")
    ap.add_argument("--activities", type=int, help="activities in the new segment's bounds (default 10,000)")
    ap.add_argument("--variants", type=int, help="distinct ride geometries among them (default 60)")
    ap.add_argument("--no-celery", action="store_true", help="skip re-matching through a Celery worker")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of warm stage runs")
    ap.add_argument("--only", action="append", choices=["match", "boards", "rematch"], default=[],
                    help="run only these parts (repeatable)")
    ap.add_argument("--no-prepared", action="store_true",
                    help="segments without their stored prepared geometry (cold processes prepare every candidate)")
    ap.add_argument("--no-warm-up", action="store_true",
                    help="fresh processes skip the pool process warm-up (how they started before it)")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every part")
    ap.add_argument("--db-name", default="strava_bench_segments")
    ap.add_argument("--redis-db", type=int, default=10)
    ap.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    q = a.quick

    def pick(value: int | None, full: int, quick: int) -> int:
        return value if value is not None else (quick if q else full)

    sizes = Sizes(
        segments=pick(a.segments, 100_000, 5_000), in_bounds=pick(a.in_bounds, 1_000, 300),
        ridden=pick(a.ridden, 50, 20), history=pick(a.history, 500, 50),
        cold_runs=max(1, pick(a.cold_runs, 3, 1)), warm_runs=pick(a.warm_runs, 20, 3),
        breakdown_runs=3 if q else 8, efforts=pick(a.efforts, 1_000_000, 20_000),
        per_athlete=max(1, a.efforts_per_athlete), follows=pick(a.follows, 1_000, 200),
        calls=pick(a.calls, 1_000, 200), activities=pick(a.activities, 10_000, 300),
        variants=pick(a.variants, 60, 12), celery=not a.no_celery, profile=a.profile, only=set(a.only),
        no_prepared=a.no_prepared, no_warm_up=a.no_warm_up,
    )
    return a, sizes


def header(stack: BenchStack, argv: Sequence[str]) -> None:
    pg = stack.sql("SHOW server_version")[0][0]
    import redis

    client = redis.Redis.from_url(stack.redis_url)
    rv = client.info("server")["redis_version"]
    client.close()
    out("bench_segments: segments stage, leaderboards and re-matching on real PostgreSQL and Redis")
    out(f"command: {shlex.join([Path(sys.executable).name, *argv])}")
    load = os.getloadavg()
    out(f"nproc: {os.cpu_count()}; load average at start {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; "
        f"PostgreSQL {pg}, Redis {rv}; database {stack.db_name}, Redis db {stack.redis_db}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    a, sizes = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-segments-"))
    stack = BenchStack(workdir, db_name=a.db_name, redis_db=a.redis_db, keep_db=a.keep_db)
    loader: Loader | None = None
    rng = np.random.default_rng(a.seed)
    try:
        stack.open()
        os.environ.update(stack.env())
        for k in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "PUBSUB_REDIS_URL"):
            os.environ.pop(k, None)
        from models import db
        from webapp import create_app

        header(stack, [str(Path(__file__).relative_to(ROOT)), *argv])
        app = create_app("development")
        loader = Loader(stack.database_url)
        ids = Ids()
        keep_out = [_box(data.to_latlon(data.road(data.RIDE_LENGTH_M + 200.0), data.MATCH_ORIGIN)),
                    _box(data.to_latlon(data.rematch_route(), data.REMATCH_ORIGIN))]
        with app.app_context():
            if sizes.runs("match"):
                ids.sync(stack)
                bench_matching(stack, loader, ids, sizes, rng, keep_out)
            if sizes.runs("boards"):
                ids.sync(stack)
                bench_boards(stack, loader, ids, sizes, rng)
            if sizes.runs("rematch"):
                ids.sync(stack)
                bench_rematch(stack, loader, ids, sizes, rng)
            db.session.remove()
        if db.engine is not None:
            db.engine.dispose()
        return 0
    finally:
        if loader is not None:
            loader.close()
        stack.close()
        remove_tree(workdir)


def _box(latlon: tuple[np.ndarray, np.ndarray]) -> tuple[float, float, float, float]:
    return data.bounds(*latlon)


if __name__ == "__main__":
    started_at = datetime.now(UTC)
    code = main()
    say(f"done in {(datetime.now(UTC) - started_at) / timedelta(seconds=1):.0f} s")
    sys.exit(code)
