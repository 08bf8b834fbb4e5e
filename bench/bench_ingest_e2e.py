"""End-to-end ingest benchmark: the real HTTP API (gunicorn) and a real Celery worker, on this machine.

It starts everything itself (a throwaway database ``strava_bench`` built by the migrations, database 9 of a
redis-server of its own - ``--redis shared`` uses the one on 127.0.0.1:6379 instead -, a temporary object
directory, gunicorn gthread and a prefork Celery worker), measures, prints a table and stops everything
again, also on Ctrl-C or an error. Figures:

1. idle latency: sequential uploads of a 1-hour, 3,600-point GPX with heart rate, each a different file;
   upload → ``ready`` as the client sees it (POST, then GET /api/v1/uploads/{id} every ``--poll-ms``) and as
   the server recorded it (``updated_at - created_at`` of the upload row). Target p95 ≤ 1 s.
2. sustained throughput: ``--clients`` threads (one athlete each) upload ``--uploads`` files (or for
   ``--duration`` seconds); activities/s from the first 201 to the last ``ready``, and the CPU each process
   group used, to see what limits it. Target ≥ 40/s.
3. stored bytes per point (activity_streams: sum(length(data)) / sum(point_count)).

``--web-workers`` and ``--worker-concurrency`` take comma lists; every combination is measured in turn.
``--kill-test`` instead checks crash recovery: SIGKILL the worker mid-ingest of a large file, start a fresh
one, run the sweeper, and expect the upload ``ready`` with exactly one activity.

Usage (from the repository root)::

    .venv/bin/python bench/bench_ingest_e2e.py --quick
    .venv/bin/python bench/bench_ingest_e2e.py --web-workers 1,2 --worker-concurrency 2,3 --uploads 1000
    .venv/bin/python bench/bench_ingest_e2e.py --kill-test
"""

from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import os
import platform
import shlex
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest_stack import ROOT, BenchStack, CpuMeter, StackError, remove_tree, say

FINAL = ("ready", "failed", "duplicate")
PROJECT_ID = os.environ.get("FIREBASE_PROJECT_ID", "demo-strava-plus-one")
HTTP_TIMEOUT = (5.0, 60.0)
STALL_S = 90.0
LATENCY_TARGET_S = 1.0
THROUGHPUT_TARGET = 40.0
#: The service's own processes (the benchmark client and the rest of the machine are not part of it).
OWN_GROUPS = ("web (gunicorn)", "worker main", "worker pool", "postgres (bench db)", "postgres (server)", "redis")


# --- input files ------------------------------------------------------------------------------------------

def _write_gpx(job: tuple[str, int, int]) -> str:
    """Pool job: one synthetic activity (its own seed, so its own route and bytes) written as GPX."""
    from tests.support.synthetic import synthetic_track, to_gpx

    directory, seed, n_points = job
    path = Path(directory) / f"s{seed}-{n_points}.gpx"
    path.write_bytes(to_gpx(synthetic_track(seed=seed, n_points=n_points)))
    return str(path)


def generate_files(directory: Path, seeds: list[int], n_points: int) -> list[Path]:
    """GPX files for ``seeds``, made on every core before any server starts (it takes ~65 ms a file)."""
    directory.mkdir(parents=True, exist_ok=True)
    jobs = [(str(directory), seed, n_points) for seed in seeds]
    if len(jobs) < 4:
        return [Path(_write_gpx(job)) for job in jobs]
    with concurrent.futures.ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return [Path(p) for p in pool.map(_write_gpx, jobs, chunksize=8)]


def pure_ingest_cpu(files: list[Path]) -> tuple[float, float]:
    """Median CPU seconds of the pure stages (parse+normalize, summarize+encode) per file, in this process:
    the floor under the worker's CPU per activity; the rest is Celery, SQLAlchemy and storage."""
    from domain.algorithms.parsing import normalize, parse_bytes
    from domain.algorithms.summary import summarize

    parse_s, summary_s = [], []
    for path in files:
        data = path.read_bytes()
        t0 = time.process_time()
        track = normalize(parse_bytes(data, "gpx"))
        t1 = time.process_time()
        summarize(track, track.sport, [], hide_start_end_m=200.0, seed=1)
        parse_s.append(t1 - t0)
        summary_s.append(time.process_time() - t1)
    return float(np.median(parse_s)), float(np.median(summary_s))


# --- one athlete talking to the API ----------------------------------------------------------------------

class UploadError(RuntimeError):
    pass


class Athlete:
    """A signed-in client with its own keep-alive connection (requests.Session is per thread)."""

    def __init__(self, base_url: str, email: str) -> None:
        from webapp.auth import dev_token

        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {dev_token(email, PROJECT_ID, ttl_s=6 * 3600)}"
        self.user_id = 0

    def provision(self) -> int:
        """The first request creates the athlete, so the timed uploads don't pay for it."""
        resp = self.session.get(f"{self.base_url}/api/v1/me", timeout=HTTP_TIMEOUT)
        if resp.status_code != 200:
            raise UploadError(f"GET /me answered {resp.status_code}: {resp.text[:300]}")
        self.user_id = int(resp.json()["id"])
        return self.user_id

    def upload(self, data: bytes, filename: str) -> int:
        resp = self.session.post(f"{self.base_url}/api/v1/uploads", timeout=HTTP_TIMEOUT,
                                 files={"file": (filename, data, "application/gpx+xml")})
        if resp.status_code != 201:
            raise UploadError(f"POST /uploads answered {resp.status_code}: {resp.text[:300]}")
        body = resp.json()
        # The chain is enqueued before the row is read back for the answer, so a quick worker may already
        # have claimed (or even finished) it; only failed/duplicate mean the benchmark's input was wrong.
        if body.get("status") not in ("queued", "processing", "ready"):
            raise UploadError(f"upload {body.get('id')} is {body.get('status')} at once: {body}")
        return int(body["id"])

    def status(self, upload_id: int) -> dict[str, Any]:
        resp = self.session.get(f"{self.base_url}/api/v1/uploads/{upload_id}", timeout=HTTP_TIMEOUT)
        if resp.status_code != 200:
            raise UploadError(f"GET /uploads/{upload_id} answered {resp.status_code}: {resp.text[:300]}")
        body: dict[str, Any] = resp.json()
        return body

    def wait_for(self, upload_id: int, statuses: tuple[str, ...], poll_s: float, timeout_s: float,
                 stack: BenchStack | None = None) -> tuple[dict[str, Any], int]:
        """Poll until the upload reaches one of ``statuses`` (or a final one); returns (body, polls)."""
        deadline = time.monotonic() + timeout_s
        polls = 0
        while True:
            body = self.status(upload_id)
            polls += 1
            if body["status"] in statuses or body["status"] in FINAL:
                return body, polls
            if time.monotonic() > deadline:
                raise UploadError(f"upload {upload_id} still {body['status']} after {timeout_s:.0f}s: {body}")
            if stack is not None and polls % 50 == 0:
                stack.check_alive()
            time.sleep(poll_s)


def warm_up(stack: BenchStack, files: list[Path], tag: str, timeout_s: float = 120.0) -> None:
    """Uploads that must come back ready: proves the worker consumes, and pays the first-request costs."""
    athlete = Athlete(stack.base_url, f"warmup-{tag}@bench.example")
    athlete.provision()
    for path in files:
        upload_id = athlete.upload(path.read_bytes(), path.name)
        body, _ = athlete.wait_for(upload_id, FINAL, 0.05, timeout_s, stack)
        if body["status"] != "ready":
            raise StackError(f"warm-up upload {upload_id} ended {body['status']}: {body.get('error')}; "
                             f"see {stack.workdir / 'worker.log'}")


def wait_quiet(max_wait_s: float, busy_below: float) -> float:
    """Wait (bounded) until the machine's CPU is mostly idle, so other people's jobs skew less.

    Returns the busy fraction of the last one-second sample, printed with the figures.
    """
    import psutil

    deadline = time.monotonic() + max_wait_s
    busy = psutil.cpu_percent(interval=1.0) / 100
    quiet_in_a_row = 0
    while time.monotonic() < deadline:
        quiet_in_a_row = quiet_in_a_row + 1 if busy < busy_below else 0
        if quiet_in_a_row >= 2:
            break
        busy = psutil.cpu_percent(interval=1.0) / 100
    if quiet_in_a_row < 2:
        say(f"machine still {busy:.0%} busy after waiting {max_wait_s:.0f}s; measuring anyway")
    return busy


# --- 1. idle latency ---------------------------------------------------------------------------------------

@dataclass
class Latency:
    n: int
    client_s: list[float]
    accept_s: list[float]
    server_s: list[float]
    polls: int
    failures: list[str] = field(default_factory=list)
    busy_before: float = float("nan")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def measure_latency(stack: BenchStack, files: list[Path], tag: str, poll_s: float, timeout_s: float) -> Latency:
    athlete = Athlete(stack.base_url, f"latency-{tag}@bench.example")
    athlete.provision()
    result = Latency(0, [], [], [], 0)
    ids: list[int] = []
    for path in files:
        data = path.read_bytes()
        t0 = time.perf_counter()
        upload_id = athlete.upload(data, path.name)
        t_accept = time.perf_counter()
        body, polls = athlete.wait_for(upload_id, FINAL, poll_s, timeout_s, stack)
        t_final = time.perf_counter()
        result.polls += polls
        if body["status"] != "ready":
            result.failures.append(f"upload {upload_id}: {body['status']} {body.get('error')}")
            continue
        ids.append(upload_id)
        result.client_s.append(t_final - t0)
        result.accept_s.append(t_accept - t0)
    rows = stack.sql("SELECT extract(epoch FROM updated_at - created_at) FROM uploads "
                     "WHERE id = ANY(:ids) AND status = 'ready'", ids=ids)
    result.server_s = [float(r[0]) for r in rows]
    result.n = len(ids)
    return result


# --- 2. sustained throughput ------------------------------------------------------------------------------

@dataclass
class Throughput:
    clients: int
    posted: int
    ready: int
    failed: int
    unfinished: int
    post_errors: list[str]
    first_201: float
    last_201: float
    first_request: float
    last_ready: float
    first_created: float
    backlog_at_last_201: int
    server_s: list[float]
    cpu: dict[str, float]
    attempts: dict[int, int]
    stuck: list[tuple[str, str, int]]
    busy_before: float = float("nan")

    @property
    def rate(self) -> float:
        """Activities/s from the first 201 (client clock) to the last ready (server clock, same host)."""
        span = self.last_ready - self.first_201
        return self.ready / span if span > 0 else float("nan")

    @property
    def server_rate(self) -> float:
        span = self.last_ready - self.first_created
        return self.ready / span if span > 0 else float("nan")

    @property
    def accept_rate(self) -> float:
        span = self.last_201 - self.first_request
        return self.posted / span if span > 0 else float("nan")


def _status_counts(stack: BenchStack, user_ids: list[int]) -> dict[str, int]:
    rows = stack.sql("SELECT status, count(*) FROM uploads WHERE user_id = ANY(:u) GROUP BY status", u=user_ids)
    return {str(r[0]): int(r[1]) for r in rows}


def measure_throughput(stack: BenchStack, files: list[Path], tag: str, clients: int, duration_s: float,
                       drain_timeout_s: float) -> Throughput:
    athletes = [Athlete(stack.base_url, f"load-{tag}-{i}@bench.example") for i in range(clients)]
    user_ids = [a.provision() for a in athletes]
    payloads = [(p.name, p.read_bytes()) for p in files]  # read up front: the clients only send
    lock = threading.Lock()
    next_index = itertools.count()
    go, stop = threading.Event(), threading.Event()
    accepted: list[tuple[int, float, float]] = []  # (upload id, request start, 201) on the wall clock
    errors: list[str] = []
    deadline = [0.0]

    def client(athlete: Athlete) -> None:
        go.wait()
        while not stop.is_set() and time.monotonic() < deadline[0]:
            with lock:
                i = next(next_index)
            if i >= len(payloads):
                return
            name, data = payloads[i]
            t0 = time.time()
            try:
                upload_id = athlete.upload(data, name)
            except (UploadError, requests.RequestException) as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:300])
                    if len(errors) >= 20:
                        stop.set()
                continue
            t1 = time.time()
            with lock:
                accepted.append((upload_id, t0, t1))

    threads = [threading.Thread(target=client, args=(a,), daemon=True, name=f"client-{i}")
               for i, a in enumerate(athletes)]
    for t in threads:
        t.start()
    meter = CpuMeter(stack)
    meter.start()
    deadline[0] = time.monotonic() + duration_s
    go.set()
    try:
        join_deadline = time.monotonic() + duration_s + 2 * HTTP_TIMEOUT[1]
        for t in threads:
            while t.is_alive() and time.monotonic() < join_deadline:
                t.join(0.5)
                stack.check_alive()
        stop.set()
        backlog = sum(v for k, v in _status_counts(stack, user_ids).items() if k not in FINAL)
        drain_deadline = time.monotonic() + drain_timeout_s
        last_counts: dict[str, int] = {}
        last_change = time.monotonic()
        while True:
            counts = _status_counts(stack, user_ids)
            pending = sum(v for k, v in counts.items() if k not in FINAL)
            if counts != last_counts:
                last_counts, last_change = counts, time.monotonic()
            if pending == 0 or time.monotonic() > drain_deadline:
                break
            if time.monotonic() - last_change > STALL_S:
                # Nothing moved for a long while: messages were lost (a flushed broker database, a dead
                # worker); without beat's sweeper nothing will re-send them, so stop waiting.
                errors.append(f"stalled: no upload changed state for {STALL_S:.0f} s with {pending} pending")
                break
            stack.check_alive()
            time.sleep(0.2)
    finally:
        stop.set()
        cpu = meter.stop()
    row = stack.sql(
        "SELECT extract(epoch FROM min(created_at)), extract(epoch FROM max(updated_at) FILTER "
        "(WHERE status = 'ready')) FROM uploads WHERE user_id = ANY(:u)", u=user_ids)[0]
    server = stack.sql("SELECT extract(epoch FROM updated_at - created_at) FROM uploads "
                       "WHERE user_id = ANY(:u) AND status = 'ready'", u=user_ids)
    return Throughput(
        clients=clients, posted=len(accepted), ready=counts.get("ready", 0),
        failed=counts.get("failed", 0) + counts.get("duplicate", 0), unfinished=pending, post_errors=errors,
        first_201=min((a[2] for a in accepted), default=float("nan")),
        last_201=max((a[2] for a in accepted), default=float("nan")),
        first_request=min((a[1] for a in accepted), default=float("nan")),
        first_created=float(row[0] or "nan"), last_ready=float(row[1] or "nan"),
        backlog_at_last_201=backlog, server_s=[float(r[0]) for r in server], cpu=cpu,
        attempts={int(r[0]): int(r[1]) for r in stack.sql(
            "SELECT attempts, count(*) FROM uploads WHERE user_id = ANY(:u) GROUP BY 1 ORDER BY 1", u=user_ids)},
        stuck=[(str(r[0]), str(r[1]), int(r[2])) for r in stack.sql(
            "SELECT status, stage, count(*) FROM uploads WHERE user_id = ANY(:u) AND status NOT IN "
            "('ready', 'failed', 'duplicate') GROUP BY 1, 2", u=user_ids)])


# --- reporting ----------------------------------------------------------------------------------------------

@dataclass
class ConfigResult:
    web_workers: int
    concurrency: int
    latency: Latency | None
    throughput: Throughput | None

    @property
    def label(self) -> str:
        return f"gunicorn {self.web_workers}w / celery -c {self.concurrency}"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:7.0f} ms"


def print_latency(lat: Latency, poll_ms: float) -> None:
    print(f"  idle latency, {lat.n} sequential uploads (1 athlete, GET poll every {poll_ms:g} ms, "
          f"{lat.polls / max(lat.n, 1):.0f} polls each; machine {lat.busy_before:.0%} busy just before):")
    print(f"    {'':34}{'p50':>10}{'p95':>10}{'max':>10}")
    for name, values in (("client: POST → sees ready", lat.client_s), ("client: POST → 201", lat.accept_s),
                         ("server: created_at → ready", lat.server_s)):
        print(f"    {name:34}{ms(pct(values, 50)):>10}{ms(pct(values, 95)):>10}{ms(max(values, default=0)):>10}")
    verdict = "meets" if pct(lat.client_s, 95) <= LATENCY_TARGET_S else "MISSES"
    print(f"    client p95 {verdict} the {LATENCY_TARGET_S:g} s target")
    for failure in lat.failures[:5]:
        print(f"    ! {failure}")


def limiter(tp: Throughput, ncpu: int, concurrency: int) -> str:
    """One sentence on what bounds the rate, read off the CPU split."""
    wall = tp.cpu["wall"] or 1.0
    busy = tp.cpu["machine busy"] / (wall * ncpu)
    pool = tp.cpu["worker pool"] / wall
    web = tp.cpu["web (gunicorn)"] / wall
    top = max((k for k in tp.cpu if k not in ("machine busy", "wall")), key=lambda k: tp.cpu[k])
    if busy >= 0.85:
        return (f"CPU-bound: the {ncpu} cores are {busy:.0%} busy; the largest consumer is {top} "
                f"({tp.cpu[top] / tp.cpu['machine busy']:.0%} of the busy time)")
    if pool >= 0.85 * concurrency:
        return f"the worker pool is saturated ({pool:.2f} of {concurrency} processes busy)"
    if web >= 0.85:
        return f"the web server is saturated ({web:.2f} cores busy)"
    return (f"not CPU-bound ({busy:.0%} busy): waits (I/O, fsync, broker round trips, "
            f"prefetch) bound the rate")


def print_throughput(tp: Throughput, ncpu: int, concurrency: int) -> None:
    print(f"  sustained throughput, {tp.clients} client threads (one athlete each), {tp.posted} uploads accepted "
          f"(machine {tp.busy_before:.0%} busy just before):")
    print(f"    activities/s, first 201 → last ready     {tp.rate:8.1f}   (target ≥ {THROUGHPUT_TARGET:g}: "
          f"{'meets' if tp.rate >= THROUGHPUT_TARGET else 'MISSES'})")
    print(f"    activities/s, server first created → last ready {tp.server_rate:5.1f}")
    print(f"    uploads accepted/s (POST → 201)           {tp.accept_rate:8.1f}   backlog when the last 201 came: "
          f"{tp.backlog_at_last_201}")
    print(f"    server created → ready under load: p50 {pct(tp.server_s, 50):.2f} s, p95 {pct(tp.server_s, 95):.2f} s")
    print(f"    ready {tp.ready}, failed/duplicate {tp.failed}, unfinished {tp.unfinished}, "
          f"POST errors {len(tp.post_errors)}")
    print("    stage runs per upload (uploads.attempts; more than the claiming stages means retries): "
          + ", ".join(f"{k}: {v}" for k, v in tp.attempts.items()))
    for status, stage, count in tp.stuck:
        print(f"    ! {count} uploads still {status} at stage {stage}")
    for err in tp.post_errors[:3]:
        print(f"    ! {err}")
    wall = tp.cpu["wall"] or 1.0
    n = max(tp.ready, 1)
    print(f"    CPU over {wall:.1f} s wall ({ncpu} cores = {ncpu * 100}%):")
    for key in ("web (gunicorn)", "worker main", "worker pool", "postgres (bench db)", "postgres (server)",
                "redis", "bench client", "other", "machine busy"):
        secs = tp.cpu.get(key, 0.0)
        print(f"      {key:22}{secs / wall * 100:6.0f}%   {secs / n * 1e3:6.1f} ms CPU per activity")
    print(f"    limit: {limiter(tp, ncpu, concurrency)}")
    own = sum(tp.cpu.get(k, 0.0) for k in OWN_GROUPS) / n
    print(f"    CPU-bound ceiling if the service had all {ncpu} cores: {ncpu / own:.1f} activities/s "
          f"({own * 1e3:.0f} ms CPU per activity over web, worker, PostgreSQL and Redis)")


def bytes_per_point(stack: BenchStack) -> tuple[int, int, int]:
    row = stack.sql("SELECT count(*), coalesce(sum(length(data)), 0), coalesce(sum(point_count), 0) "
                    "FROM activity_streams")[0]
    return int(row[0]), int(row[1]), int(row[2])


# --- the kill test --------------------------------------------------------------------------------------------

def kill_test(stack: BenchStack, args: argparse.Namespace, small: list[Path], big: Path) -> bool:
    """SIGKILL the worker mid-ingest; a fresh worker plus the sweeper must finish the upload exactly once."""
    stale_s = args.stale_after
    stack.start_web(1, args.web_threads)
    stack.start_worker(args.worker_concurrency[0])
    warm_up(stack, small[:1], "kill-1")
    athlete = Athlete(stack.base_url, "crash@bench.example")
    athlete.provision()
    data = big.read_bytes()
    say(f"uploading {big.name} ({len(data) / 1e6:.1f} MB)")
    upload_id = athlete.upload(data, big.name)
    body, _ = athlete.wait_for(upload_id, ("processing",), 0.01, 120.0, stack)
    if body["status"] != "processing":
        print(f"  kill test INCONCLUSIVE: upload {upload_id} went {body['status']} before it was seen processing; "
              "use a larger --kill-points")
        return False
    time.sleep(args.kill_delay)
    t_kill = time.monotonic()
    stack.kill_worker()
    after_kill = athlete.status(upload_id)
    n_before = stack.sql("SELECT count(*) FROM activities WHERE upload_id = :i", i=upload_id)[0][0]
    print(f"  SIGKILLed the worker group {args.kill_delay:g} s after `processing`: upload {upload_id} is "
          f"{after_kill['status']} (stage {after_kill.get('stage')}), {n_before} activity rows")

    # The dead worker's message stays unacknowledged in Redis until the 2 h visibility timeout: only the
    # sweeper can bring the upload back, once its `processing` state is older than the stale threshold.
    threshold = {"UPLOAD_STALE_PROCESSING_S": str(stale_s), "UPLOAD_SWEEP_AFTER_S": str(stale_s)}
    stack.start_worker(args.worker_concurrency[0], **threshold)
    warm_up(stack, small[1:2], "kill-2")
    sweeps, last_sweep = 0, -1e9
    attempts_swept = stack.sql("SELECT attempts FROM uploads WHERE id = :i", i=upload_id)[0][0]
    deadline = time.monotonic() + args.kill_timeout
    body = athlete.status(upload_id)
    while body["status"] not in FINAL and time.monotonic() < deadline:
        attempts, age = stack.sql("SELECT attempts, extract(epoch FROM now() - updated_at) FROM uploads "
                                  "WHERE id = :i", i=upload_id)[0]
        # Sweep once the dead run looks stale; again only if no new run claimed it (attempts unchanged)
        # for a while, because a low threshold would otherwise re-send the live re-run as well.
        if (attempts <= attempts_swept and float(age) > stale_s + 0.5 and sweeps < 5
                and time.monotonic() - last_sweep > 20):
            stack.celery_call("maintenance.sweep_uploads", **threshold)
            sweeps, last_sweep, attempts_swept = sweeps + 1, time.monotonic(), attempts
            say(f"sweeper sent (#{sweeps}) with UPLOAD_STALE_PROCESSING_S={stale_s}, "
                f"{time.monotonic() - t_kill:.1f} s after the kill")
        time.sleep(0.25)
        body = athlete.status(upload_id)
    recovered_s = time.monotonic() - t_kill
    rows = stack.sql("SELECT count(*) FROM activities WHERE upload_id = :i", i=upload_id)
    same_file = stack.sql("SELECT count(*) FROM activities a JOIN uploads u ON u.sha256 = a.source_sha256 "
                          "AND u.user_id = a.user_id WHERE u.id = :i", i=upload_id)
    streams = stack.sql("SELECT count(*), max(s.point_count) FROM activity_streams s "
                        "JOIN activities a ON a.id = s.activity_id WHERE a.upload_id = :i", i=upload_id)
    attempts = stack.sql("SELECT attempts FROM uploads WHERE id = :i", i=upload_id)[0][0]
    ok = (body["status"] == "ready" and rows[0][0] == 1 and same_file[0][0] == 1 and streams[0][0] == 1
          and body.get("activity_id") is not None)
    print(f"  after a fresh worker and {sweeps} sweep(s): upload {upload_id} is {body['status']} "
          f"{recovered_s:.1f} s after the kill; attempts {attempts}; activities for it {rows[0][0]}, "
          f"for its file {same_file[0][0]}; streams {streams[0][0]} ({streams[0][1]} points)")
    print(f"  kill test {'PASSED' if ok else 'FAILED'}")
    return ok


# --- main -----------------------------------------------------------------------------------------------------

def int_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma list of positive integers")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uploads", type=int, default=1000, help="uploads in the throughput run (0 skips it)")
    ap.add_argument("--duration", type=float, default=60.0, help="stop posting after this many seconds")
    ap.add_argument("--clients", type=int, default=12, help="concurrent client threads (one athlete each)")
    ap.add_argument("--latency-uploads", type=int, default=60, help="sequential uploads at idle (0 skips)")
    ap.add_argument("--poll-ms", type=float, default=10.0, help="status poll interval of the latency run")
    ap.add_argument("--web-workers", type=int_list, default=[2], help="gunicorn workers, e.g. 1,2")
    ap.add_argument("--web-threads", type=int, default=16, help="gunicorn gthread threads per worker")
    ap.add_argument("--worker-concurrency", type=int_list, default=[2], help="prefork processes, e.g. 2,3")
    ap.add_argument("--points", type=int, default=3600, help="points per file (1 Hz)")
    ap.add_argument("--seed", type=int, default=1000, help="first synthetic seed (each file has its own)")
    ap.add_argument("--drain-timeout", type=float, default=300.0, help="max wait for the backlog to finish")
    ap.add_argument("--quiet-wait", type=float, default=120.0,
                    help="wait up to this long for an idle CPU before each measurement (0: don't)")
    ap.add_argument("--quiet-below", type=float, default=0.25, help="idle means busy below this fraction")
    ap.add_argument("--redis", choices=("private", "shared"), default="private",
                    help="private: a redis-server of its own (default); shared: database 9 of REDIS_URL or "
                         "127.0.0.1:6379, which a concurrent `pytest -n 9` or more flushes")
    ap.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of web and worker (INFO shows each task)")
    ap.add_argument("--quick", action="store_true", help="small numbers for a smoke run")
    ap.add_argument("--keep", action="store_true", help="keep the database and the temporary directory")
    ap.add_argument("--kill-test", action="store_true", help="run the worker-crash recovery check instead")
    ap.add_argument("--kill-points", type=int, default=150_000, help="points of the large file of --kill-test")
    ap.add_argument("--kill-delay", type=float, default=0.3, help="seconds in `processing` before the SIGKILL")
    ap.add_argument("--stale-after", type=int, default=3, help="UPLOAD_STALE_PROCESSING_S of the fresh worker")
    ap.add_argument("--kill-timeout", type=float, default=180.0, help="max wait for recovery after the kill")
    args = ap.parse_args(argv)
    if args.quick:
        args.uploads = min(args.uploads, 80)
        args.clients = min(args.clients, 4)
        args.duration = min(args.duration, 20.0)
        args.latency_uploads = min(args.latency_uploads, 10)
        args.kill_points = min(args.kill_points, 150_000)
    return args


def print_log_tails(workdir: Path, lines: int = 25) -> None:
    """The end of each service log: the temporary directory is removed on exit (unless --keep)."""
    for name in ("web", "worker"):
        path = workdir / f"{name}.log"
        if path.exists():
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            print(f"---- last {len(tail)} lines of {name}.log", *tail, sep="\n")


def _raise_interrupt(_sig: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def chain_names() -> str:
    """The stages one upload runs through, as this checkout declares them (the figures depend on it)."""
    try:
        from tasks import pipeline, stages

        hooks = [getattr(h, "name", None) or getattr(h, "task", "?") for h in pipeline.POST_INGEST_HOOKS]
        return " → ".join([stages.ingest.name, *hooks])
    except Exception as exc:
        return f"unknown ({type(exc).__name__})"


def print_header(args: argparse.Namespace, load: tuple[float, float, float]) -> int:
    ncpu = os.cpu_count() or 1
    print("command :", " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    print(f"machine : nproc {ncpu}, {platform.machine()}, python {platform.python_version()}, "
          f"load average at start {' '.join(f'{x:.2f}' for x in load)}")
    print(f"chain   : {chain_names()}")
    return ncpu


def run_benchmark(stack: BenchStack, args: argparse.Namespace, workdir: Path) -> int:
    n_lat, n_load = args.latency_uploads, args.uploads
    load = os.getloadavg()
    say(f"generating {n_lat + n_load + 3} distinct {args.points}-point GPX files")
    files = generate_files(workdir / "gpx", list(range(args.seed, args.seed + n_lat + n_load + 3)), args.points)
    warm, lat_files, load_files = files[:3], files[3:3 + n_lat], files[3 + n_lat:]
    say(f"{len(files)} files, {sum(p.stat().st_size for p in files[:20]) / min(20, len(files)) / 1024:.0f} KiB each")
    pure = pure_ingest_cpu(files[:15])
    ncpu = print_header(args, load)
    print(f"files   : {args.points}-point 1 Hz GPX with heart rate and elevation (tests.support.synthetic), "
          f"~{files[0].stat().st_size / 1024:.0f} KiB; LOG_LEVEL={stack.log_level}, no access log")
    print(f"pure    : CPU per file in-process, median of 15: parse+normalize {pure[0] * 1e3:.1f} ms, "
          f"summarize+encode {pure[1] * 1e3:.1f} ms (the floor under the worker's CPU per activity)", flush=True)
    stack.open()
    say(f"database {stack.database_url}, redis {stack.redis_url}, objects in {workdir / 'objects'}")
    results: list[ConfigResult] = []
    for web_workers, concurrency in itertools.product(args.web_workers, args.worker_concurrency):
        tag = f"w{web_workers}c{concurrency}"
        label = ConfigResult(web_workers, concurrency, None, None).label
        print(f"\n{label} (gthread, {args.web_threads} threads per web worker; prefork pool)", flush=True)
        stack.migrate()
        try:
            stack.start_web(web_workers, args.web_threads)
            stack.start_worker(concurrency)
            # Every configuration uploads the same files, as athletes of its own: never a duplicate.
            warm_up(stack, warm, tag)
            res = ConfigResult(web_workers, concurrency, None, None)
            if n_lat:
                busy = wait_quiet(args.quiet_wait, args.quiet_below)
                res.latency = measure_latency(stack, lat_files, tag, args.poll_ms / 1e3, 60.0)
                res.latency.busy_before = busy
                print_latency(res.latency, args.poll_ms)
            if n_load:
                busy = wait_quiet(args.quiet_wait, args.quiet_below)
                res.throughput = measure_throughput(stack, load_files, tag, args.clients, args.duration,
                                                    args.drain_timeout)
                res.throughput.busy_before = busy
                print_throughput(res.throughput, ncpu, concurrency)
            results.append(res)
        except (StackError, UploadError) as exc:
            # One broken configuration (or a checkout changing under the run) must not hide the others.
            print(f"  FAILED: {exc}")
            print_log_tails(workdir, lines=12)
        finally:
            stack.stop_worker()
            stack.stop_web()
        sys.stdout.flush()

    n_streams, n_bytes, n_points = bytes_per_point(stack)
    print(f"\nstored streams: {n_streams} activities, {n_bytes:,} bytes for {n_points:,} points = "
          f"{n_bytes / max(n_points, 1):.2f} bytes/point")
    measured = [r for r in results if r.throughput is not None]
    if len(measured) > 1:
        best = max(measured, key=lambda r: r.throughput.rate if r.throughput else 0.0)
        print("\nsummary (activities/s | idle client p95):")
        for r in measured:
            p95 = pct(r.latency.client_s, 95) if r.latency else float("nan")
            mark = "  <- best" if r is best else ""
            print(f"  {r.label:34}{r.throughput.rate if r.throughput else 0:8.1f} /s{p95 * 1e3:8.0f} ms{mark}")
    return 0 if results else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="strava-bench-"))
    stack = BenchStack(workdir, keep_db=args.keep, log_level=args.log_level, redis_mode=args.redis)
    keep_logs = False
    try:
        if args.kill_test:
            say(f"generating the {args.kill_points:,}-point file and two small ones")
            big = generate_files(workdir / "gpx", [args.seed - 1], args.kill_points)[0]
            small = generate_files(workdir / "gpx", [args.seed - 2, args.seed - 3], args.points)
            stack.open()
            print_header(args, os.getloadavg())
            return 0 if kill_test(stack, args, small, big) else 1
        return run_benchmark(stack, args, workdir)
    except KeyboardInterrupt:
        say("interrupted; stopping everything")
        return 130
    except (StackError, UploadError) as exc:
        say(f"FAILED: {exc}")
        print_log_tails(workdir)
        keep_logs = True
        return 1
    finally:
        stack.close()
        if args.keep:
            say(f"kept {workdir} and database {stack.db_name}")
        elif keep_logs:
            for bulky in ("gpx", "objects"):
                remove_tree(workdir / bulky)
            say(f"service logs kept in {workdir}")
        else:
            remove_tree(workdir)


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
