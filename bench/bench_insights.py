"""Insights figures (issue 14), printed:

1. a weekly-summary run for N athletes (default 100,000) spread over every IANA time zone, each with a year of
   activities at a realistic density (default 3 a week: 15.6 M activities) and their loads and series: the
   ticks' leasing and every chunk run one after another in this process (as one worker process would) —
   total time and athletes/s;
2. ``GET /api/v1/me/fitness`` for 5 years of daily series (the service and the response schema): p50/p95 ms;
3. the analytics work one uploaded activity adds (the change mark in the ingest transaction and the refresh
   job on a 1-hour heart-rate activity): CPU ms in this process, and wall ms.

    .venv/bin/python bench/bench_insights.py [--athletes 100000] [--per-week 3] [--weeks 52] [--keep-db]

Uses its own database (``strava_bench_insights``) on the PostgreSQL server the stack would use, and a private
Redis index.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import available_timezones

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ingest_stack import BenchStack, remove_tree, say  # noqa: E402

NOW = datetime(2026, 12, 7, 23, 59, tzinfo=UTC)  # every zone's Monday 08:00 of that week has come by NOW + 1 day


def load(athletes: int, per_week: int, weeks: int) -> None:
    zones = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
    from models import db

    assert db.engine is not None
    conn = db.engine.raw_connection()
    cur = conn.cursor()
    t = time.perf_counter()
    cur.execute("INSERT INTO users (firebase_uid, display_name) SELECT 'bench-' || g, 'Athlete ' || g "
                "FROM generate_series(1, %s) g", (athletes,))
    cur.execute("INSERT INTO user_preferences (user_id, notifications, timezone) SELECT id, '{}'::jsonb, "
                "(%s::text[])[1 + (id %% %s)] FROM users u "
                "WHERE NOT EXISTS (SELECT 1 FROM user_preferences p WHERE p.user_id = u.id)", (zones, len(zones)))
    conn.commit()
    say(f"{athletes:,} athletes over {len(zones)} time zones in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    total = per_week * weeks
    # Activities spread over the year before NOW, 45-90 minutes each, three sports.
    cur.execute("""
        INSERT INTO activities (user_id, name, sport_type, visibility, manual, start_time, distance_m,
                                elapsed_time_s, moving_time_s, details, has_gps, point_count, elevation_gain_m)
        SELECT u.id, 'Session', (ARRAY['running', 'cycling', 'swimming'])[1 + ((u.id + k) %% 3)], 'everyone', true,
               %s::timestamptz - (k * (%s::float / %s) * interval '1 day') - ((u.id %% 13) * interval '1 hour'),
               8000 + ((u.id * 7 + k * 13) %% 20000), 3600, 3300, '{}'::jsonb, false, 0, (k %% 200)
        FROM users u CROSS JOIN generate_series(0, %s - 1) k
        WHERE u.firebase_uid ~ '^bench-[0-9]+$'""", (NOW, weeks * 7, total, total))
    conn.commit()
    say(f"{athletes * total:,} activities in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    cur.execute("""
        INSERT INTO activity_loads (activity_id, user_id, day, load, method)
        SELECT a.id, a.user_id, (a.start_time AT TIME ZONE 'UTC')::date, 40 + (a.id % 60), 'estimated'
        FROM activities a WHERE NOT EXISTS (SELECT 1 FROM activity_loads l WHERE l.activity_id = a.id)""")
    # The last four weeks of each athlete's series (what the summaries read of it).
    cur.execute("""
        INSERT INTO training_days (user_id, day, load, fitness, fatigue, form)
        SELECT u.id, d::date, 50, 40 + (u.id %% 20), 45, -5 FROM users u
        CROSS JOIN generate_series(%s::date - 28, %s::date, interval '1 day') d
        WHERE u.firebase_uid ~ '^bench-[0-9]+$'""", (NOW.date(), NOW.date()))
    conn.commit()
    cur.execute("ANALYZE")
    conn.commit()
    say(f"loads and series in {time.perf_counter() - t:.1f} s")
    conn.close()


def weekly(athletes: int) -> None:
    from domain.insights import summaries

    t = time.perf_counter()
    scheduled = 0
    while True:
        n = summaries.schedule_missing(NOW - timedelta(days=7), batch=5000)
        scheduled += n
        if n == 0:
            break
    say(f"scheduled {scheduled:,} athletes' first slots in {time.perf_counter() - t:.1f} s")
    due_at = NOW + timedelta(days=1)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    leased = made = 0
    lease_s = 0.0
    while True:
        t = time.perf_counter()
        due = summaries.lease_due(due_at, limit=20_000)
        lease_s += time.perf_counter() - t
        if not due:
            break
        leased += len(due)
        for i in range(0, len(due), summaries.CHUNK):
            made += summaries.run_chunk(due[i:i + summaries.CHUNK], due_at)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    print(f"weekly summaries: {made:,} stored for {leased:,} athletes in {wall:.1f} s "
          f"= {leased / wall:,.0f} athletes/s in one process (this process's CPU {cpu:.1f} s; "
          f"leasing {lease_s:.2f} s in {summaries.CHUNK}-athlete chunks)", flush=True)


def fitness_p95() -> None:
    from flask import current_app
    from sqlalchemy import insert

    from domain.algorithms import training
    from domain.insights import service
    from models import TrainingDay, User, db

    user = User(firebase_uid="bench-fitness", display_name="Five Years")
    db.session.add(user)
    db.session.flush()
    from models.user import Preferences

    db.session.add(Preferences(user_id=user.id, notifications={}))
    start = date(2021, 12, 1)
    rng = random.Random(3)
    days = training.series(start, [rng.choice((0, 0, 40, 60, 90, 120)) for _ in range(5 * 365 + 2)])
    db.session.execute(insert(TrainingDay), [{"user_id": user.id, **d.__dict__} for d in days])
    db.session.commit()
    end = days[-1].day
    times = []
    for _ in range(200):
        t = time.perf_counter()
        current_app.json.dumps(service.fitness(user, end - timedelta(days=5 * 365), end))
        db.session.rollback()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(f"GET /me/fitness, 5 years ({5 * 365 + 1} days): p50 {statistics.median(times):.1f} ms, "
          f"p95 {times[int(0.95 * len(times))]:.1f} ms (service + JSON encoding, 200 requests)", flush=True)


def per_activity_cost() -> None:
    from domain.algorithms.streams import encode_track
    from domain.insights import loads, service
    from models import Activity, ActivityStream, User, db
    from models.user import Preferences
    from tests.support.synthetic import synthetic_track

    user = User(firebase_uid="bench-cost", display_name="Cost", sex="M", birth_year=1985)
    db.session.add(user)
    db.session.flush()
    db.session.add(Preferences(user_id=user.id, notifications={}))
    db.session.commit()
    mark_cpu, refresh_cpu, walls = [], [], []
    for i in range(40):
        track = synthetic_track(seed=i, n_points=3600, start_time=(NOW - timedelta(days=40 - i)).timestamp())
        activity = Activity(user_id=user.id, name="Run", sport_type="running", visibility="everyone",
                            start_time=datetime.fromtimestamp(float(track.time[0]), UTC), distance_m=10000.0,
                            elapsed_time_s=3600.0, moving_time_s=3500.0, avg_hr=150.0, details={}, has_gps=True,
                            point_count=3600)
        db.session.add(activity)
        db.session.flush()
        db.session.add(ActivityStream(activity_id=activity.id, point_count=3600, data=encode_track(track)))
        c = time.process_time()
        loads.activity_changed(user.id, loads.training.local_date(activity.start_time, "UTC"), activity.id)
        mark_cpu.append(time.process_time() - c)
        db.session.commit()
        w, c = time.perf_counter(), time.process_time()
        service.refresh(user.id, [activity.id])
        refresh_cpu.append(time.process_time() - c)
        walls.append(time.perf_counter() - w)
    m, r, w = (statistics.median(x) * 1000 for x in (mark_cpu, refresh_cpu, walls))
    print(f"analytics per uploaded activity (1 h, 3,600 points with heart rate): mark {m:.2f} ms CPU + refresh job "
          f"{r:.2f} ms CPU (wall {w:.1f} ms incl. PostgreSQL) = {m + r:.1f} ms CPU in the worker, median of 40; "
          f"plus one broker message", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--athletes", type=int, default=100_000)
    parser.add_argument("--per-week", type=int, default=3)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-insights-"))
    stack = BenchStack(workdir=workdir, db_name="strava_bench_insights", redis_db=args.redis_db,
                       keep_db=args.keep_db)
    try:
        stack.open()
        stack.migrate()
        import os

        os.environ.update(stack.env())
        from webapp import create_app

        app = create_app()
        with app.app_context():
            per_activity_cost()
            fitness_p95()
            load(args.athletes, args.per_week, args.weeks)
            weekly(args.athletes)
    finally:
        stack.close()
        remove_tree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
