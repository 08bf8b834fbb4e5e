"""A new worker pool process warms up before its first task (tasks.app, domain.segments.warmup): wired to
Celery's worker_process_init, read-only, leaving no transaction open, and harmless when it fails or hangs."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
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


class _WriteWatch(OrderedDict[Any, Any]):
    """The prepared-segment cache, recording which threads wrote to it (a worker thread an earlier test started
    may fill it with real segments meanwhile; only the warm-up thread's writes matter here)."""

    def __init__(self, *args: Any) -> None:
        self.writers: set[str] = set()  # before the copy, which goes through __setitem__
        super().__init__(*args)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.writers.add(threading.current_thread().name)
        super().__setitem__(key, value)


def test_warm_up_leaves_no_transaction_open_and_no_cached_segment(app, redis_clean, monkeypatch):
    from models import db

    assert db.engine is not None
    # Only the warm-up thread's own connections are looked at, each as it goes back to the pool (before another
    # thread of this test process, such as a worker an earlier test started, could take it out again).
    out: list[int] = []
    back: list[int] = []
    states: dict[int, list[Any]] = {}
    observer = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)

    def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if threading.current_thread().name == "warm-up":
            out.append(id(record))

    def on_checkin(dbapi_connection: Any, record: Any) -> None:
        if threading.current_thread().name != "warm-up" or dbapi_connection is None:
            return
        back.append(id(record))
        # The pool has reset the connection by now (rolled back); from a connection of its own it must look idle,
        # outside any transaction, holding no lock.
        pid = dbapi_connection.info.backend_pid
        with observer.connect() as conn:
            states[pid] = [
                conn.execute(sa.text("SELECT state FROM pg_stat_activity WHERE pid = :p"), {"p": pid}).scalar(),
                conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE pid = :p"), {"p": pid}).scalar()]

    watched = _WriteWatch(efforts._prepared)
    monkeypatch.setattr(efforts, "_prepared", watched)
    sa.event.listen(db.engine, "checkout", on_checkout)
    sa.event.listen(db.engine, "checkin", on_checkin)
    try:
        assert tasks_app.warm_pool_process(wait_s=30.0) is True
    finally:
        sa.event.remove(db.engine, "checkout", on_checkout)
        sa.event.remove(db.engine, "checkin", on_checkin)
        observer.dispose()
    assert out, "the warm-up opened no database connection"
    assert sorted(back) == sorted(out)  # every connection it took went back to the pool
    assert states and all(s == ["idle", 0] for s in states.values()), states
    assert "warm-up" not in watched.writers  # the matcher ran on throwaway segments, not through the cache


def test_warm_up_writes_nothing(app):
    from models import db

    assert db.engine is not None
    statements: list[str] = []
    assigned: list[object] = []

    me = threading.get_ident()

    def on_execute(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        # This thread's only: a worker or live server that an earlier test of this process started may be
        # running statements on the same engine meanwhile.
        if threading.get_ident() == me:
            statements.append(statement.lstrip().split(None, 1)[0].upper())

    def after_execute(conn: Any, cursor: Any, *_: Any) -> None:
        # PostgreSQL assigns a transaction id at the first row a transaction writes (or locks): after every
        # statement of the warm-up there must be none.
        if threading.get_ident() == me:
            with conn.connection.dbapi_connection.cursor() as cur:
                cur.execute("SELECT pg_current_xact_id_if_assigned()")
                assigned.append(cur.fetchone()[0])

    sa.event.listen(db.engine, "before_cursor_execute", on_execute)
    sa.event.listen(db.engine, "after_cursor_execute", after_execute)
    try:
        warmup.warm_up()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", on_execute)
        sa.event.remove(db.engine, "after_cursor_execute", after_execute)
    assert "INSERT" in statements  # the written tables' caches are loaded too
    assert statements and set(statements) <= {"SET", "SELECT", "INSERT", "WITH"}, statements
    assert len(assigned) == len(statements) and set(assigned) == {None}, assigned


def test_warm_up_refuses_a_write_step_that_wrote(app, monkeypatch):
    # The guard itself: were a statement of the step to write, the step raises (and still rolls back).
    # pg_current_xact_id() assigns the transaction an id, as a first written row would.
    from models import db

    monkeypatch.setattr(efforts, "pr_ranks", lambda *_: db.session.execute(sa.text("SELECT pg_current_xact_id()")))
    with pytest.raises(warmup.WarmUpWrote):
        warmup._warm_writes()
    assert db.session.execute(sa.text("SELECT pg_current_xact_id_if_assigned()")).scalar() is None
    db.session.rollback()


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


def test_pool_process_init_tunes_the_allocator_around_the_warm_up(app, keep_memory_baseline, monkeypatch):
    # The thresholds are set before the warm-up allocates anything, and the heap is grown after it, on the thread
    # that runs the tasks (the one Celery sends the signal on), not on the warm-up's own thread.
    calls: list[tuple[str, str]] = []
    me = threading.current_thread().name
    monkeypatch.setattr(memory, "tune_allocator", lambda: calls.append(("tune", me)) or True)
    monkeypatch.setattr(memory, "reserve_heap", lambda: calls.append(("reserve", threading.current_thread().name)))
    monkeypatch.setattr(warmup, "warm_up", lambda: calls.append(("warm-up", threading.current_thread().name)) or {})
    worker_process_init.send(sender=None)
    assert calls == [("tune", me), ("warm-up", "warm-up"), ("reserve", me)]
