"""WebSocket figures on the production server model: 2 gunicorn gevent web processes on one port.

Opens ``--sockets`` authenticated sockets (one athlete each, dev tokens, spread over both processes by the
kernel), then measures
- chat delivery latency: ``chat.send`` on a socket served by one process (A) → ``chat.message`` on the
  recipient's socket served by the other (B): validation, the transaction, the commit in PostgreSQL, publish,
  fan-out; p50/p99, for each rate of ``--rates`` (after ``--warmup`` unmeasured messages), with the ack
  round trip on A, the web processes' CPU per message (net of their idle CPU, measured first: heartbeats and
  presence of the idle sockets) and the load average while measuring;
- raw pub/sub delivery latency: a PUBLISH (from this process) → receipt on a socket, p50/p99;
- open sockets held per process and RSS per socket (RSS delta of each web process / its sockets).

The client side runs on gevent greenlets in this process; a frame wakes the greenlet waiting for it (no
polling, so the bench itself takes little CPU from the web processes). The load average is the machine's:
other work running at the same time inflates the latencies (not the CPU per message); compare with a low rate.
``--hogs N`` runs N busy-looping processes during the measured chat runs only, a reproducible stand-in for a
machine loaded by other work (load average ≈ N + the bench's own), to compare two versions under equal load.
Usage: ``python bench/bench_ws.py [--sockets 2000] [--rates 20,5] [--hogs 4]``.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402
import websocket  # noqa: E402
from gevent.event import AsyncResult  # noqa: E402
from gevent.pool import Pool  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ingest_stack import BIN, BenchStack, say  # noqa: E402

PROJECT = "demo-strava-plus-one"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, need))
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < need:
        say(f"fd limit {target} < {need}: fewer sockets will open")


class Sock:
    """One bench socket: a greenlet reads frames and hands the interesting ones to ``waiters``."""

    def __init__(self, url: str, token: str) -> None:
        self.ws = websocket.create_connection(url, header=[f"Authorization: Bearer {token}"], timeout=60)
        self.token = token
        hello = json.loads(self.ws.recv())
        assert hello["type"] == "hello", hello
        self.user_id: int = hello["user_id"]
        self.pid: int = hello["server"]["pid"]
        self.waiting: dict[str, AsyncResult] = {}  # key → set to the arrival time (perf_counter) of its frame
        self.other: Counter[str] = Counter()
        self.reader = gevent.spawn(self._read)

    def expect(self, key: str) -> AsyncResult:
        """Register interest in a frame *before* causing it; ``wait`` then returns its arrival time."""
        self.waiting[key] = result = AsyncResult()
        return result

    def _read(self) -> None:
        try:
            while True:
                data = self.ws.recv()
                now = time.perf_counter()
                frame = json.loads(data)
                kind = frame.get("type")
                if kind == "chat.message":
                    key = "chat:" + frame["message"]["client_id"]
                elif kind == "bench.probe":
                    key = "probe:" + frame["key"]
                elif kind == "chat.ack":
                    key = "ack:" + frame["client_id"]
                else:
                    self.other[kind if kind != "error" else "error:" + frame.get("code", "")] += 1
                    continue
                waiter = self.waiting.pop(key, None)
                if waiter is not None:
                    waiter.set(now)
        except Exception:
            return


def wait(result: AsyncResult, timeout: float = 5.0) -> float | None:
    try:
        return float(result.get(timeout=timeout))
    except gevent.Timeout:
        return None


def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def web_worker_rss(master_pid: int) -> dict[int, int]:
    return {child.pid: child.memory_info().rss for child in psutil.Process(master_pid).children()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sockets", type=int, default=2000)
    ap.add_argument("--pairs", type=int, default=20, help="chat pairs (sender and recipient on different processes)")
    ap.add_argument("--messages", type=int, default=300, help="chat messages per rate (and as many raw publishes)")
    ap.add_argument("--rates", default="20", help="comma-separated messages per second, spread over the pairs; "
                                                  "each rate is measured in turn")
    ap.add_argument("--warmup", type=int, default=40, help="unmeasured chat messages first (pools, caches)")
    ap.add_argument("--hogs", type=int, default=0, help="busy-looping processes during the measured chat runs")
    ap.add_argument("--idle-s", type=float, default=25.0,
                    help="seconds of idle CPU measured before the chat (one heartbeat period: pings and presence)")
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    os.chdir(ROOT)
    raise_fd_limit(args.sockets * 2 + 1000)
    from webapp.auth import dev_token

    workdir = Path(tempfile.mkdtemp(prefix="strava-bench-ws-"))
    # A database of its own per run: two runs at once (another engineer benchmarking) must not drop each other's.
    stack = BenchStack(workdir, db_name=f"strava_bench_ws_{os.getpid()}")
    try:
        stack.open()
        env = stack.env(PORT=str(stack.port), WEB_BIND_HOST="127.0.0.1", WEB_CONCURRENCY="2",
                        WEB_WORKER_CLASS="gevent", WEB_WORKER_CONNECTIONS="5000", WEB_ACCESS_LOG="",
                        DATABASE_POOL_SIZE="10")
        stack.web = stack._spawn("web", [str(BIN / "gunicorn"), "--config", "python:config.gunicorn",
                                         "webapp:create_app()"], env)
        stack.wait_ready(60)
        base, url = stack.base_url, f"ws://127.0.0.1:{stack.port}/api/v1/ws"
        master = stack.web.pid

        # Warm both processes (imports, pools, the hub) with a few sockets, then take the RSS baseline.
        warm = [Sock(url, dev_token(f"warm{i}@example.com", PROJECT)) for i in range(8)]
        for s in warm:
            s.ws.close()
        gevent.sleep(1.0)
        rss0 = web_worker_rss(master)

        say(f"opening {args.sockets} sockets")
        t0 = time.perf_counter()
        socks: list[Sock] = []
        failures: Counter[str] = Counter()

        def open_one(i: int) -> None:
            try:
                socks.append(Sock(url, dev_token(f"ws{i}@example.com", PROJECT)))
            except Exception as exc:
                failures[type(exc).__name__] += 1

        Pool(50).map(open_one, range(args.sockets))
        open_s = time.perf_counter() - t0
        gevent.sleep(2.0)
        rss1 = web_worker_rss(master)
        per_pid = Counter(s.pid for s in socks)
        say(f"opened {len(socks)} sockets in {open_s:.1f} s ({len(socks) / open_s:.0f}/s); failures {dict(failures)}")

        pids = sorted(per_pid)
        if len(pids) < 2:
            say("all sockets landed on one process; cannot measure cross-process delivery")
            return 1
        a, b = pids[0], pids[1]
        senders = [s for s in socks if s.pid == a][: args.pairs]
        receivers = [s for s in socks if s.pid == b][: args.pairs]
        pairs = list(zip(senders, receivers, strict=False))

        # Chat: one direct conversation per pair, created over REST (the same port).
        http = requests.Session()
        conversations = []
        for snd, rcv in pairs:
            resp = http.post(f"{base}/api/v1/conversations", json={"kind": "direct", "user_id": rcv.user_id},
                             headers={"Authorization": f"Bearer {snd.token}"}, timeout=30)
            resp.raise_for_status()
            conversations.append(resp.json()["id"])

        def chat_run(count: int, rate: float, offset: int) -> dict[str, Any]:
            """``count`` messages at ``rate``/s round-robin over the pairs; latencies and CPU per process."""
            interval = 1.0 / rate
            deliver_ms: list[float] = []
            ack_ms: list[float] = []
            slowest: list[tuple[float, float]] = []  # (latency ms, seconds into the run)
            lost = 0

            def one(snd: Sock, rcv: Sock, conv: int, cid: str) -> None:
                nonlocal lost
                got_message, got_ack = rcv.expect("chat:" + cid), snd.expect("ack:" + cid)
                start = time.perf_counter()
                snd.ws.send(json.dumps({"type": "chat.send", "conversation_id": conv, "client_id": cid,
                                        "body": "on my way, 5 km to go"}))
                arrived, acked = wait(got_message), wait(got_ack)
                if arrived is None:
                    lost += 1
                else:
                    deliver_ms.append((arrived - start) * 1000)
                    slowest.append(((arrived - start) * 1000, start - t0))
                if acked is not None:
                    ack_ms.append((acked - start) * 1000)

            load0 = os.getloadavg()[0]
            cpu0 = {pid: cpu_s(pid) for pid in pids}
            t0 = time.perf_counter()
            jobs = []
            for i in range(count):
                k = (offset + i) % len(pairs)
                snd, rcv = pairs[k]
                jobs.append(gevent.spawn(one, snd, rcv, conversations[k], uuid.uuid4().hex))
                # Paced against the clock, not by sleeping a fixed interval: the rate holds when the loop lags.
                gevent.sleep(max(0.0, t0 + (i + 1) * interval - time.perf_counter()))
            gevent.joinall(jobs)
            elapsed = time.perf_counter() - t0
            cpu = {pid: cpu_s(pid) - cpu0[pid] for pid in pids}
            slowest.sort(reverse=True)
            return {"rate": rate, "count": count, "deliver_ms": deliver_ms, "ack_ms": ack_ms, "lost": lost,
                    "slowest": slowest[:5], "wall_start": time.time() - elapsed,
                    "elapsed": elapsed, "cpu": cpu, "load": (load0, os.getloadavg()[0])}

        # The processes' CPU with the sockets open and no traffic (heartbeats, presence refreshes), to subtract.
        idle0 = {pid: cpu_s(pid) for pid in pids}
        t_idle = time.perf_counter()
        gevent.sleep(args.idle_s)
        idle_s = time.perf_counter() - t_idle
        idle_rate = {pid: (cpu_s(pid) - idle0[pid]) / idle_s for pid in pids}
        if args.warmup:
            chat_run(args.warmup, max(rates), 0)
        runs = []
        for n, rate in enumerate(rates):
            hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
            try:
                runs.append(chat_run(args.messages, rate, args.warmup + n * args.messages))
            finally:
                for hog in hogs:
                    hog.kill()
                    hog.wait()

        # Raw pub/sub: PUBLISH from this process → a socket on process b.
        from models.pubsub import pubsub

        pubsub.configure(stack.redis_url)
        probe_ms: list[float] = []
        for i in range(args.messages):
            rcv = receivers[i % len(receivers)]
            key = f"{i}"
            got = rcv.expect("probe:" + key)
            start = time.perf_counter()
            pubsub.publish_users([rcv.user_id], {"type": "bench.probe", "key": key})
            arrived = wait(got)
            if arrived is not None:
                probe_ms.append((arrived - start) * 1000)
            gevent.sleep(1.0 / max(rates))

        alive = sum(1 for s in socks if s.ws.connected)
        errors: Counter[str] = Counter()
        for s in socks:
            errors.update(s.other)
        print()
        print(f"web model               gunicorn gevent, 2 processes, one port ({base})")
        print(f"sockets open            {alive} of {args.sockets} requested (handshake failures {dict(failures)})")
        for pid in pids:
            delta = rss1.get(pid, 0) - rss0.get(pid, 0)
            n = per_pid[pid]
            print(f"  process {pid}          {n} sockets, RSS {rss1.get(pid, 0) / 2**20:.0f} MiB, "
                  f"+{delta / 2**20:.1f} MiB → {delta / max(n, 1) / 1024:.1f} KiB per socket")
        total_delta = sum(rss1.get(p, 0) - rss0.get(p, 0) for p in pids)
        print(f"memory per socket       {total_delta / max(len(socks), 1) / 1024:.1f} KiB (RSS delta / sockets)")
        print(f"open rate               {len(socks) / open_s:.0f} handshakes/s (token check, provisioning, subscribe)")
        for run in runs:
            deliver_ms, ack_ms = run["deliver_ms"], run["ack_ms"]
            print(f"chat latency @{run['rate']:g}/s     p50 {pct(deliver_ms, 50):.1f} ms  "
                  f"p99 {pct(deliver_ms, 99):.1f} ms  max {max(deliver_ms, default=float('nan')):.1f} ms  "
                  f"({len(deliver_ms)} of {run['count']} "
                  f"delivered, {run['lost']} lost; chat.send on pid {a} → chat.message on pid {b}, "
                  f"{len(pairs)} pairs, {run['elapsed']:.1f} s)")
            print(f"  ack on A              p50 {pct(ack_ms, 50):.1f} ms  p99 {pct(ack_ms, 99):.1f} ms")
            # A cluster of slow messages at one moment is one stall (GC, a slow fsync, the machine), not a trend.
            print("  slowest               " + ", ".join(f"{ms:.0f} ms at +{at:.2f} s" for ms, at in run["slowest"])
                  + f" (run started {time.strftime('%H:%M:%S', time.localtime(run['wall_start']))})")
            for pid in pids:
                used, idle = run["cpu"][pid], idle_rate[pid] * run["elapsed"]
                print(f"  web CPU {'A' if pid == a else 'B'} ({pid})    {used:.2f} s over {run['elapsed']:.1f} s → "
                      f"{1000 * used / max(run['count'], 1):.2f} ms per message, "
                      f"{1000 * (used - idle) / max(run['count'], 1):.2f} ms net of idle ({idle_rate[pid]:.3f} s/s)")
            print(f"  load average          {run['load'][0]:.2f} → {run['load'][1]:.2f} (1 min, 2 cores)"
                  + (f"; {args.hogs} busy-looping processes running" if args.hogs else ""))
        print(f"pub/sub latency         p50 {pct(probe_ms, 50):.2f} ms  p99 {pct(probe_ms, 99):.2f} ms  "
              f"({len(probe_ms)} of {args.messages}; PUBLISH → socket on pid {b})")
        print(f"other frames seen       {dict(errors) or 'none'}")
        print(f"load average            {os.getloadavg()[0]:.1f} (2 cores; figures are inflated by other load)")
        for s in socks:
            s.ws.close()
        return 0
    finally:
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
