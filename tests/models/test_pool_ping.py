"""The pool pings a connection only after it idled (models.db.ping_when_idle), against a real PostgreSQL whose
backend is terminated under the pooled connection."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

# The module (``models.db`` as an attribute is the package's Database instance).
db_module = importlib.import_module("models.db")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    db_module.ping_when_idle(engine)
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(database_url: str, pid: int) -> None:
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar_one()
    finally:
        admin.dispose()


def test_an_idle_connection_that_died_is_replaced_before_use(engine: Engine, database_url: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    first = _backend_pid(engine)
    _terminate(database_url, first)
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 0.0)  # every checkout counts as after an idle spell

    assert _backend_pid(engine) != first  # no error reached the caller: the ping found it dead


def test_a_connection_back_within_the_window_is_not_pinged(engine: Engine, database_url: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 3600.0)
    first = _backend_pid(engine)
    _terminate(database_url, first)

    # No ping: the statement itself meets the dead connection, as a disconnect ...
    with pytest.raises(OperationalError) as raised:
        _backend_pid(engine)
    assert raised.value.connection_invalidated
    # ... which drops it from the pool: the next use gets a new connection.
    assert _backend_pid(engine) != first


def test_a_new_connection_is_not_pinged(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 0.0)
    pings: list[object] = []
    monkeypatch.setattr(engine.dialect, "do_ping", lambda dbapi_connection: pings.append(dbapi_connection))

    _backend_pid(engine)  # opened for this checkout
    assert pings == []
    _backend_pid(engine)  # back from the pool
    assert len(pings) == 1
