"""Home-feed benchmark: the fan-out stage, the hybrid path for huge accounts, and feed reads under load.

It sets up its own throwaway database (``strava_bench_feed``, built by the migrations) and Redis database
index (``--redis-db``, default 14) the way ``bench_ingest_stack.BenchStack`` does — on a private Redis
server unless ``REDIS_URL`` names one — bulk-loads the rows
with COPY, runs in-process against them (app context, no HTTP: the figures are the view's own cost), prints
a table and drops everything again. Figures:

1. fan-out of one activity to 10,000 followers: the chain's ``pipeline.feed`` stage (claim + fan-out) for
   an author whose 10,000 followers all have built feeds. Target ≤ 100 ms.
2. the hybrid: the same stage for an author with 1,000,000 followers (above FEED_FANOUT_THRESHOLD, so one
   write to the author's shared set), and the first and warm feed read of one of those followers.
   ``--full-fanout-1m`` also times fanning that upload out to 1,000,000 built feeds, i.e. without the
   hybrid (takes ~10 s and ~0.5 GB of Redis).
3. feed page reads (what the view does: ``webapp.feed.service.feed_page`` and the JSON response, no HTTP)
   of viewers with 1,000-entry feeds, first pages and pages further down by cursor: p50/p99 from 1 thread,
   then under closed-loop concurrent load — N requests always in flight, as ``--procs`` processes (the
   web's gunicorn workers; default one per core) × threads, and as ``--threads`` threads of one process.
   Target p99 ≤ 10 ms.

The 1,000,000 follow rows go in with COPY with the ``follows_counts`` trigger disabled (it would update the
followee's row a million times); the count is then set directly. Bench database only.

Usage (from the repository root)::

    .venv/bin/python bench/bench_feed.py
    .venv/bin/python bench/bench_feed.py --threads 8 --reads 4000 --full-fanout-1m
    .venv/bin/python bench/bench_feed.py --fans 20000 --reads 2000 --procs 2 --concurrency 1,2,4,8
    .venv/bin/python bench/bench_feed.py --fans 20000 --reads 40 --seed-entries 1000   # full feeds (fan-out)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest_stack import BenchStack, remove_tree, say

FANS = 1_000_000
TEN_K = 10_000
SMALL_AUTHORS = 500
VIEWERS = 200
FOLLOWS_PER_VIEWER = 50
ACTIVITIES_PER_AUTHOR = 24
POSTS_PER_AUTHOR = 4
FANOUT_RUNS = 25
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


# --- bulk loading ----------------------------------------------------------------------------------------

def copy_rows(raw: Any, table: str, columns: Iterable[str], rows: Iterator[tuple[Any, ...]],
              chunk: int = 200_000) -> int:
    """COPY rows in chunks (tab-separated, \\N for NULL) so the buffer stays a few megabytes."""
    cols = ", ".join(columns)
    total = 0
    while True:
        buf = io.StringIO()
        n = 0
        for row in rows:
            buf.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
            n += 1
            if n == chunk:
                break
        if n == 0:
            break
        buf.seek(0)
        with raw.cursor() as cur:
            cur.copy_expert(f"COPY {table} ({cols}) FROM STDIN", buf)
        raw.commit()
        total += n
        if n < chunk:
            break
    return total


def sample_polyline() -> str:
    from domain.algorithms import polylines

    t = np.linspace(0, 2 * np.pi, 60)
    return polylines.encode(46.05 + 0.01 * np.sin(t), 14.50 + 0.015 * np.cos(t))


def load(raw: Any, rng: random.Random, fans: int) -> dict[int, list[int]]:
    """Users, follows, activities, posts, kudos. Returns each viewer's followees."""
    star_10k, star_1m, first_small = ids(fans)
    started = time.perf_counter()
    last_user = first_small + SMALL_AUTHORS - 1
    copy_rows(raw, "users", ("id", "firebase_uid", "display_name"),
              ((i, f"bench-{i}", f"athlete {i}") for i in range(1, last_user + 1)))
    notifications = json.dumps({k: True for k in ("kudos", "comments", "follows", "chat", "reminders",
                                                  "weekly_summary", "achievements")})
    copy_rows(raw, "user_preferences", ("user_id", "notifications"),
              ((i, notifications) for i in range(fans + 1, last_user + 1)))
    say(f"users: {last_user:,} in {time.perf_counter() - started:.1f} s")

    t = time.perf_counter()
    with raw.cursor() as cur:
        cur.execute("ALTER TABLE follows DISABLE TRIGGER follows_counts")
    raw.commit()
    copy_rows(raw, "follows", ("follower_id", "followee_id", "status"),
              ((i, star_1m, "accepted") for i in range(1, fans + 1)))
    copy_rows(raw, "follows", ("follower_id", "followee_id", "status"),
              ((i, star_10k, "accepted") for i in range(1, TEN_K + 1)))
    small = list(range(first_small, first_small + SMALL_AUTHORS))
    followees = {v: rng.sample(small, FOLLOWS_PER_VIEWER) for v in range(TEN_K + 1, TEN_K + 1 + VIEWERS)}
    copy_rows(raw, "follows", ("follower_id", "followee_id", "status"),
              ((v, a, "accepted") for v, authors in followees.items() for a in authors))
    with raw.cursor() as cur:
        cur.execute("ALTER TABLE follows ENABLE TRIGGER follows_counts")
        # What the trigger would have kept: exact counts, set once.
        cur.execute("UPDATE users u SET follower_count = c.n FROM (SELECT followee_id, count(*) AS n FROM follows "
                    "WHERE status = 'accepted' GROUP BY followee_id) c WHERE u.id = c.followee_id")
        cur.execute("ANALYZE")
    raw.commit()
    say(f"follows: {fans + TEN_K + VIEWERS * FOLLOWS_PER_VIEWER:,} in {time.perf_counter() - t:.1f} s")

    t = time.perf_counter()
    line = sample_polyline()
    public = json.dumps({"filtered": True, "map": {"polyline": line, "summary_polyline": line, "polylines": [line]},
                         "start_latlng": None, "end_latlng": None, "bounds": None})
    columns = ("id", "user_id", "name", "sport_type", "visibility", "start_time", "distance_m", "elapsed_time_s",
               "moving_time_s", "elevation_gain_m", "avg_speed_mps", "details", "has_gps", "point_count",
               "summary_polyline", "polyline", "public", "privacy_version")

    def activities() -> Iterator[tuple[Any, ...]]:
        ident = 0
        for author in small:
            for k in range(ACTIVITIES_PER_AUTHOR):
                ident += 1
                start = BASE_TIME + timedelta(minutes=rng.randrange(0, 60 * 24 * 300))
                vis = "followers" if k % 5 == 0 else "everyone"
                yield (ident, author, f"Run {ident}", "running", vis, start.isoformat(), 10000.0, 3000.0, 2900.0,
                       55.0, 3.4, "{}", "true", 3000, line, line, public, 0)

    copy_rows(raw, "activities", columns, activities())
    n_activities = SMALL_AUTHORS * ACTIVITIES_PER_AUTHOR

    def posts() -> Iterator[tuple[Any, ...]]:
        ident = 0
        for i, author in enumerate(small):
            for k in range(POSTS_PER_AUTHOR):
                ident += 1
                created = BASE_TIME + timedelta(minutes=rng.randrange(0, 60 * 24 * 300))
                shared = i * ACTIVITIES_PER_AUTHOR + k + 1 if k % 2 == 0 else None
                yield (ident, author, f"Post {ident}", "everyone", shared, created.isoformat())

    copy_rows(raw, "posts", ("id", "user_id", "text", "visibility", "activity_id", "created_at"), posts())
    kudos = ((v, rng.randrange(1, n_activities + 1)) for v in followees for _ in range(40))
    copy_rows(raw, "kudos", ("user_id", "activity_id"), iter(dict.fromkeys(kudos)))
    with raw.cursor() as cur:
        for table in ("users", "activities", "posts"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        cur.execute("ANALYZE")
    raw.commit()
    say(f"activities {n_activities:,}, posts {SMALL_AUTHORS * POSTS_PER_AUTHOR:,}, kudos in "
        f"{time.perf_counter() - t:.1f} s")
    return followees


def ids(fans: int) -> tuple[int, int, int]:
    """(the author with 10,000 followers, the one with ``fans``, the first of the small authors)."""
    return fans + 1, fans + 2, fans + 3


# --- measuring -------------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def ms(values: list[float]) -> str:
    return (f"p50 {pct(values, 50) * 1e3:7.2f} ms  p99 {pct(values, 99) * 1e3:7.2f} ms  "
            f"max {max(values) * 1e3:7.2f} ms  (n={len(values)})")


def new_upload_and_activity(user_id: int, n: int) -> list[int]:
    """``n`` activities for ``user_id``, each with the `processing` upload the feed stage claims."""
    from models import Activity, Upload, db

    uploads = []
    for i in range(n):
        start = datetime.now(UTC) - timedelta(minutes=i)
        activity = Activity(user_id=user_id, name="Bench", sport_type="running", visibility="everyone",
                            start_time=start, details={}, has_gps=False, point_count=0)
        db.session.add(activity)
        db.session.flush()
        upload = Upload(user_id=user_id, status="processing", storage_key=f"bench/{activity.id}",
                        size_bytes=1, sha256=f"{activity.id:064d}", activity_id=activity.id)
        db.session.add(upload)
        db.session.flush()
        uploads.append(upload.id)
    db.session.commit()
    return uploads


def redis_cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def redis_script_time(client: Any) -> float:
    """Seconds Redis has spent running scripts (EVALSHA/EVAL), by its own clock: finer than its CPU counters."""
    stats = client.info("commandstats")
    return sum(float(stats.get(f"cmdstat_{c}", {}).get("usec", 0)) for c in ("evalsha", "eval")) / 1e6


def time_stage(upload_ids: list[int], cpu: list[tuple[float, float, float]]) -> tuple[list[float], list[int]]:
    """Wall time of each stage run; ``cpu`` gets (this thread's CPU, Redis server CPU, Redis time in scripts)
    per run, which the load other processes put on the machine inflates less."""
    from domain.feed.fanout import fan_out_activity
    from models.redis_store import redis_store
    from tasks import stages

    stage_times, written = [], []
    for upload_id in upload_ids:
        redis_before, scripts_before = redis_cpu(redis_store.client), redis_script_time(redis_store.client)
        started_cpu = time.thread_time()
        started = time.perf_counter()
        stages.feed.run(upload_id)
        stage_times.append(time.perf_counter() - started)
        cpu.append((time.thread_time() - started_cpu, redis_cpu(redis_store.client) - redis_before,
                    redis_script_time(redis_store.client) - scripts_before))
    # The fan-out alone, again on the same activities (idempotent: same members, same scores).
    from models import Upload, db

    for upload_id in upload_ids[:5]:
        written.append(fan_out_activity(db.session.get(Upload, upload_id).activity_id))
    return stage_times, written


def mark_built(client: Any, user_ids: Iterable[int], seed_entries: int) -> None:
    from models.feed import built_key, feed_key

    pipe = client.pipeline(transaction=False)
    for n, user_id in enumerate(user_ids, start=1):
        pipe.set(built_key(user_id), "1")
        if seed_entries:
            pipe.zadd(feed_key(user_id), {f"a:{900_000_000 + k}": float(k) for k in range(seed_entries)})
        if n % 5000 == 0:
            pipe.execute()
    pipe.execute()


def read_worker(app: Any, viewers: list[int], calls: int, limit: int, seed: int,
                out_first: list[float], out_deep: list[float], out_cpu: list[float],
                barrier: Any) -> None:
    from flask import jsonify

    from domain.feed import reading as service
    from models import User, db

    rng = random.Random(seed)
    with app.app_context():
        users = {v: db.session.get(User, v) for v in viewers}
        db.session.expunge_all()
        barrier.wait()
        done = 0
        while done < calls:
            viewer = users[rng.choice(viewers)]
            cursor = None
            for depth in range(4):  # a first page, then three more by cursor
                started, started_cpu = time.perf_counter(), time.thread_time()
                page = service.feed_page(viewer, cursor, limit)
                jsonify(page)  # the view's response (the page is already in the schema's dumped shape)
                db.session.remove()  # one session per request, as the web app's teardown does
                elapsed = time.perf_counter() - started
                (out_first if depth == 0 else out_deep).append(elapsed)
                out_cpu.append(time.thread_time() - started_cpu)
                done += 1
                cursor = page["next_cursor"]
                if cursor is None or done >= calls:
                    break


def run_reads(app: Any, viewers: list[int], threads: int, total: int,
              limit: int, barrier: Any = None, seed: int = 0) -> tuple[list[float], list[float], list[float], float]:
    first: list[float] = []
    deep: list[float] = []
    cpu: list[float] = []
    own_barrier = barrier is None  # else shared with other processes, and their caller starts the clock
    if barrier is None:
        barrier = threading.Barrier(threads + 1)
    workers = [threading.Thread(target=read_worker, args=(app, viewers, total // threads, limit, seed + i, first,
                                                          deep, cpu, barrier)) for i in range(threads)]
    for w in workers:
        w.start()
    if own_barrier:
        barrier.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    return first, deep, cpu, time.perf_counter() - started


def _read_process(viewers: list[int], threads: int, total: int, limit: int, seed: int, barrier: Any,
                  results: Any) -> None:
    """One web worker process: its own app, pools and GIL (started with spawn, so nothing is inherited)."""
    import traceback

    try:
        from webapp import create_app

        results.put(run_reads(create_app(), viewers, threads, total, limit, barrier, seed))
    except BaseException:
        barrier.abort()  # nobody waits for this process's threads
        results.put(traceback.format_exc())


def run_read_processes(viewers: list[int], procs: int, threads: int, total: int,
                       limit: int) -> tuple[list[float], list[float], list[float], float]:
    """``procs`` processes × ``threads`` threads, started together; the environment (database, Redis) is
    this process's."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(procs * threads + 1)
    results = ctx.Queue()
    children = [ctx.Process(target=_read_process, args=(viewers, threads, total // procs, limit, 1000 * k,
                                                        barrier, results)) for k in range(procs)]
    for child in children:
        child.start()
    # Every thread of every process has its app and session ready; broken: a child failed (see the queue).
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=300)
    started = time.perf_counter()
    first: list[float] = []
    deep: list[float] = []
    cpu: list[float] = []
    for _ in children:
        got = results.get(timeout=600)
        if isinstance(got, str):
            for child in children:
                child.terminate()
            raise RuntimeError(f"a reader process failed:\n{got}")
        f, d, c, _wall = got
        first += f
        deep += d
        cpu += c
    wall = time.perf_counter() - started
    for child in children:
        child.join()
    return first, deep, cpu, wall


def profile(app: Any, upload_id: int, viewer_id: int, limit: int) -> None:
    import cProfile
    import pstats

    from domain.feed import reading as service
    from models import User, db
    from tasks import stages

    for label, call in (("pipeline.feed stage, 10,000 followers", lambda: stages.feed.run(upload_id)),
                        ("feed page", lambda: service.feed_page(db.session.get(User, viewer_id), None, limit))):
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(5):
            call()
            db.session.remove()
        prof.disable()
        say(f"-- profile: {label} (5 runs) --")
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(25)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=8, help="threads of one process in the GIL-bound run")
    parser.add_argument("--procs", type=int, default=os.cpu_count() or 2,
                        help="processes in the multi-process runs (default: one per core)")
    parser.add_argument("--concurrency", default="1,2,4,8",
                        help="requests in flight in the multi-process runs (spread over --procs processes)")
    parser.add_argument("--reads", type=int, default=4000, help="feed pages read in the concurrent run")
    parser.add_argument("--limit", type=int, default=30, help="page size (the API's default)")
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument("--seed-entries", type=int, default=100,
                        help="entries already in each of the 10,000 followers' feeds")
    parser.add_argument("--full-fanout-1m", action="store_true",
                        help="also fan one upload out to 1,000,000 built feeds (no hybrid)")
    parser.add_argument("--fans", type=int, default=FANS, help="followers of the huge account")
    parser.add_argument("--profile", action="store_true", help="print where a stage run and a page read spend time")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-feed-"))
    stack = BenchStack(workdir=workdir, db_name="strava_bench_feed", redis_db=args.redis_db, keep_db=args.keep_db)
    rng = random.Random(7)
    own_redis = None
    try:
        if not os.environ.get("REDIS_URL"):
            # A Redis of our own: a shared server busy with someone else's work would time our reads.
            from devstack.embedded import EmbeddedRedis

            own_redis = EmbeddedRedis(workdir / "redis", persist=False)
            os.environ["REDIS_URL"] = own_redis.start()
            say(f"private Redis at {os.environ['REDIS_URL']}")
        stack.open()
        os.environ.update(stack.env(DATABASE_POOL_SIZE=str(max(10, args.threads + 2))))
        from models import db
        from models.redis_store import redis_store
        from webapp import create_app

        app = create_app()
        with app.app_context():
            assert db.engine is not None
            raw = db.engine.raw_connection()
            try:
                followees = load(raw, rng, args.fans)
            finally:
                raw.close()
            redis = redis_store.client
            star_10k, star_1m, _ = ids(args.fans)
            threshold = int(app.config.get("FEED_FANOUT_THRESHOLD", 10_000))
            say(f"FEED_FANOUT_THRESHOLD = {threshold:,}")

            # 1. fan-out to 10,000 built feeds
            t = time.perf_counter()
            mark_built(redis, range(1, TEN_K + 1), args.seed_entries)
            say(f"marked 10,000 feeds built ({args.seed_entries} entries each) in {time.perf_counter() - t:.1f} s")
            uploads = new_upload_and_activity(star_10k, FANOUT_RUNS)
            cpu_10k: list[tuple[float, float, float]] = []
            stage_10k, written = time_stage(uploads, cpu_10k)
            from domain.feed.fanout import follower_batches

            t = time.perf_counter()
            follower_batches(star_10k)
            query_10k = time.perf_counter() - t
            assert all(w == TEN_K for w in written), written  # every follower (the author's feed is not built)

            # 2. the hybrid: 1,000,000 followers
            uploads_1m = new_upload_and_activity(star_1m, FANOUT_RUNS)
            cpu_1m: list[tuple[float, float, float]] = []
            stage_1m, written_1m = time_stage(uploads_1m, cpu_1m)
            assert all(w == 0 for w in written_1m), written_1m
            from domain.feed import reading as service
            from models import User

            fan = db.session.get(User, args.fans - 1)
            assert fan is not None
            t = time.perf_counter()
            page = service.feed_page(fan, None, args.limit)
            first_read = time.perf_counter() - t
            assert page["items"] and page["items"][0]["athlete"]["id"] == star_1m
            warm = []
            for _ in range(200):
                t = time.perf_counter()
                service.feed_page(fan, None, args.limit)
                warm.append(time.perf_counter() - t)
            db.session.remove()

            full_1m: float | None = None
            if args.full_fanout_1m:
                from domain.feed.fanout import fan_out_activity
                t = time.perf_counter()
                mark_built(redis, range(1, args.fans + 1), 0)
                say(f"marked {args.fans:,} feeds built in {time.perf_counter() - t:.1f} s")
                app.config["FEED_FANOUT_THRESHOLD"] = 10 * args.fans
                from models import Upload

                activity_id = db.session.get(Upload, uploads_1m[0]).activity_id
                t = time.perf_counter()
                n = fan_out_activity(activity_id)
                full_1m = time.perf_counter() - t
                assert n == args.fans, n
                app.config["FEED_FANOUT_THRESHOLD"] = threshold
                db.session.remove()

            # 3. reads of 1,000-entry feeds
            from domain.feed.fanout import rebuild_user_feed

            viewers = sorted(followees)
            t = time.perf_counter()
            sizes = [rebuild_user_feed(v) for v in viewers]
            say(f"built {len(viewers)} viewer feeds from PostgreSQL in {time.perf_counter() - t:.1f} s "
                f"({min(sizes)}–{max(sizes)} entries)")
            db.session.remove()
            if args.profile:
                profile(app, uploads[0], viewers[0], args.limit)

        single_first, single_deep, single_cpu, _ = run_reads(app, viewers, 1, min(args.reads, 1000), args.limit)
        many_first, many_deep, _, wall = run_reads(app, viewers, args.threads, args.reads, args.limit)
        multi: list[tuple[int, int, list[float], float]] = []
        for n in (int(c) for c in args.concurrency.split(",") if c.strip()):
            procs = min(args.procs, n)
            f, d, _c, w = run_read_processes(viewers, procs, max(1, n // procs), args.reads, args.limit)
            multi.append((procs, max(1, n // procs), f + d, w))

        say("")
        say(f"== feed benchmark ({os.cpu_count()} cores; page size {args.limit}) ==")
        def cpu_ms(samples: list[tuple[float, float, float]]) -> str:
            return (f"client CPU {statistics.median(c for c, _, _ in samples) * 1e3:.1f} ms, Redis CPU "
                    f"{statistics.median(r for _, r, _ in samples) * 1e3:.1f} ms (Redis reports 10 ms steps), "
                    f"Redis time in the Lua calls {statistics.median(u for _, _, u in samples) * 1e3:.1f} ms "
                    f"(medians)")

        try:
            load_note = f"load average {os.getloadavg()[0]:.1f}"
        except OSError:
            load_note = "load average unknown"
        say(f"   ({load_note}: wall times include waiting for a core)")
        say(f"1. pipeline.feed stage, 10,000 followers  : {ms(stage_10k)}   (target ≤ 100 ms)")
        say(f"   {cpu_ms(cpu_10k)}; the follower query alone {query_10k * 1e3:.1f} ms")
        say(f"2. pipeline.feed stage, {args.fans:,} followers (hybrid): {ms(stage_1m)}")
        say(f"   {cpu_ms(cpu_1m)}")
        say(f"   first feed read of one of its followers (rebuild + author set from PostgreSQL): "
            f"{first_read * 1e3:.1f} ms; warm reads {ms(warm)}")
        if full_1m is not None:
            say(f"   the same upload fanned out to 1,000,000 built feeds (no hybrid): {full_1m:.2f} s")
        say(f"3. feed page, 1 thread   first pages {ms(single_first)}")
        say(f"                         deeper pages {ms(single_deep)}")
        all_many = many_first + many_deep
        say(f"   feed page, {args.threads} threads  first pages {ms(many_first)}")
        say(f"                         deeper pages {ms(many_deep)}")
        say(f"                         all: {ms(all_many)}; {len(all_many) / wall:.0f} pages/s   "
            f"(target p99 ≤ 10 ms)")
        say(f"   single-thread page: median {statistics.median(single_first + single_deep) * 1e3:.2f} ms wall, "
            f"{statistics.median(single_cpu) * 1e3:.2f} ms of this process's CPU")
        say("   closed-loop load, N requests in flight as processes × threads (target p99 ≤ 10 ms):")
        for procs, threads, values, wall in multi:
            say(f"     N={procs * threads:<2} ({procs} proc × {threads} thr): {ms(values)}; "
                f"{len(values) / wall:.0f} pages/s")
        return 0
    finally:
        stack.close()
        if own_redis is not None:
            own_redis.stop()
            os.environ.pop("REDIS_URL", None)
        remove_tree(workdir)


if __name__ == "__main__":
    sys.exit(main())
