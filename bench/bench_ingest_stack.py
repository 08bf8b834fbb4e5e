"""The real stack the end-to-end ingest benchmark drives: servers, a throwaway database, gunicorn and Celery.

``BenchStack`` finds PostgreSQL the way the test suite does (``DATABASE_URL``, else the server on 127.0.0.1,
else an embedded one) and creates a throwaway database from the migrations; Redis is a private server (a
shared one's database index can be flushed by a concurrent test run, losing queued messages); the run gets
its own object directory, and starts gunicorn and a Celery worker as real
subprocesses. Each child runs in its own session (process group): a terminal Ctrl-C reaches only the
benchmark, which then stops every group it started, and ``kill_worker`` can SIGKILL a worker together with
its pool children, as a crashed machine would. ``CpuMeter`` says which processes used the cores.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import psutil
import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from config import ALL_QUEUES, normalize_database_url  # noqa: E402
from devstack.embedded import (  # noqa: E402
    EmbeddedPostgres,
    EmbeddedRedis,
    create_database,
    free_port,
    local_postgres_ok,
    port_open,
)

BIN = Path(sys.executable).parent
LOCAL_DB_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
QUEUES = ",".join(ALL_QUEUES)


class StackError(RuntimeError):
    """A service did not come up (or died); the message names the log to read."""


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def redis_url_with_db(base_url: str, index: int) -> str:
    """``redis://host:port[/n]`` → the same server, database ``index``."""
    head = base_url.rsplit("/", 1)[0] if base_url.count("/") > 2 else base_url
    return f"{head}/{index}"


def stop_group(proc: subprocess.Popen[bytes], *, grace_s: float = 15.0, sig: int = signal.SIGTERM) -> None:
    """Stop a child started with ``start_new_session`` and everything it forked; SIGKILL after ``grace_s``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace_s)
    # The leader may be gone while pool children linger: the group is ours either way.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        say(f"process {proc.pid} did not exit after SIGKILL")


@dataclass
class BenchStack:
    """One benchmark's servers and processes; ``close()`` undoes everything ``open()`` and ``start_*`` did."""

    workdir: Path
    db_name: str = "strava_bench"
    redis_db: int = 9
    keep_db: bool = False
    log_level: str = "WARNING"
    #: "private": a redis-server of our own on a free port. "shared": database ``redis_db`` of REDIS_URL or
    #: 127.0.0.1:6379, which a concurrent `pytest -n N` may flush (its workers use indexes 1-15).
    redis_mode: str = "private"
    extra_env: dict[str, str] = field(default_factory=dict)

    server_db_url: str = ""
    database_url: str = ""
    redis_url: str = ""
    port: int = 0
    redis_port: int = 0
    web: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    _pg: EmbeddedPostgres | None = None
    _redis: EmbeddedRedis | None = None
    _engine: sa.Engine | None = None
    _logs: list[IO[bytes]] = field(default_factory=list)
    _worker_runs: int = 0

    # --- servers and database ---------------------------------------------------------------------------

    def open(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        db_env = os.environ.get("DATABASE_URL")
        if db_env:
            self.server_db_url = normalize_database_url(db_env)
        elif local_postgres_ok():
            self.server_db_url = LOCAL_DB_URL
        else:
            say("nothing answers on 127.0.0.1:5432; starting an embedded PostgreSQL")
            self._pg = EmbeddedPostgres(self.workdir / "pg")
            self._pg.start()
            self.server_db_url = self._pg.url("postgres")
        redis_env = os.environ.get("REDIS_URL")
        if self.redis_mode == "shared" and redis_env:
            redis_base = redis_env
        elif self.redis_mode == "shared" and port_open("127.0.0.1", 6379):
            redis_base = "redis://127.0.0.1:6379/0"
        else:
            self._redis = EmbeddedRedis(self.workdir / "redis", persist=False)
            redis_base = self._redis.start()
        self.redis_url = redis_url_with_db(redis_base, self.redis_db)
        self.redis_port = urlsplit(self.redis_url).port or 6379

        create_database(self.server_db_url, self.db_name, drop=True)
        url = sa.engine.make_url(self.server_db_url).set(database=self.db_name)
        self.database_url = url.render_as_string(hide_password=False)
        self.migrate()
        self._engine = sa.create_engine(self.database_url, pool_size=2, max_overflow=2)
        self.flush_redis()  # messages of an earlier, interrupted run would name uploads that no longer exist
        (self.workdir / "objects").mkdir(exist_ok=True)
        self.port = free_port(18080)

    def migrate(self) -> None:
        """Apply the migrations (again: a no-op unless a new one appeared since, as in a long sweep)."""
        from models import migrate

        migrate.upgrade(self.database_url)

    def flush_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=3, socket_timeout=10)
        try:
            client.flushdb()
        finally:
            client.close()

    def sql(self, query: str, **params: Any) -> list[Any]:
        assert self._engine is not None
        with self._engine.connect() as conn:
            return list(conn.execute(sa.text(query), params))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        for key in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "PUBSUB_REDIS_URL"):
            env.pop(key, None)  # all three follow REDIS_URL, i.e. this run's database index
        env.update({
            "APP_ENV": "development", "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url,
            "STORAGE_BACKEND": "local", "STORAGE_LOCAL_DIR": str(self.workdir / "objects"),
            "LOG_LEVEL": self.log_level, "PYTHONUNBUFFERED": "1",
            # The clients sign in with dev tokens: emulator mode, which the config allows on loopback binds only.
            "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099", "WEB_BIND_HOST": "127.0.0.1",
            # Each client thread is its own athlete and stays far below this; the limiter still runs.
            "RATE_LIMIT_WRITES_PER_MIN": "1000000",
        })
        env.update(self.extra_env)
        env.update(extra)
        return env

    # --- processes ----------------------------------------------------------------------------------------

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed in close()
        self._logs.append(log)
        log.write(f"\n==== {time.strftime('%H:%M:%S')} {' '.join(cmd)}\n".encode())
        log.flush()
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def start_web(self, workers: int, threads: int, timeout_s: float = 60.0) -> None:
        cmd = [str(BIN / "gunicorn"), "--worker-class", "gthread", "--workers", str(workers), "--threads",
               str(threads), "--bind", f"127.0.0.1:{self.port}", "--graceful-timeout", "5", "--timeout", "60",
               "webapp:create_app()"]
        self.web = self._spawn("web", cmd, self.env())
        self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float) -> None:
        """Poll /readyz until PostgreSQL and Redis both answer through the app, or give up."""
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            if self.web is None or self.web.poll() is not None:
                raise StackError(f"gunicorn exited; see {self.workdir / 'web.log'}")
            try:
                resp = requests.get(f"{self.base_url}/readyz", timeout=2)
                if resp.status_code == 200:
                    return
                last = resp.text[:200]
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.1)
        raise StackError(f"/readyz not ready after {timeout_s:.0f}s ({last}); see {self.workdir / 'web.log'}")

    def start_worker(self, concurrency: int, **env_extra: str) -> subprocess.Popen[bytes]:
        """A prefork worker on every queue; proven alive by the caller (a warm-up upload)."""
        self._worker_runs += 1
        cmd = [str(BIN / "celery"), "-A", "webapp.worker", "worker", "--queues", QUEUES, "--pool", "prefork",
               "--concurrency", str(concurrency), "--loglevel", self.log_level,
               "--hostname", f"bench{self._worker_runs}-{os.getpid()}@%h"]
        self.worker = self._spawn("worker", cmd, self.env(**env_extra))
        return self.worker

    def kill_worker(self) -> None:
        """SIGKILL the worker and its pool children at once: no warm shutdown, no message handed back."""
        if self.worker is not None:
            stop_group(self.worker, grace_s=5, sig=signal.SIGKILL)
            self.worker = None

    def stop_worker(self) -> None:
        if self.worker is not None:
            stop_group(self.worker)
            self.worker = None

    def stop_web(self) -> None:
        if self.web is not None:
            stop_group(self.web)
            self.web = None

    def check_alive(self) -> None:
        for name, proc in (("web", self.web), ("worker", self.worker)):
            if proc is not None and proc.poll() is not None:
                raise StackError(f"{name} exited with {proc.returncode}; see {self.workdir / (name + '.log')}")

    def celery_call(self, task: str, timeout_s: float = 60.0, **env_extra: str) -> str:
        """Send one task by name (as an operator would) with this run's settings."""
        cmd = [str(BIN / "celery"), "-A", "webapp.worker", "call", task]
        out = subprocess.run(cmd, env=self.env(**env_extra), cwd=ROOT, capture_output=True, text=True,
                             timeout=timeout_s, check=False)
        if out.returncode != 0:
            raise StackError(f"celery call {task} failed: {out.stderr.strip()[-500:]}")
        return out.stdout.strip()

    def close(self) -> None:
        """Stop everything started; drop the throwaway database unless asked to keep it. Never raises."""
        for step in (self.stop_worker, self.stop_web):
            try:
                step()
            except Exception as exc:
                say(f"cleanup: {step.__name__} failed: {exc!r}")
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self.redis_url:
            try:
                self.flush_redis()
            except Exception as exc:
                say(f"cleanup: could not flush {self.redis_url}: {exc!r}")
        if self.server_db_url and not self.keep_db:
            try:
                engine = sa.create_engine(self.server_db_url, isolation_level="AUTOCOMMIT",
                                          poolclass=sa.pool.NullPool)
                with engine.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
                engine.dispose()
            except Exception as exc:
                say(f"cleanup: could not drop database {self.db_name}: {exc!r}")
        for server in (self._redis, self._pg):
            if server is not None:
                try:
                    server.stop()
                except Exception as exc:
                    say(f"cleanup: could not stop {type(server).__name__}: {exc!r}")
        for log in self._logs:
            log.close()
        self._logs.clear()


# --- CPU accounting -------------------------------------------------------------------------------------------

# "postgres: 15/main: postgres strava_bench 127.0.0.1(34608) SELECT" - a client backend and its database.
_BACKEND = re.compile(r"postgres: (?:\S+: )?\S+ (\S+) (?:\S+\(\d+\)|\[local\])")


def _cpu_s(proc: psutil.Process) -> float | None:
    try:
        t = proc.cpu_times()
        return float(t.user + t.system)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def _tree(pid: int | None) -> list[psutil.Process]:
    if pid is None:
        return []
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@dataclass
class CpuSample:
    wall: float
    machine_busy: float
    per_group: dict[str, dict[int, float]]


class CpuMeter:
    """CPU seconds per group of processes between ``start()`` and ``stop()``, and the machine's busy time.

    Groups: the web server, the worker's main process (broker I/O, events, acks), its pool children (the
    tasks themselves), PostgreSQL backends of the benchmark database and the server's own processes, Redis,
    and the benchmark client. "other" is what the machine did besides them (other users' work included).
    """

    def __init__(self, stack: BenchStack) -> None:
        self.stack = stack
        self._start: CpuSample | None = None

    def _groups(self) -> dict[str, Iterable[psutil.Process]]:
        web = _tree(self.stack.web.pid if self.stack.web else None)
        worker = _tree(self.stack.worker.pid if self.stack.worker else None)
        groups: dict[str, list[psutil.Process]] = {
            "web (gunicorn)": web, "worker main": worker[:1], "worker pool": worker[1:],
            "postgres (bench db)": [], "postgres (server)": [], "redis": [], "bench client": [psutil.Process()],
        }
        port = str(self.stack.redis_port)
        for proc in psutil.process_iter(["name", "cmdline"]):
            name = proc.info.get("name") or ""
            if name.startswith("redis-server"):
                cmd = " ".join(proc.info.get("cmdline") or [])
                if f":{port}" in cmd or f"--port {port}" in cmd:  # this run's server only
                    groups["redis"].append(proc)
            elif name == "postgres" or name.startswith("postgres:"):
                cmd = " ".join(proc.info.get("cmdline") or [])
                match = _BACKEND.search(cmd)
                if match is None:
                    groups["postgres (server)"].append(proc)
                elif match.group(1) == self.stack.db_name:
                    groups["postgres (bench db)"].append(proc)
        return groups

    def _sample(self) -> CpuSample:
        t = psutil.cpu_times()
        busy = float(sum(t) - t.idle - getattr(t, "iowait", 0.0))
        per_group = {g: {p.pid: s for p in procs if (s := _cpu_s(p)) is not None}
                     for g, procs in self._groups().items()}
        return CpuSample(time.monotonic(), busy, per_group)

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> dict[str, float]:
        """CPU seconds per group over the window, plus "machine busy", "other" and "wall"."""
        assert self._start is not None
        end = self._sample()
        out: dict[str, float] = {}
        for group, pids in end.per_group.items():
            before = self._start.per_group.get(group, {})
            # A process born inside the window counts in full (before = 0).
            out[group] = sum(max(0.0, s - before.get(pid, 0.0)) for pid, s in pids.items())
        out["machine busy"] = end.machine_busy - self._start.machine_busy
        out["other"] = max(0.0, out["machine busy"] - sum(v for k, v in out.items() if k != "machine busy"))
        out["wall"] = end.wall - self._start.wall
        return out


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
