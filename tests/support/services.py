"""Find or start the real PostgreSQL and Redis the suite runs against.

Order: TEST_DATABASE_URL / DATABASE_URL (and the REDIS twins) when set; else the servers our machines and CI
run on 127.0.0.1 (5432 as postgres with trust auth, 6379); else throwaway embedded servers, removed at the end.
The controller process resolves them once and hands the URLs to pytest-xdist workers through the environment.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import sqlalchemy as sa

from config import normalize_database_url
from devstack.embedded import EmbeddedPostgres, EmbeddedRedis, local_postgres_ok, port_open

ENV_DB = "STRAVA_TEST_SERVER_DB_URL"
ENV_REDIS = "STRAVA_TEST_SERVER_REDIS_URL"


class Services:
    def __init__(self) -> None:
        self.tmp: Path | None = None
        self.pg: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None

    def _tmp(self) -> Path:
        if self.tmp is None:
            self.tmp = Path(tempfile.mkdtemp(prefix="strava-test-"))
        return self.tmp

    def resolve(self) -> tuple[str, str]:
        """(server database URL, Redis base URL); starts throwaway servers where nothing runs."""
        db_url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
        if db_url:
            db_url = normalize_database_url(db_url)
        elif local_postgres_ok():
            db_url = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
        else:
            self.pg = EmbeddedPostgres(self._tmp() / "pg")
            self.pg.start()
            db_url = self.pg.url("postgres")
        redis_url = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL")
        if not redis_url:
            if port_open("127.0.0.1", 6379):
                redis_url = "redis://127.0.0.1:6379/0"
            else:
                self.redis = EmbeddedRedis(self._tmp() / "redis", persist=False)
                redis_url = self.redis.start()
        return db_url, redis_url

    def stop(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        if self.pg is not None:
            self.pg.stop()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def database_url_for(server_url: str, name: str) -> str:
    url = sa.engine.make_url(server_url).set(database=name)
    return url.render_as_string(hide_password=False)


def redis_url_for(base_url: str, db_index: int) -> str:
    head = base_url.rsplit("/", 1)[0] if base_url.count("/") > 2 else base_url
    return f"{head}/{db_index}"
