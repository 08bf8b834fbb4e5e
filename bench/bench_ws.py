"""WebSocket figures on the production server model: 2 gunicorn gevent web processes on one port.

Opens ``--sockets`` authenticated sockets (one athlete each, dev tokens, spread over both processes by the
kernel), then measures
- chat delivery latency: ``chat.send`` on a socket served by one process → ``chat.message`` on the recipient's
  socket served by the other (commit in PostgreSQL, publish, fan-out), p50/p99;
- raw pub/sub delivery latency: a PUBLISH (from this process) → receipt on a socket, p50/p99;
- open sockets held per process and RSS per socket (RSS delta of each web process / its sockets).

The client side runs on gevent greenlets in this process. Usage: ``python bench/bench_ws.py [--sockets 2000]``.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
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
        self.inbox: dict[str, tuple[float, dict[str, Any]]] = {}  # key → (arrival perf_counter, frame)
        self.other: Counter[str] = Counter()
        self.reader = gevent.spawn(self._read)

    def _read(self) -> None:
        try:
            while True:
                data = self.ws.recv()
                now = time.perf_counter()
                frame = json.loads(data)
                kind = frame.get("type")
                if kind == "chat.message":
                    self.inbox["chat:" + frame["message"]["client_id"]] = (now, frame)
                elif kind == "bench.probe":
                    self.inbox["probe:" + frame["key"]] = (now, frame)
                elif kind == "chat.ack":
                    self.inbox["ack:" + frame["client_id"]] = (now, frame)
                else:
                    self.other[kind if kind != "error" else "error:" + frame.get("code", "")] += 1
        except Exception:
            return

    def wait_for(self, key: str, timeout: float = 5.0) -> float | None:
        deadline = time.perf_counter() + timeout
        while key not in self.inbox:
            if time.perf_counter() > deadline:
                return None
            gevent.sleep(0.0005)
        return self.inbox.pop(key)[0]


def web_worker_rss(master_pid: int) -> dict[int, int]:
    return {child.pid: child.memory_info().rss for child in psutil.Process(master_pid).children()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sockets", type=int, default=2000)
    ap.add_argument("--pairs", type=int, default=20, help="chat pairs (sender and recipient on different processes)")
    ap.add_argument("--messages", type=int, default=300, help="chat messages (and as many raw publishes)")
    ap.add_argument("--rate", type=float, default=20.0, help="messages per second, spread over the pairs")
    args = ap.parse_args()
    os.chdir(ROOT)
    raise_fd_limit(args.sockets * 2 + 1000)
    from webapp.auth import dev_token

    workdir = Path(tempfile.mkdtemp(prefix="strava-bench-ws-"))
    stack = BenchStack(workdir, db_name="strava_bench_ws")
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

        interval = 1.0 / args.rate
        chat_ms: list[float] = []
        lost = 0
        cpu0 = {pid: psutil.Process(pid).cpu_times() for pid in pids}
        t_chat = time.perf_counter()
        jobs = []
        for i in range(args.messages):
            k = i % len(pairs)
            snd, rcv = pairs[k]
            client_id = uuid.uuid4().hex

            def one(snd: Sock = snd, rcv: Sock = rcv, conv: int = conversations[k], cid: str = client_id) -> None:
                nonlocal lost
                start = time.perf_counter()
                snd.ws.send(json.dumps({"type": "chat.send", "conversation_id": conv, "client_id": cid,
                                        "body": "on my way, 5 km to go"}))
                arrived = rcv.wait_for("chat:" + cid)
                if arrived is None:
                    lost += 1
                else:
                    chat_ms.append((arrived - start) * 1000)

            jobs.append(gevent.spawn(one))
            gevent.sleep(interval)
        gevent.joinall(jobs)
        chat_s = time.perf_counter() - t_chat
        cpu1 = {pid: psutil.Process(pid).cpu_times() for pid in pids}

        # Raw pub/sub: PUBLISH from this process → a socket on process b.
        from models.pubsub import pubsub

        pubsub.configure(stack.redis_url)
        probe_ms: list[float] = []
        for i in range(args.messages):
            rcv = receivers[i % len(receivers)]
            key = f"{i}"
            start = time.perf_counter()
            pubsub.publish_users([rcv.user_id], {"type": "bench.probe", "key": key})
            arrived = rcv.wait_for("probe:" + key)
            if arrived is not None:
                probe_ms.append((arrived - start) * 1000)
            gevent.sleep(interval)

        alive = sum(1 for s in socks if s.ws.connected)
        errors = Counter()
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
        print(f"chat latency            p50 {pct(chat_ms, 50):.1f} ms  p99 {pct(chat_ms, 99):.1f} ms  max "
              f"{max(chat_ms, default=float('nan')):.1f} ms  ({len(chat_ms)} of {args.messages} delivered, "
              f"{lost} lost; chat.send on pid {a} → chat.message on pid {b}, {args.rate:g}/s over "
              f"{len(pairs)} pairs, {chat_s:.1f} s)")
        print(f"pub/sub latency         p50 {pct(probe_ms, 50):.2f} ms  p99 {pct(probe_ms, 99):.2f} ms  "
              f"({len(probe_ms)} of {args.messages}; PUBLISH → socket on pid {b})")
        for pid in pids:
            used = (cpu1[pid].user + cpu1[pid].system) - (cpu0[pid].user + cpu0[pid].system)
            print(f"web CPU during chat     pid {pid}: {used:.2f} s CPU over {chat_s:.1f} s")
        print(f"other frames seen       {dict(errors) or 'none'}")
        print(f"load average            {os.getloadavg()[0]:.1f} (2 cores; figures are inflated by other load)")
        for s in socks:
            s.ws.close()
        return 0
    finally:
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
