"""A new worker pool process warms up before its first task (tasks.app, domain.segments.warmup): wired to
Celery's worker_process_init, read-only, leaving no transaction open, and harmless when it fails or hangs."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from celery.signals import worker_process_init

from domain.segments import efforts, warmup
from tasks import app as tasks_app
from tasks import memory


@pytest.fixture
def keep_memory_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    # The signal's other receiver records the process's memory baseline: put it back after the test.
    monkeypatch.setattr(memory, "_baseline", memory._baseline)


def test_pool_process_init_runs_the_warm_up(app, keep_memory_baseline, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(warmup, "warm_up", lambda: calls.append(threading.current_thread().name) or {})
    worker_process_init.send(sender=None)  # what Celery sends in each pool process it starts
    assert calls == ["warm-up"]


def test_warm_up_leaves_no_transaction_open_and_no_cached_segment(app, redis_clean):
    from models import db

    assert db.engine is not None
    pids: set[int] = set()

    def on_checkout(dbapi_connection: Any, *_: Any) -> None:
        if threading.current_thread().name != "warm-up":
            return  # another thread of this test process (a worker an earlier test started) using the engine
        with dbapi_connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pids.add(cur.fetchone()[0])

    cached = dict(efforts._prepared)
    sa.event.listen(db.engine, "checkout", on_checkout)
    try:
        assert tasks_app.warm_pool_process(wait_s=30.0) is True
    finally:
        sa.event.remove(db.engine, "checkout", on_checkout)
    assert pids, "the warm-up opened no database connection"
    assert db.engine.pool.checkedout() == 0
    # Looked at from a connection of its own: the warm-up's, back in the pool, must be idle, outside any
    # transaction, holding no lock.
    observer = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
    try:
        with observer.connect() as conn:
            states = conn.execute(sa.text("SELECT state FROM pg_stat_activity WHERE pid = ANY(:p)"),
                                  {"p": sorted(pids)}).scalars().all()
            locks = conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE pid = ANY(:p)"),
                                 {"p": sorted(pids)}).scalar()
    finally:
        observer.dispose()
    assert states and set(states) == {"idle"}, states
    assert locks == 0
    assert efforts._prepared == cached  # the matcher ran on throwaway segments, not through the cache


def test_warm_up_writes_nothing(app):
    from models import db

    assert db.engine is not None
    statements: list[str] = []

    me = threading.get_ident()

    def on_execute(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        # This thread's only: a worker or live server that an earlier test of this process started may be
        # running statements on the same engine meanwhile.
        if threading.get_ident() == me:
            statements.append(statement.lstrip().split(None, 1)[0].upper())

    sa.event.listen(db.engine, "before_cursor_execute", on_execute)
    try:
        warmup.warm_up()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", on_execute)
    assert statements and set(statements) <= {"SET", "SELECT"}, statements


def test_a_failing_warm_up_is_logged_and_the_process_starts(app, monkeypatch, caplog):
    def broken() -> dict[str, float]:
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(warmup, "warm_up", broken)
    with caplog.at_level("WARNING", logger="tasks.app"):
        assert tasks_app.warm_pool_process() is False
    assert "warm-up failed" in caplog.text


def test_a_slow_warm_up_does_not_hold_the_process_start(app, monkeypatch, caplog):
    release = threading.Event()
    monkeypatch.setattr(warmup, "warm_up", lambda: release.wait(10) and {})
    started = time.monotonic()
    try:
        with caplog.at_level("WARNING", logger="tasks.app"):
            assert tasks_app.warm_pool_process(wait_s=0.1) is False
        assert time.monotonic() - started < 2.0
        assert "still running" in caplog.text
    finally:
        release.set()
