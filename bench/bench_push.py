"""Push deliveries per second to the local FCM stand-in, through the real task code and firebase-admin.

Sets up a throwaway database (``strava_bench_push``, built by the migrations) and a private Redis like the
other benchmarks, loads USERS athletes × DEVICES devices and MESSAGES undelivered chat notifications each
(one push per message per device, nothing collapses), starts the FCM stand-in (tests/support/fcm.py) as a
separate process so its HTTP work is not billed to ours, and then:

1. in-process: ``push.deliver_user`` for every user from ``--threads`` threads (plan + send_each + record),
   printing deliveries/s and the CPU time of this process per delivery;
2. ``--worker``: the same load enqueued to a real prefork Celery worker (``--concurrency``), timed from the
   first enqueue to the last delivery row marked sent.

Usage (from the repository root)::

    .venv/bin/python bench/bench_push.py
    .venv/bin/python bench/bench_push.py --users 500 --devices 2 --messages 4 --worker
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from bench_ingest_stack import BenchStack, remove_tree, say  # noqa: E402


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load(stack: BenchStack, users: int, devices: int) -> None:
    with stack._engine.begin() as conn:  # type: ignore[union-attr]
        from sqlalchemy import text

        conn.execute(text("INSERT INTO users (firebase_uid, display_name) "
                          "SELECT 'bench-' || g, 'Athlete ' || g FROM generate_series(1, :n) g"), {"n": users})
        conn.execute(text("INSERT INTO user_preferences (user_id, notifications) SELECT id, '{}'::jsonb FROM users"))
        conn.execute(text(
            "INSERT INTO devices (user_id, token, platform) SELECT u.id, 'bench-token-' || u.id || '-' || d, "
            "(ARRAY['ios', 'android', 'web'])[1 + d % 3] FROM users u, generate_series(1, :d) d"), {"d": devices})


def add_messages(stack: BenchStack, users: int, messages: int, round_no: int) -> None:
    from sqlalchemy import text

    with stack._engine.begin() as conn:  # type: ignore[union-attr]
        conn.execute(text(
            "INSERT INTO notifications (user_id, kind, actor_id, payload, dedupe_key) "
            "SELECT u.id, 'message', 1 + u.id % :n, jsonb_build_object('conversation_id', u.id, "
            "'message_id', :r * 1000 + m, 'preview', 'See you at the track at 7?'), "
            "'bench:' || :r || ':' || m FROM users u, generate_series(1, :k) m"),
            {"n": users, "k": messages, "r": round_no})


def sent_count(stack: BenchStack) -> int:
    return int(stack.sql("SELECT count(*) FROM push_deliveries WHERE status = 'sent'")[0][0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--messages", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--worker", action="store_true", help="also run the load through a real Celery worker")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--redis-db", type=int, default=13)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-push-"))
    stack = BenchStack(workdir=workdir, db_name="strava_bench_push", redis_db=args.redis_db)
    fcm = subprocess.Popen([sys.executable, "-m", "tests.support.fcm"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert fcm.stdout is not None
        endpoint = fcm.stdout.readline().strip()
        say(f"FCM stand-in at {endpoint} (pid {fcm.pid})")
        stack.open()
        load(stack, args.users, args.devices)
        expected = args.users * args.devices * args.messages
        os.environ.update(stack.env(FCM_ENDPOINT=endpoint, DATABASE_POOL_SIZE=str(args.threads + 2)))

        from domain.notifications import fcm
        from tasks import push
        from webapp import create_app

        app = create_app()
        app.config["PUSH_COLLAPSE_WINDOW_S"] = 3600.0  # nothing is scheduled on commit here anyway
        add_messages(stack, args.users, args.messages, 1)
        with app.app_context():
            fcm.fcm_app(app.config)  # build the firebase-admin app outside the timing
        wall, cpu = time.perf_counter(), cpu_s()
        with ThreadPoolExecutor(args.threads) as pool:
            outcomes = list(pool.map(push.deliver_user, range(1, args.users + 1)))
        wall, cpu = time.perf_counter() - wall, cpu_s() - cpu
        sent = sum(o["sent"] for o in outcomes)
        assert sent == expected == sent_count(stack), (sent, expected)
        say(f"in-process, {args.threads} threads: {args.users} users × {args.devices} devices × {args.messages} "
            f"messages = {sent} pushes in {wall:.2f} s")
        print(f"push deliveries/s (in-process, {args.threads} threads): {sent / wall:,.0f}   "
              f"CPU {1000 * cpu / sent:.2f} ms per delivery (this process; wall {1000 * wall / sent:.2f} ms)")

        if args.worker:
            add_messages(stack, args.users, args.messages, 2)
            worker = stack.start_worker(args.concurrency, FCM_ENDPOINT=endpoint)
            with app.app_context():
                push.deliver_user.apply_async(args=[1])  # warm-up: proves the worker is consuming
            deadline = time.monotonic() + 120
            while sent_count(stack) < expected + args.devices * args.messages:
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the worker did not deliver the warm-up user")
                time.sleep(0.05)
            wall = time.perf_counter()
            with app.app_context():
                for user_id in range(2, args.users + 1):
                    push.deliver_user.apply_async(args=[user_id])
            target = 2 * expected
            while sent_count(stack) < target:
                if time.monotonic() > deadline + 600:
                    raise RuntimeError(f"only {sent_count(stack)} of {target} sent")
                time.sleep(0.02)
            wall = time.perf_counter() - wall
            n = expected - args.devices * args.messages
            print(f"push deliveries/s (Celery prefork worker, concurrency {args.concurrency}): {n / wall:,.0f}   "
                  f"({n} pushes for {args.users - 1} users in {wall:.2f} s, enqueue included)")
        return 0
    finally:
        fcm.terminate()
        try:
            fcm.wait(10)
        except subprocess.TimeoutExpired:
            fcm.kill()
        stack.close()
        remove_tree(workdir)


if __name__ == "__main__":
    sys.exit(main())
