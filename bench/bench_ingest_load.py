"""Ingest under load, against the processes `make run` started (not a configuration of the benchmark's own).

Start the stack (``make run``), then, from the repository root::

    .venv/bin/python bench/bench_ingest_load.py                # both figures, PASS/FAIL per clause
    .venv/bin/python bench/bench_ingest_load.py --sustain-s 30 --offered-s 30   # shorter

The uploads are 1-hour GPX files (3,600 points at 1 Hz with heart rate, ~750 KB), each athlete followed by 5
others, no segments nearby: the issue's workload. Each athlete's uploads are one route recorded at successive
hours, the first two hours ago and each next one an hour before the previous (``--days-ago`` moves the start
back: a history import), so no two are the same file or the same workout.

1. **Sustained throughput**: client threads keep a bounded number of uploads in flight (posted, not yet
   ready), enough to keep every worker process busy without an unbounded queue; activities/s is the number of
   uploads that became ``ready`` in the measured window (after a ramp-up) over its length. Target ≥ 40/s.
2. **Latency at 30/s offered**: uploads are posted on a fixed schedule (open loop: a slow answer does not slow
   the arrivals); upload → ready is the time from the client sending the request to the server marking the
   upload ready (``uploads.updated_at``; client and server share this machine's clock). Target p95 ≤ 2 s.

Both phases print the CPU seconds each of the stack's processes used per activity (web, worker main
process and pool, beat, Flower, PostgreSQL, Redis, the benchmark client itself and the rest of the machine),
so the figure says where the time goes. The benchmark reads the stack's database (``DATABASE_URL`` from
``.data/stack.env``) only to read upload timestamps, and never writes to it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import shlex
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_ingest_stack import _cpu_s  # noqa: E402

from config import normalize_database_url  # noqa: E402
from tests.support.synthetic import synthetic_track, to_gpx  # noqa: E402
from webapp.auth import dev_token  # noqa: E402

PROJECT_ID = os.environ.get("FIREBASE_PROJECT_ID", "demo-strava-plus-one")
TIMEOUT = (5.0, 60.0)
THROUGHPUT_TARGET = 40.0
P95_TARGET_S = 2.0
#: The synthetic tracks run from 05:00:00 to 05:59:59 UTC: a file's day and hour are one string each.
BASE_DAY = "2023-11-15"
BASE_START = datetime.fromisoformat(f"{BASE_DAY}T05:00:00+00:00").timestamp()


# --- the stack `make run` started ----------------------------------------------------------------------------

def read_stack_env(path: Path) -> dict[str, str]:
    if not path.exists():
        sys.exit(f"{path} not found: start the stack with `make run` first")
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = shlex.split(value)[0] if value else ""
    if not psutil.pid_exists(int(env.get("STACK_PID", "0"))):
        sys.exit(f"{path} is stale (no process {env.get('STACK_PID')}): start the stack with `make run`")
    return env


def _cmd(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""


def _role(cmd: str) -> str:
    if "redis-server" in cmd:
        return "redis"
    if "moto_server" in cmd:
        return "s3 stand-in"
    if "gunicorn" in cmd:
        return "web"
    if " worker " in cmd and "--queues media" in cmd:
        return "worker-media"
    if " worker " in cmd:
        return "worker"
    for role in ("beat", "flower", "media-events"):
        if f" {role}" in cmd:
            return role
    return "stack (devstack)"


class StackProcesses:
    """The stack's processes grouped by role, found again at each sample (a pool child may be replaced)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.stack_pid = int(env["STACK_PID"])
        db = env.get("DATABASE_URL", "")
        host = re.search(r"host=([^&]+)", db)
        self.pg_dir = host.group(1) if host else None
        port = re.search(r":(\d+)(?:/|$)", env.get("REDIS_URL", ""))
        self.redis_port_s = port.group(1) if port else "6379"

    def groups(self) -> dict[str, list[psutil.Process]]:
        out: dict[str, list[psutil.Process]] = {}
        root = psutil.Process(self.stack_pid)
        for proc in [root, *root.children(recursive=True)]:
            cmd = _cmd(proc)
            role = _role(cmd)
            if role == "worker":
                # The worker's main process (broker I/O, acks, events) apart from its pool children (the tasks).
                parent = proc.parent()
                role = "worker pool" if parent is not None and " worker " in _cmd(parent) else "worker main"
            out.setdefault(role, []).append(proc)
        seen = {p.pid for procs in out.values() for p in procs}
        for proc in psutil.process_iter(["name"]):
            if proc.pid in seen:
                continue
            cmd = _cmd(proc)
            name = proc.info.get("name") or ""
            if name.startswith("redis-server") and f":{self.redis_port_s}" in cmd:
                out.setdefault("redis", []).append(proc)
            elif self.pg_dir and ("postgres" in name) and (self.pg_dir in cmd or (
                    proc.ppid() and self.pg_dir in _cmd(psutil.Process(proc.ppid())))):
                out.setdefault("postgres", []).append(proc)
        out["bench client"] = [psutil.Process()]
        return out


@dataclass
class CpuWindow:
    processes: StackProcesses
    start: dict[str, dict[int, float]] = field(default_factory=dict)
    busy0: float = 0.0
    t0: float = 0.0

    def _sample(self) -> tuple[dict[str, dict[int, float]], float]:
        per = {g: {p.pid: s for p in procs if (s := _cpu_s(p)) is not None}
               for g, procs in self.processes.groups().items()}
        t = psutil.cpu_times()
        return per, float(sum(t) - t.idle - getattr(t, "iowait", 0.0))

    def begin(self) -> None:
        self.start, self.busy0 = self._sample()
        self.t0 = time.monotonic()

    def end(self) -> dict[str, float]:
        per, busy = self._sample()
        out = {g: sum(max(0.0, s - self.start.get(g, {}).get(pid, 0.0)) for pid, s in pids.items())
               for g, pids in per.items()}
        out["machine busy"] = busy - self.busy0
        out["other"] = max(0.0, out["machine busy"] - sum(v for k, v in out.items() if k != "machine busy"))
        out["wall"] = time.monotonic() - self.t0
        return out


# --- load --------------------------------------------------------------------------------------------------

class Files:
    """One base track per athlete, recorded ``days_ago``; each upload is that track named apart (other bytes,
    the same work)."""

    def __init__(self, n_bases: int, n_points: int, days_ago: int) -> None:
        assert n_points <= 3600, "a track must fit in its hour"
        self.first = (datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
                      - timedelta(days=days_ago, hours=2))
        self.bases = [to_gpx(synthetic_track(seed=7000 + i, n_points=n_points, start_time=BASE_START))
                      for i in range(n_bases)]
        self._taken = [0] * n_bases
        self._lock = threading.Lock()

    def take(self, base: int) -> bytes:
        """The athlete's next upload: its route one hour before the previous one."""
        base %= len(self.bases)
        with self._lock:
            k = self._taken[base]
            self._taken[base] += 1
        start = self.first - timedelta(hours=k)
        stamp = f"{start:%Y-%m-%dT%H}:".encode()
        return self.bases[base].replace(f"{BASE_DAY}T05:".encode(), stamp)


class Client:
    def __init__(self, base_url: str, email: str) -> None:
        self.base = base_url.rstrip("/") + "/api/v1"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {dev_token(email, PROJECT_ID, ttl_s=6 * 3600)}"
        self.id = int(self.call("GET", "/me").json()["id"])

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        resp = self.http.request(method, self.base + path, timeout=TIMEOUT, **kwargs)
        if resp.status_code >= 400:
            raise RuntimeError(f"{method} {path} → {resp.status_code} {resp.text[:200]}")
        return resp

    def upload(self, data: bytes) -> int:
        resp = self.call("POST", "/uploads", files={"file": ("ride.gpx", data, "application/gpx+xml")})
        return int(resp.json()["id"])


class Db:
    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(normalize_database_url(url), pool_size=2)

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))

    def statuses(self, ids: Iterable[int]) -> dict[str, int]:
        rows = self.rows("SELECT status, count(*) FROM uploads WHERE id = ANY(:ids) GROUP BY 1", ids=list(ids))
        return {str(r[0]): int(r[1]) for r in rows}

    def ready_times(self, ids: Iterable[int]) -> dict[int, float]:
        rows = self.rows("SELECT id, extract(epoch FROM updated_at) FROM uploads WHERE id = ANY(:ids) "
                         "AND status = 'ready'", ids=list(ids))
        return {int(r[0]): float(r[1]) for r in rows}


@dataclass
class Posted:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent_at: dict[int, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, upload_id: int, t: float) -> None:
        with self.lock:
            self.sent_at[upload_id] = t

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message[:300])


def provision(base_url: str, run: str, athletes: int, followers: int) -> list[Client]:
    """Uploaders, each followed by ``followers`` accounts of a shared pool (so each activity fans out to 5)."""
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        uploaders = list(pool.map(lambda i: Client(base_url, f"load-{run}-{i}@bench.example"), range(athletes)))
        fans = list(pool.map(lambda i: Client(base_url, f"fan-{run}-{i}@bench.example"),
                             range(max(followers, 2 * followers))))

        def follow(job: tuple[int, Client]) -> None:
            i, uploader = job
            for k in range(followers):
                fans[(i + k) % len(fans)].call("POST", f"/users/{uploader.id}/follow")

        list(pool.map(follow, enumerate(uploaders)))
    return uploaders


def wait_final(db: Db, ids: list[int], timeout_s: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        counts = db.statuses(ids)
        if sum(v for k, v in counts.items() if k in ("queued", "processing")) == 0 or time.monotonic() > deadline:
            return counts
        time.sleep(0.25)


def sustained(db: Db, clients: list[Client], files: Files, seconds: float, ramp_s: float, in_flight: int,
              cpu: CpuWindow) -> tuple[float, int, dict[str, float], Posted, dict[str, int]]:
    """Closed loop with a bounded backlog: (activities/s, ready in the window, CPU by group, posted, statuses)."""
    posted = Posted()
    stop = threading.Event()
    pending = threading.Semaphore(in_flight)
    ready_seen: set[int] = set()

    def reaper() -> None:  # frees a slot for each upload that finished
        while not stop.is_set() or len(ready_seen) < len(posted.sent_at):
            with posted.lock:
                open_ids = [i for i in posted.sent_at if i not in ready_seen]
            if open_ids:
                done = [int(r[0]) for r in db.rows(
                    "SELECT id FROM uploads WHERE id = ANY(:ids) AND status IN ('ready', 'failed', 'duplicate')",
                    ids=open_ids)]
                for upload_id in done:
                    ready_seen.add(upload_id)
                    pending.release()
            if stop.is_set() and time.monotonic() > stop_deadline[0]:
                return
            time.sleep(0.05)

    stop_deadline = [float("inf")]

    def client(i: int, c: Client) -> None:
        while not stop.is_set():
            if not pending.acquire(timeout=0.5):
                continue
            t = time.time()
            try:
                posted.add(c.upload(files.take(i)), t)
            except (requests.RequestException, RuntimeError) as exc:
                pending.release()
                posted.error(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(i, c), daemon=True) for i, c in enumerate(clients)]
    reap = threading.Thread(target=reaper, daemon=True)
    for t in threads:
        t.start()
    reap.start()
    time.sleep(ramp_s)
    window_start = time.time()
    cpu.begin()
    time.sleep(seconds)
    window_end = time.time()
    usage = cpu.end()
    stop.set()
    for t in threads:
        t.join(TIMEOUT[1])
    stop_deadline[0] = time.monotonic() + 300
    statuses = wait_final(db, list(posted.sent_at), 300)
    reap.join(5)
    ready = db.ready_times(posted.sent_at)
    in_window = sum(1 for t in ready.values() if window_start <= t < window_end)
    return in_window / (window_end - window_start), in_window, usage, posted, statuses


def offered(db: Db, clients: list[Client], files: Files, rate: float, seconds: float, cpu: CpuWindow,
            ) -> tuple[list[float], dict[str, float], Posted, dict[str, int], float]:
    """Open loop at ``rate``/s: (upload → ready seconds per upload, CPU by group, posted, statuses, lag)."""
    posted = Posted()
    n = int(rate * seconds)
    interval = 1.0 / rate
    worst_lag = 0.0

    def send(k: int) -> None:
        t = time.time()
        try:
            posted.add(clients[k % len(clients)].upload(files.take(k)), t)
        except (requests.RequestException, RuntimeError) as exc:
            posted.error(f"{type(exc).__name__}: {exc}")

    cpu.begin()
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
        for k in range(n):
            due = t0 + k * interval
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            else:
                worst_lag = max(worst_lag, now - due)
            pool.submit(send, k)
        pool.shutdown(wait=True)
    statuses = wait_final(db, list(posted.sent_at), 300)
    usage = cpu.end()
    ready = db.ready_times(posted.sent_at)
    latencies = sorted(ready[i] - t for i, t in posted.sent_at.items() if i in ready)
    return latencies, usage, posted, statuses, worst_lag


# --- report ------------------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def print_cpu(usage: dict[str, float], activities: int) -> None:
    wall_s = usage["wall"]
    order = ["web", "worker main", "worker pool", "postgres", "redis", "beat", "flower", "worker-media",
             "media-events", "stack (devstack)", "bench client", "other"]
    print(f"    CPU over {wall_s:.0f} s for {activities} activities (ms per activity; cores busy):")
    for group in order + sorted(k for k in usage if k not in order and k not in ("machine busy", "wall")):
        if group in usage:
            print(f"      {group:<18} {1000 * usage[group] / max(1, activities):7.1f} ms   "
                  f"{usage[group] / wall_s:5.2f} cores")
    stack = sum(v for k, v in usage.items() if k not in ("machine busy", "other", "bench client", "wall"))
    print(f"      {'= the stack':<18} {1000 * stack / max(1, activities):7.1f} ms   {stack / wall_s:5.2f} cores")
    print(f"      {'machine busy':<18} {1000 * usage['machine busy'] / max(1, activities):7.1f} ms   "
          f"{usage['machine busy'] / wall_s:5.2f} of {psutil.cpu_count()} cores")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}")
    ap.add_argument("--stack-env", type=Path, default=ROOT / ".data" / "stack.env")
    ap.add_argument("--athletes", type=int, default=16, help="uploading athletes (client threads)")
    ap.add_argument("--followers", type=int, default=5)
    ap.add_argument("--points", type=int, default=3600)
    ap.add_argument("--days-ago", type=int, default=0, help="the files' day: 0 is today (UTC)")
    ap.add_argument("--sustain-s", type=float, default=60.0, help="measured window of the sustained phase")
    ap.add_argument("--ramp-s", type=float, default=10.0, help="unmeasured start of the sustained phase")
    ap.add_argument("--in-flight", type=int, default=48, help="uploads posted but not yet ready, at most")
    ap.add_argument("--rate", type=float, default=30.0, help="offered uploads/s of the latency phase")
    ap.add_argument("--offered-s", type=float, default=60.0, help="length of the latency phase")
    ap.add_argument("--skip-sustained", action="store_true")
    ap.add_argument("--skip-offered", action="store_true")
    args = ap.parse_args()

    env = read_stack_env(args.stack_env)
    db = Db(env["DATABASE_URL"])
    cpu = CpuWindow(StackProcesses(env))
    run = f"{int(time.time())}"
    print(f"[load] provisioning {args.athletes} athletes, {args.followers} followers each; making files …",
          flush=True)
    clients = provision(args.base_url, run, args.athletes, args.followers)
    files = Files(args.athletes, args.points, args.days_ago)
    warm = [clients[i % len(clients)].upload(files.take(i)) for i in range(2 * psutil.cpu_count())]
    counts = wait_final(db, warm, 120)
    if counts.get("ready", 0) != len(warm):
        print(f"FAIL  warm-up uploads ready — {counts}")
        return 1
    load = os.getloadavg()
    print(f"[load] {psutil.cpu_count()} cores; load average {load[0]:.2f} before the run; "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", flush=True)
    ok = True
    if not args.skip_sustained:
        rate, n, usage, posted, statuses = sustained(db, clients, files, args.sustain_s, args.ramp_s,
                                                     args.in_flight, cpu)
        print(f"\n[sustained] {args.athletes} clients, ≤ {args.in_flight} in flight, {args.ramp_s:.0f} s ramp + "
              f"{args.sustain_s:.0f} s measured: {n} activities ready in the window → {rate:.1f} activities/s")
        print(f"    posted {len(posted.sent_at)}, final statuses {statuses}, post errors {len(posted.errors)}")
        print_cpu(usage, n)
        lost = len(posted.sent_at) - statuses.get("ready", 0)
        ok &= _check(f"sustained throughput ≥ {THROUGHPUT_TARGET:.0f} activities/s", rate >= THROUGHPUT_TARGET,
                     f"{rate:.1f}/s")
        ok &= _check("every posted upload of the sustained phase became ready", lost == 0 and not posted.errors,
                     f"{lost} not ready, {len(posted.errors)} errors {posted.errors[:2]}")
    if not args.skip_offered:
        wait_idle()
        lat, usage, posted, statuses, lag = offered(db, clients, files, args.rate, args.offered_s, cpu)
        print(f"\n[offered] {args.rate:.0f} uploads/s for {args.offered_s:.0f} s ({len(posted.sent_at)} posted; "
              f"the schedule ran at most {1000 * lag:.0f} ms late)")
        print(f"    upload → ready: p50 {pct(lat, 50):.2f} s, p90 {pct(lat, 90):.2f} s, p95 {pct(lat, 95):.2f} s, "
              f"p99 {pct(lat, 99):.2f} s, max {max(lat, default=float('nan')):.2f} s; statuses {statuses}")
        print_cpu(usage, len(lat))
        ok &= _check(f"p95 upload → ready ≤ {P95_TARGET_S:.0f} s at {args.rate:.0f}/s offered",
                     pct(lat, 95) <= P95_TARGET_S, f"{pct(lat, 95):.2f} s")
        ok &= _check("every posted upload of the latency phase became ready",
                     len(lat) == len(posted.sent_at) and not posted.errors,
                     f"{len(posted.sent_at) - len(lat)} not ready, {len(posted.errors)} errors {posted.errors[:2]}")
    return 0 if ok else 1


def wait_idle(max_s: float = 60.0) -> None:
    """Let the stack finish the previous phase's tail (feeds, analytics) so the next starts from quiet."""
    deadline = time.monotonic() + max_s
    psutil.cpu_percent(None)
    while time.monotonic() < deadline:
        if psutil.cpu_percent(1.0) < 20:
            return


def _check(name: str, ok: bool, detail: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'}  {name} — {detail}", flush=True)
    return ok


if __name__ == "__main__":
    sys.exit(main())
