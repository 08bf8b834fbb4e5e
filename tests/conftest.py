"""Test harness: real PostgreSQL and Redis, schema from the migrations, a savepoint per test.

Each pytest-xdist worker gets its own database (``strava_test_<worker>``) and its own Redis database index,
so the suite runs in parallel. Pure-algorithm tests (tests/domain/algorithms) request none of these fixtures.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from config import ALL_QUEUES
from tests.support.services import ENV_DB, ENV_REDIS, Services, database_url_for, redis_url_for
from tests.support.tokens import CertServer, SigningKey, id_token_claims

PROJECT_ID = "strava-plus-one-test"
#: Fixtures of one area kept beside its helpers.
pytest_plugins = ("tests.support.foods",)
_services = Services()


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or os.environ.get(ENV_DB):
        return  # an xdist worker: the controller resolved the servers already
    # Databases are named per run, so two runs on one machine (two terminals) never drop each other's.
    os.environ.setdefault("STRAVA_TEST_RUN", str(os.getpid()))
    db_url, redis_url = _services.resolve()
    os.environ[ENV_DB] = db_url
    os.environ[ENV_REDIS] = redis_url


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        _services.stop()


def _worker_index() -> tuple[str, int]:
    name = os.environ.get("PYTEST_XDIST_WORKER", "main")
    index = int(name[2:]) + 1 if name.startswith("gw") else 1
    return name, min(index, 15)


@pytest.fixture(scope="session")
def test_key() -> SigningKey:
    return SigningKey()


@pytest.fixture(scope="session")
def cert_server(test_key: SigningKey) -> Iterator[CertServer]:
    server = CertServer({test_key.kid: test_key.cert_pem})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database for this worker, built by running the migrations (the only way a schema is built)."""
    from devstack.embedded import create_database, drop_database
    from models import migrate

    name, _ = _worker_index()
    server_url = os.environ[ENV_DB]
    db_name = f"strava_test_{os.environ.get('STRAVA_TEST_RUN', 'x')}_{name}"
    create_database(server_url, db_name, drop=True)
    url = database_url_for(server_url, db_name)
    migrate.upgrade(url)
    yield url
    from models import db

    if db.engine is not None:
        db.engine.dispose()
    # Best effort: the next run's databases have other names anyway.
    with contextlib.suppress(Exception):
        drop_database(server_url, db_name)


@pytest.fixture(scope="session")
def redis_url() -> str:
    _, index = _worker_index()
    return redis_url_for(os.environ[ENV_REDIS], index)


@pytest.fixture(scope="session")
def app(database_url: str, redis_url: str, cert_server: CertServer, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    from webapp import create_app

    os.environ.pop("FIREBASE_AUTH_EMULATOR_HOST", None)
    os.environ.update({
        "APP_ENV": "testing", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
        "FIREBASE_PROJECT_ID": PROJECT_ID, "FIREBASE_CERTS_URL": cert_server.url,
        "STORAGE_BACKEND": "local", "STORAGE_LOCAL_DIR": str(tmp_path_factory.mktemp("objects")),
        "LOG_LEVEL": "WARNING",
    })
    for key in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "PUBSUB_REDIS_URL"):
        os.environ.pop(key, None)
    return create_app("testing")


@pytest.fixture
def redis_clean(app: Flask) -> Iterator[Any]:
    from models.redis_store import redis_store

    redis_store.client.flushdb()
    yield redis_store.client


@pytest.fixture
def db_tx(app: Flask) -> Iterator[sa.Connection]:
    """Everything a test writes (through the API or directly) lives in one transaction, rolled back after.

    The app's commits become savepoint releases; only this thread is bound (models.db.Database.bind_thread).
    """
    from models import db

    assert db.engine is not None
    connection = db.engine.connect()
    outer = connection.begin()
    db.bind_thread(connection)
    try:
        yield connection
    finally:
        db.bind_thread(None)
        outer.rollback()
        connection.close()


@pytest.fixture
def client(app: Flask, db_tx: sa.Connection, redis_clean: Any) -> FlaskClient:
    return app.test_client()


TokenFactory = Callable[..., str]


@pytest.fixture
def make_token(test_key: SigningKey) -> TokenFactory:
    def make(email: str, **overrides: Any) -> str:
        uid = "uid-" + hashlib.sha1(email.encode()).hexdigest()[:20]
        return test_key.sign(id_token_claims(uid, PROJECT_ID, email=email, **overrides))

    return make


def _login_with(client: FlaskClient, make_token: TokenFactory) -> Callable[..., tuple[dict[str, str], int]]:
    def do(name: str, **profile: Any) -> tuple[dict[str, str], int]:
        headers = {"Authorization": f"Bearer {make_token(name + '@example.com')}"}
        resp = client.get("/api/v1/me", headers=headers)
        assert resp.status_code == 200, resp.json
        if profile:
            assert client.patch("/api/v1/me", json=profile, headers=headers).status_code == 200
        return headers, resp.json["id"]

    return do


@pytest.fixture
def login(client: FlaskClient, make_token: TokenFactory) -> Callable[..., tuple[dict[str, str], int]]:
    """login("ann") → (headers, user id): signs a token and provisions the athlete with a first request."""
    return _login_with(client, make_token)


@pytest.fixture(scope="session")
def celery_app(app: Flask) -> Any:
    celery = app.extensions["celery"]

    # Registered before any worker starts (a running worker knows only the tasks it started with).
    @celery.task(name="tests.probe", bind=True)
    def probe(self: Any) -> dict[str, Any]:
        from flask import current_app

        from models import db

        return {"app": current_app.name, "db": db.session.execute(sa.text("SELECT 41 + 1")).scalar(),
                "queue": self.request.delivery_info.get("routing_key")}

    return celery


@pytest.fixture(scope="session")
def celery_worker(celery_app: Any) -> Iterator[Any]:
    """A real Celery worker (consuming from Redis in a thread of this process) for the whole session."""
    from celery.contrib.testing.worker import start_worker

    with start_worker(celery_app, pool="threads", concurrency=2, perform_ping_check=False,
                      queues=list(ALL_QUEUES), loglevel="WARNING",
                      shutdown_timeout=30) as worker:
        yield worker


@pytest.fixture
def committed(app: Flask, redis_clean: Any) -> Iterator[None]:
    """For tests whose rows must be visible to the worker: real commits, all tables emptied afterwards."""
    from models import Base, db

    db.session.remove()
    yield
    db.session.remove()
    assert db.engine is not None
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    # Tasks the test left behind (a delayed push delivery, a feed backfill, a board rebuild) may still be running
    # on the session's worker. Ids are not restarted, so such a task finds its rows gone and does nothing, rather
    # than acting on the next test's rows that reuse its ids. TRUNCATE can still deadlock with one: PostgreSQL
    # cancels one side, and we retry (they finish quickly).
    for attempt in range(5):
        try:
            with db.engine.begin() as conn:
                conn.execute(sa.text(f"TRUNCATE {tables} CASCADE"))
            break
        except sa.exc.OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


@pytest.fixture
def live_client(app: Flask, committed: None, celery_worker: Any) -> FlaskClient:
    """A client whose writes are really committed, with the real worker running the pipeline."""
    return app.test_client()


@pytest.fixture
def live_login(live_client: FlaskClient, make_token: TokenFactory) -> Callable[..., tuple[dict[str, str], int]]:
    return _login_with(live_client, make_token)


@pytest.fixture(scope="session")
def ws_server(app: Flask) -> Iterator[Any]:
    """The app served for real over HTTP + WebSocket (werkzeug threaded server in a thread, committed DB).

    Tests that open sockets need committed rows: request ``ws_connect`` (which brings ``committed``) and create
    users with ``live_login`` or real commits, not with ``client``/``login``/``db_tx``.
    """
    from tests.support.ws import WSServer

    server = WSServer(app)
    yield server
    server.stop()


@pytest.fixture
def ws_connect(ws_server: Any, committed: None) -> Iterator[Callable[..., Any]]:
    """ws_connect(token=None, ticket=None, headers=None, **query) → an open ``tests.support.ws.WSClient``.

    Returns once the server's "hello" arrived (the socket is then subscribed to its user's channel) or once the
    server closed it (``client.close_code``/``close_reason`` set). Every client is closed after the test.
    """
    from tests.support.ws import connect

    clients: list[Any] = []

    def open_socket(token: str | None = None, ticket: str | None = None, headers: dict[str, str] | None = None,
                    **query: Any) -> Any:
        client = connect(ws_server, token=token, ticket=ticket, headers=headers, **query)
        clients.append(client)
        return client

    yield open_socket
    for client in clients:
        client.close()
