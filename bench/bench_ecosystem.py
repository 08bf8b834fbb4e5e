"""Figures of the ecosystem issue, against a running `make run` stack:

* Strava v3 upload → ready: uploads offered at a fixed rate (default 10/s) through POST /api/v3/uploads, each
  timed until its activity is ready; p50/p95/max.
* Share page: server time (loopback round trip) of GET /a/<token> and of its preview image, p50/p95, and the bytes
  over the wire (headers + body).
* Whole-account export of an athlete with 2,000 activities (1 h at 1 Hz each, with its original GPX): wall time
  and peak RSS of the process that builds it (a fresh child process, as a worker would run it).

    .venv/bin/python bench/bench_ecosystem.py [--base-url http://127.0.0.1:8000] [--rate 10] [--seconds 20]
        [--activities 2000]

The athletes are new on every run (unique e-mails). The export's 2,000 activities are written straight into the
stack's database and object storage (the pipeline would take an hour to make them); the export itself runs the
real task code. The stack's settings come from .data/stack.env, as for any development command.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from smoke_support import Api  # noqa: E402

from tests.support.synthetic import synthetic_track, to_gpx  # noqa: E402


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def say(line: str) -> None:
    print(line, flush=True)


# -- v3 upload → ready ------------------------------------------------------------------------------------------

def bench_uploads(api: Api, rate: float, seconds: float, athletes: int = 10) -> None:
    total = int(rate * seconds)
    tokens = [api.token(f"v3-{i}") for i in range(athletes)]
    for t in tokens:
        api.call("GET", "/me", t)
    # 30 min at 1 Hz each, every file different (its own start time): no duplicate shortcut.
    base = synthetic_track(seed=1, n_points=1800)
    files = []
    for _ in range(total):
        base.time = base.time + 3600.0
        base.name = None
        files.append(to_gpx(base))
    say(f"v3 uploads: {total} files of {np.mean([len(f) for f in files]) / 1024:.0f} KB (30 min at 1 Hz), "
        f"offered at {rate:g}/s over {seconds:g} s, {athletes} athletes")
    submitted: dict[int, tuple[float, str]] = {}
    lock = threading.Lock()
    v3 = api.base.replace("/api/v1", "/api/v3")

    def send(i: int) -> None:
        token = tokens[i % athletes]
        t0 = time.monotonic()
        r = requests.post(f"{v3}/uploads", headers={"Authorization": f"Bearer {token}"},
                          files={"file": (f"{i}.gpx", files[i])}, data={"data_type": "gpx"}, timeout=60)
        if r.status_code != 201:
            say(f"  upload {i}: {r.status_code} {r.text[:200]}")
            return
        with lock:
            submitted[r.json()["id"]] = (t0, token)

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        for i in range(total):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, i)
    offered_for = time.monotonic() - start
    latencies: list[float] = []
    failed = 0
    pending = dict(submitted)
    deadline = time.monotonic() + 600
    session = requests.Session()
    while pending and time.monotonic() < deadline:
        for upload_id, (t0, token) in list(pending.items()):
            # Status read through /api/v1 (the same row): polling through v3 would spend the athlete's v3 budget.
            body = session.get(f"{api.base}/uploads/{upload_id}", headers={"Authorization": f"Bearer {token}"},
                               timeout=30).json()
            if body["status"] == "ready":
                latencies.append(time.monotonic() - t0)
                del pending[upload_id]
            elif body["status"] in ("failed", "duplicate"):
                failed += 1
                del pending[upload_id]
        time.sleep(0.05)
    say(f"  accepted {len(submitted)}/{total} in {offered_for:.1f} s; ready {len(latencies)}, failed {failed}, "
        f"unfinished {len(pending)}")
    say(f"  upload → ready: p50 {pct(latencies, 50):.2f} s, p95 {pct(latencies, 95):.2f} s, "
        f"max {max(latencies, default=float('nan')):.2f} s")


# -- share page ---------------------------------------------------------------------------------------------------

def bench_share(api: Api, requests_n: int = 200) -> None:
    token = api.token("share")
    track = synthetic_track(seed=2, n_points=3600, noise_m=2.0)
    home = (float(track.lat[0]), float(track.lon[0]))
    api.call("POST", "/me/privacy-zones", token, json={"lat": home[0], "lng": home[1], "radius_m": 300})
    up = api.call("POST", "/uploads", token, files={"file": ("run.gpx", to_gpx(track))}).json()
    deadline = time.monotonic() + 120
    while True:
        body = api.call("GET", f"/uploads/{up['id']}", token).json()
        if (body["status"] != "queued" and body["status"] != "processing") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    link = api.call("POST", f"/activities/{body['activity_id']}/share", token).json()["url"]
    session = requests.Session()
    for url, label in ((link, "page"), (link + "/preview.png", "preview image")):
        times, sizes = [], []
        for _ in range(requests_n if label == "page" else requests_n // 4):
            t0 = time.perf_counter()
            r = session.get(url, timeout=30)
            times.append((time.perf_counter() - t0) * 1000)
            head = sum(len(k) + len(v) + 4 for k, v in r.headers.items()) + len("HTTP/1.1 200 OK\r\n\r\n")
            sizes.append(head + len(r.content))
            assert r.status_code == 200, r.status_code
        say(f"share {label}: {len(times)} sequential GETs of a 1 h run (3,600 points, one privacy zone): "
            f"p50 {pct(times, 50):.1f} ms, p95 {pct(times, 95):.1f} ms; {statistics.mean(sizes) / 1024:.1f} KB "
            f"over the wire (uncompressed)")


# -- account export -----------------------------------------------------------------------------------------------

def seed_athlete(activities: int) -> tuple[int, int]:
    """An athlete with ``activities`` activities (stream + original GPX each), written straight to the stack's
    database and storage; returns (user id, export id)."""
    import hashlib

    from sqlalchemy import insert

    from domain.algorithms.streams import encode_track
    from models import AccountExport, Activity, ActivityStream, Preferences, Upload, User, db
    from models.storage import storage
    from webapp import create_app

    app = create_app()
    with app.app_context():
        uid = db.session.scalar(insert(User).values(firebase_uid=f"bench-export-{secrets.token_hex(6)}",
                                                    display_name="Export bench").returning(User.id))
        db.session.execute(insert(Preferences).values(user_id=uid))
        track = synthetic_track(seed=3, n_points=3600)
        track.name = None
        blob = encode_track(track)
        gpx = to_gpx(track)
        sha = hashlib.sha256(gpx).hexdigest()
        key = f"uploads/{uid}/{sha}.gpx"
        storage.put(key, gpx)
        start = datetime(2020, 1, 1, 7, tzinfo=UTC)
        for lo in range(0, activities, 500):
            n = min(500, activities - lo)
            ids = list(db.session.scalars(insert(Activity).returning(Activity.id), [{
                "user_id": uid, "name": f"Run {lo + k}", "sport_type": "running", "visibility": "everyone",
                "start_time": start.replace(year=2020 + (lo + k) // 365 % 6), "distance_m": 10_000.0,
                "elapsed_time_s": 3600.0, "moving_time_s": 3590.0, "details": {}, "has_gps": True,
                "point_count": 3600} for k in range(n)]))
            db.session.execute(insert(ActivityStream), [{"activity_id": i, "point_count": 3600, "data": blob}
                                                        for i in ids])
            db.session.execute(insert(Upload), [{"user_id": uid, "storage_key": key, "size_bytes": len(gpx),
                                                 "sha256": sha, "data_type": "gpx", "status": "ready",
                                                 "activity_id": i} for i in ids])
            db.session.commit()
        export_id = db.session.scalar(insert(AccountExport).values(user_id=uid, status="queued")
                                      .returning(AccountExport.id))
        db.session.commit()
    return uid, export_id


def export_child(export_id: int) -> None:
    """Build one export in this (fresh) process and print its wall time and peak RSS."""
    from domain.exports.account import build_export
    from models import AccountExport, db
    from webapp import create_app

    app = create_app()
    with app.app_context():
        t0 = time.perf_counter()
        outcome = build_export(export_id)
        elapsed = time.perf_counter() - t0
        size = db.session.get(AccountExport, export_id).size_bytes  # type: ignore[union-attr]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{outcome} {elapsed:.2f} {rss_mb:.0f} {size}", flush=True)


def bench_export(activities: int) -> None:
    t0 = time.perf_counter()
    _uid, export_id = seed_athlete(activities)
    say(f"account export: {activities:,} activities (1 h at 1 Hz, original GPX each) seeded in "
        f"{time.perf_counter() - t0:.1f} s")
    out = subprocess.run([sys.executable, __file__, "--export-child", str(export_id)], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    outcome, elapsed, rss, size = out.stdout.split()[-4:]
    say(f"  export {outcome}: {float(elapsed):.1f} s, peak RSS {rss} MB (the building process), zip "
        f"{int(size) / 1024 / 1024:.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}")
    parser.add_argument("--project", default=os.environ.get("FIREBASE_PROJECT_ID", "demo-strava-plus-one"))
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--activities", type=int, default=2000)
    parser.add_argument("--skip", default="", help="comma-separated: uploads,share,export")
    parser.add_argument("--export-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child is not None:
        export_child(args.export_child)
        return 0
    requests.get(args.base_url.rstrip("/") + "/readyz", timeout=5).raise_for_status()
    api = Api(args.base_url, args.project, f"{int(time.time())}-{secrets.token_hex(3)}")
    skip = set(filter(None, args.skip.split(",")))
    say(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC, {os.cpu_count()} cores")
    if "share" not in skip:
        bench_share(api)
    if "uploads" not in skip:
        bench_uploads(api, args.rate, args.seconds)
    if "export" not in skip:
        bench_export(args.activities)
    return 0


if __name__ == "__main__":
    sys.exit(main())
