"""Hostile inputs against a running stack (`make run` in another shell): every one is refused with a 4xx in bounded
time, sockets on the same web process keep answering, no process dies and the workers' memory comes back.

    .venv/bin/python bench/hostile.py [--base-url http://127.0.0.1:8000] [--project demo-strava-plus-one]

Sends, while four sockets ping the web processes: oversized JSON (14 MB segment, 2 MB profile), JSON nested 1,000
deep, NUL bytes and lone surrogates in JSON, query and multipart fields and file names, crafted cursors, a zip
bomb, a zip of 1,500 entries, gzip bombs (zeros; 3 M GPX points in 1 MB), an Apple Health export with more
workouts than one file may hold, and an amplifying export (200 workouts in ~8 MB, which is legitimate: accepted
once, in bounded time). Then checks: each answered with the expected status within --max-s, socket ping p99 ≤
100 ms meanwhile, the web and worker processes (found from the port's listener, or --worker-pid) are the same
pids as before, and worker RSS is back within --rss-slack-mb of its baseline. Prints PASS/FAIL per clause and
the figures; exits 1 if any clause failed, 2 if the stack could not be reached.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import multiprocessing
import secrets
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
import requests
import websocket

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smoke_support import Api, Report  # noqa: E402

from tests.support.health import health_export  # noqa: E402

_POINT = b'<trkpt lat="45.1234567" lon="7.1234567"><ele>100.5</ele><time>2024-01-01T00:00:00Z</time></trkpt>\n'


@dataclass
class Probe:
    """One hostile request and the statuses that count as a correct answer."""

    name: str
    send: Callable[[], requests.Response]
    expect: Callable[[int], bool] = lambda status: 400 <= status < 500
    status: int | None = None
    seconds: float = 0.0
    error: str = ""


@dataclass
class Pinger:
    """Sockets that ping their web process about 9 times a second each (the socket allows 10 frames/s)."""

    ws_url: str
    token: str
    count: int = 4
    rtts: list[float] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)
    failures: int = 0

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self.sockets = []
        for _ in range(self.count):
            ws = websocket.create_connection(self.ws_url, header=[f"Authorization: Bearer {self.token}"], timeout=10)
            hello = json.loads(ws.recv())
            self.pids.add(int(hello.get("server", {}).get("pid", 0)))
            self.sockets.append(ws)
        self.threads = [threading.Thread(target=self._run, args=(ws,), daemon=True) for ws in self.sockets]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _run(self, ws: websocket.WebSocket) -> None:
        while not self.stop.is_set():
            start = time.monotonic()
            try:
                ws.send(json.dumps({"type": "ping"}))
                while json.loads(ws.recv()).get("type") != "pong":
                    pass
            except Exception:
                self.failures += 1
                return
            self.rtts.append(time.monotonic() - start)
            time.sleep(max(0.0, 0.11 - (time.monotonic() - start)))

    def finish(self) -> bool:
        """Stop pinging; True when every socket is still open (its process alive)."""
        self.stop.set()
        for t in self.threads:
            t.join(15)
        alive = True
        for ws in self.sockets:
            try:
                ws.send(json.dumps({"type": "ping"}))
                ws.recv()
            except Exception:
                alive = False
            ws.close()
        return alive and self.failures == 0

    def p99_ms(self) -> float:
        if not self.rtts:
            return float("inf")
        ordered = sorted(self.rtts)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def _ping_in_child(ws_url: str, token: str, stop: Any, out: Any) -> None:
    pinger = Pinger(ws_url, token)
    pinger.start()
    stop.wait()
    alive = pinger.finish()
    out.put((pinger.rtts, alive))


class PingerProcess:
    """The pinger in a process of its own: this one builds and sends megabytes of hostile bodies, and the time
    it holds its GIL doing so must not be measured as the server's latency."""

    def __init__(self, ws_url: str, token: str) -> None:
        self.stop = multiprocessing.Event()
        self.out: Any = multiprocessing.Queue()
        self.process = multiprocessing.Process(target=_ping_in_child, args=(ws_url, token, self.stop, self.out),
                                               daemon=True)
        self.rtts: list[float] = []

    def start(self) -> None:
        self.process.start()

    def finish(self) -> bool:
        self.stop.set()
        self.rtts, alive = self.out.get(timeout=60)
        self.process.join(10)
        return bool(alive)

    def p99_ms(self) -> float:
        if not self.rtts:
            return float("inf")
        ordered = sorted(self.rtts)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def stack_processes(base_url: str, worker_pids: list[int]) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """(web processes, worker processes incl. pool children) of the stack serving ``base_url``'s port."""
    port = urlparse(base_url).port or 80
    web: list[psutil.Process] = []
    try:
        listeners = {c.pid for c in psutil.net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid}
    except psutil.AccessDenied:
        listeners = set()
    for pid in listeners:
        master = psutil.Process(pid)
        # Every gunicorn process holds the listening socket: climb to the master, then take all its workers.
        while (parent := master.parent()) is not None and "gunicorn" in " ".join(parent.cmdline()):
            master = parent
        web += [master, *master.children()]
    web = list({p.pid: p for p in web}.values())
    if worker_pids:
        roots = [psutil.Process(pid) for pid in worker_pids]
    else:
        # The supervisor (`make run`) that started the web server also started the worker.
        parents = [p.parent() for p in web if "gunicorn" in " ".join(p.cmdline())]
        supervisors = {q.pid for q in parents if q is not None and "gunicorn" not in " ".join(q.cmdline())}
        roots = [c for s in supervisors for c in psutil.Process(s).children()
                 if {"celery", "worker"} <= set(" ".join(c.cmdline()).replace("/", " ").split())]
    workers = [p for r in roots for p in (r, *r.children(recursive=True))]
    return web, workers


def rss_mb(processes: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for p in processes:
        try:
            out[p.pid] = p.memory_info().rss / 2**20
        except psutil.Error:
            out[p.pid] = float("nan")
    return out


def multipart(api: Api, token: str, data: bytes, filename: str, **form: str) -> Callable[[], requests.Response]:
    return lambda: requests.post(api.base + "/uploads", files={"file": (filename, data)}, data=form,
                                 headers={"Authorization": f"Bearer {token}"}, timeout=120)


def call(api: Api, token: str, method: str, path: str, **kwargs: Any) -> Callable[[], requests.Response]:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return lambda: requests.request(method, api.base + path, headers=headers, timeout=120, **kwargs)


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buf.getvalue()


def probes(api: Api, token: str, me: int) -> list[Probe]:
    json_headers = {"Content-Type": "application/json"}
    segment_points = [[45.0 + i * 1e-5, 7.0, 100.0] for i in range(400_000)]  # ~14 MB
    nested = "[" * 1000 + "]" * 1000
    bomb_member = b"<gpx>" + b" " * (300 << 20)
    many_entries = zip_bytes({f"f{i}.txt": b"x" for i in range(1500)}, zipfile.ZIP_STORED)
    workouts_cap = 1000  # UPLOAD_MAX_ITEMS_PER_FILE's default
    crafted = ["AAAA", "eyJ4IjoxfQ", "%00", "9" * 400, "Zm9vfGJhcg==", "\u202e"]
    out = [
        Probe("oversized JSON: 14 MB segment body", call(api, token, "POST", "/segments", headers=json_headers,
              data=json.dumps({"name": "x", "sport_type": "running", "points": segment_points}))),
        Probe("oversized JSON: 2 MB profile body", call(api, token, "PATCH", "/me", headers=json_headers,
              data=json.dumps({"display_name": "x" * (2 << 20)}))),
        Probe("JSON nested 1,000 deep", call(api, token, "POST", "/segments", headers=json_headers,
              data='{"name": "x", "points": ' + nested + "}")),
        Probe("NUL in a JSON string", call(api, token, "PATCH", "/me", headers=json_headers,
              data='{"display_name": "a\\u0000b"}')),
        Probe("lone surrogate in a JSON string", call(api, token, "PATCH", "/me", headers=json_headers,
              data='{"display_name": "a\\ud800b"}')),
        Probe("NUL in a query parameter", call(api, token, "GET", "/uploads?batch_id=a%00b")),
        Probe("NUL in a multipart field", multipart(api, token, b"<gpx/>", "a.gpx", name="a\x00b")),
        Probe("NUL in a multipart file name", multipart(api, token, b"<gpx/>", "a\x00.gpx")),
        Probe("zip bomb (one member inflating to 300 MB)",
              multipart(api, token, zip_bytes({"bomb.gpx": bomb_member}), "bomb.zip")),
        Probe("zip of 1,500 entries", multipart(api, token, many_entries, "many.zip")),
        Probe("gzip bomb (1 GB of zeros)", multipart(api, token, gzip.compress(b"\0" * (1 << 30), 9), "z.gpx.gz")),
        Probe("gzip GPX of 3 M points (~1 MB)", multipart(api, token, gzip.compress(
            b'<gpx version="1.1"><trk><trkseg>' + _POINT * 3_000_000 + b"</trkseg></trk></gpx>", 6), "p.gpx.gz")),
        Probe(f"Apple Health export of {workouts_cap + 1:,} workouts",
              multipart(api, token, health_export(workouts_cap + 1, points=20), "export.xml")),
        Probe("amplifying export (200 workouts, ~8 MB) accepted once",
              multipart(api, token, health_export(200, points=60, filler_records=40_000,
                                                  lat0=40 + secrets.randbelow(1000) / 100), "export.xml"),
              expect=lambda status: status == 201),
    ]
    for path in ("/uploads", "/feed", "/notifications", f"/users/{me}/activities", "/me/starred-segments"):
        for cursor in crafted:
            out.append(Probe(f"crafted cursor {cursor[:12]!r} on {path}",
                             call(api, token, "GET", path, params={"cursor": cursor})))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--project", default="demo-strava-plus-one", help="the stack's FIREBASE_PROJECT_ID")
    parser.add_argument("--max-s", type=float, default=10.0, help="longest acceptable answer, per request")
    parser.add_argument("--worker-pid", type=int, action="append", default=[], help="Celery worker main pid(s)")
    parser.add_argument("--rss-slack-mb", type=float, default=100.0)
    parser.add_argument("--settle-s", type=float, default=30.0, help="how long the workers may take to settle")
    args = parser.parse_args()

    api = Api(args.base_url, args.project, secrets.token_hex(4))
    report = Report()
    token = api.token("hostile")
    try:
        me = int(api.call("GET", "/me", token).json()["id"])
    except Exception as exc:
        print(f"cannot reach the stack at {args.base_url}: {exc}")
        return 2
    web, workers = stack_processes(args.base_url, args.worker_pid)
    web_before = {p.pid for p in web}
    workers_before = {p.pid for p in workers}
    rss_before = rss_mb(workers)
    print(f"web processes {sorted(web_before)}, worker processes {sorted(workers_before)}")
    print("worker RSS before (MB): " + ", ".join(f"{pid}: {mb:.0f}" for pid, mb in rss_before.items()))

    # The payloads (bombs, a 3 M-point GPX) are built before pinging starts, and the pinger runs in a process of
    # its own: building and sending them holds this process's GIL, which must not count as server latency.
    checks = probes(api, token, me)
    pinger = PingerProcess(api.ws_url, token)
    pinger.start()
    time.sleep(1.0)
    for probe in checks:
        start = time.monotonic()
        try:
            probe.status = probe.send().status_code
        except requests.RequestException as exc:
            probe.error = type(exc).__name__
        probe.seconds = time.monotonic() - start
        ok = probe.status is not None and probe.expect(probe.status) and probe.seconds <= args.max_s
        report.check(f"{probe.name}: {probe.status or probe.error} in {probe.seconds:.2f} s", ok)
    sockets_alive = pinger.finish()

    p99 = pinger.p99_ms()
    report.check(f"socket ping p99 on the web processes meanwhile: {p99:.1f} ms over {len(pinger.rtts)} pings "
                 f"(≤ 100 ms)", p99 <= 100.0)
    report.check("sockets stayed open (their web processes were not killed)", sockets_alive)
    web_alive = {p.pid for p in web if p.is_running()}
    report.check("web process pids unchanged", bool(web_before) and web_alive == web_before,
                 f"before {sorted(web_before)}, after {sorted(web_alive)}")
    if not workers:
        report.check("worker processes found (pass --worker-pid)", False)
    else:
        alive = {p.pid for p in workers if p.is_running()}
        report.check("no worker process killed (pids unchanged)", alive == workers_before,
                     f"gone: {sorted(workers_before - alive)}")
        deadline = time.monotonic() + args.settle_s
        while True:
            rss_after = rss_mb([p for p in workers if p.is_running()])
            grown = {pid: rss_after[pid] - rss_before[pid] for pid in rss_after if pid in rss_before}
            if all(g <= args.rss_slack_mb for g in grown.values()) or time.monotonic() > deadline:
                break
            time.sleep(1)
        print("worker RSS after (MB): " + ", ".join(f"{pid}: {mb:.0f}" for pid, mb in rss_after.items()))
        report.check(f"worker RSS back within {args.rss_slack_mb:.0f} MB of its baseline",
                     all(g <= args.rss_slack_mb for g in grown.values()),
                     ", ".join(f"{pid}: {g:+.0f} MB" for pid, g in grown.items()))
    print(f"\n{report.passed} passed, {report.failed} failed")
    return 0 if report.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
