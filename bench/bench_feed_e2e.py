"""Benchmark: upload → visible in a follower's feed, end to end through the real API and a real worker, at idle.

An author and a follower (dev tokens, emulator mode); the author uploads distinct 1-hour GPX files one at a
time and the follower polls `GET /api/v1/feed` until the new activity is the newest item. A stranger's feed is
checked too: it must never show the author's followers-only uploads. Prints p50/p95 (target p95 ≤ 2 s).

    .venv/bin/python bench/bench_feed_e2e.py [--uploads 30]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import requests  # noqa: E402
from bench_ingest_stack import BenchStack, remove_tree  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uploads", type=int, default=30)
    ap.add_argument("--points", type=int, default=3600)
    args = ap.parse_args()
    os.chdir(ROOT)
    from tests.support.synthetic import synthetic_track, to_gpx
    from webapp.auth import dev_token

    workdir = Path(tempfile.mkdtemp(prefix="strava-bench-feed-"))
    stack = BenchStack(workdir, db_name="strava_bench_feed_e2e")
    try:
        stack.open()
        stack.start_web(workers=2, threads=16)
        stack.start_worker(concurrency=2)
        stack.wait_ready(60)
        base = stack.base_url
        project = "demo-strava-plus-one"

        def session(email: str) -> requests.Session:
            s = requests.Session()
            s.headers["Authorization"] = f"Bearer {dev_token(email, project)}"
            return s

        author, follower, stranger = session("author@example.com"), session("fan@example.com"), session("x@example.com")
        author_id = author.get(f"{base}/api/v1/me").json()["id"]
        for s in (follower, stranger):
            s.get(f"{base}/api/v1/me")
        follower.post(f"{base}/api/v1/users/{author_id}/follow").raise_for_status()
        follower.get(f"{base}/api/v1/feed")  # the follower opens the app: their feed is built
        stranger.get(f"{base}/api/v1/feed")
        files = [to_gpx(synthetic_track(seed=5000 + i, n_points=args.points, start_time=1_790_000_000.0 + i * 7200))
                 for i in range(args.uploads)]
        seen_s: list[float] = []
        for i, data in enumerate(files):
            t0 = time.perf_counter()
            resp = author.post(f"{base}/api/v1/uploads", files={"file": (f"r{i}.gpx", io.BytesIO(data))},
                               data={"visibility": "followers"})
            resp.raise_for_status()
            upload_id = resp.json()["id"]
            activity_id = None
            deadline = t0 + 30
            while time.perf_counter() < deadline:
                if activity_id is None:
                    activity_id = author.get(f"{base}/api/v1/uploads/{upload_id}").json().get("activity_id")
                if activity_id is not None:
                    items = follower.get(f"{base}/api/v1/feed?limit=1").json()["items"]
                    if items and items[0]["id"] == activity_id:
                        seen_s.append(time.perf_counter() - t0)
                        break
                time.sleep(0.01)
            else:
                print(f"upload {upload_id} not in the follower's feed after 30 s")
                return 1
        leaked = [it for it in stranger.get(f"{base}/api/v1/feed?limit=200").json()["items"]
                  if it["athlete"]["id"] == author_id]
        print(f"$ {' '.join(sys.argv)}   (nproc={os.cpu_count()}, load {os.getloadavg()[0]:.1f})")
        print(f"upload → visible in a follower's feed, {len(seen_s)} sequential {args.points}-point GPX uploads:")
        print(f"  p50 {pct(seen_s, 50) * 1e3:.0f} ms, p95 {pct(seen_s, 95) * 1e3:.0f} ms, "
              f"max {max(seen_s) * 1e3:.0f} ms (target p95 <= 2 s)")
        print(f"  followers-only items in a stranger's feed: {len(leaked)} (must be 0)")
        return 0 if not leaked else 1
    finally:
        stack.close()
        remove_tree(workdir)


if __name__ == "__main__":
    sys.exit(main())
