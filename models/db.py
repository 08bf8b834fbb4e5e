"""Engine and session handling shared by the web app, the workers and the CLI.

Plain SQLAlchemy 2.0 (no Flask extension) so that ``models`` depends on nothing above it. One
thread-local ``scoped_session``: gunicorn gthread and flask-sock run a request per thread, Celery runs a
task per process or thread, and each removes its session when it is done.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    MetaData,
    Table,
    Text,
    TypeDecorator,
    bindparam,
    create_engine,
    event,
    select,
)
from sqlalchemy import cast as cast_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, scoped_session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

T = TypeVar("T")
M = TypeVar("M", bound="Base")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {int: BigInteger, datetime: DateTime(timezone=True)}


def table_of(model: type[Base]) -> Table:
    """The model's Table, for Core statements (SQLAlchemy types ``__table__`` as any FROM clause; a model declared
    with ``__tablename__`` always has a Table)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class IdList(TypeDecorator[list[int]]):
    """Ids bound as one array literal (``'{1,2,3}'``, cast to ``bigint[]`` where it is used: see :func:`id_array`).

    psycopg2 renders a Python list as an ``ARRAY[1, 2, 3]`` constructor, which the server parses and plans as one
    expression per element: 432 ids took 2.1 ms a query that way and 1.4 ms as a literal."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: list[int] | None, dialect: Any) -> str | None:
        return None if value is None else "{" + ",".join(str(int(v)) for v in value) + "}"


def id_array(name: str) -> ColumnElement[Any]:
    """A bound parameter ``name`` taking a list of ids, as a ``bigint[]`` (for ``column == any_(id_array("ids"))``)."""
    return cast_(bindparam(name, type_=IdList), ARRAY(BigInteger))


def rowcount(result: Result[Any]) -> int:
    """How many rows an INSERT/UPDATE/DELETE run by the session matched. ``Session.execute`` is annotated as
    returning a plain Result; for these statements it is a CursorResult, the kind that counts rows."""
    return cast("CursorResult[Any]", result).rowcount


def returning(model: type[M], stmt: Any) -> Any:
    """The query that runs ``stmt`` (an INSERT/UPDATE) … RETURNING the whole ``model`` row and gives that row back
    as the session's object (refreshed if the session held it already). Built once, at import, with
    ``bindparam()`` placeholders, for a statement that runs for every upload: building it per call (the
    statement, its values' coercion and its cache key) costs more CPU than the round trip it saves (an INSERT of an
    activity's ~45 values: 2.5 ms built per call, 0.8 ms prepared)."""
    return select(model).from_statement(stmt.returning(model)).execution_options(populate_existing=True)


def returned_row(model: type[M], query: Any, params: dict[str, Any]) -> M | None:
    """The ``model`` row written by ``query`` (prepared by :func:`returning`) run with ``params``, or None when it
    wrote none: one round trip where a write and then a SELECT would be two."""
    row: M | None = db.session.scalars(query, params).first()
    return row


class Database:
    """Holds the engine once configured; ``db.session`` is usable from any thread after that."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self._factory = sessionmaker(expire_on_commit=False)
        self._local = threading.local()
        # Any callable returning a Session is a valid factory (sessionmaker is the usual one, and the only one
        # SQLAlchemy's annotation admits): this one joins a thread's outer transaction when there is one.
        self.session: scoped_session[Session] = scoped_session(cast("sessionmaker[Session]", self._new_session))

    def _new_session(self) -> Session:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            # This thread runs inside an outer transaction (a test): commits become savepoint releases.
            return Session(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint")
        return self._factory()

    def bind_thread(self, connection: Connection | None) -> None:
        """Make this thread's sessions join ``connection``'s transaction (None: back to the engine).

        Per thread on purpose: a worker thread running in the same process (the test suite's Celery
        worker) must keep its own connections, never share the test's.
        """
        self.session.remove()
        self._local.connection = connection

    def configure(self, url: str, *, pool_size: int = 10) -> Engine:
        if self.engine is not None and str(self.engine.url) == str(create_engine(url).url):
            return self.engine
        if self.engine is not None:
            self.engine.dispose()
        self.engine = create_engine(
            url, pool_size=pool_size, max_overflow=pool_size * 2, pool_recycle=1800, future=True,
        )
        ping_when_idle(self.engine)
        self._factory.configure(bind=self.engine)
        return self.engine

    def dispose_after_fork(self) -> None:
        """A forked child must not reuse the parent's sockets; close=False leaves the parent's intact."""
        if self.engine is not None:
            self.engine.dispose(close=False)



#: A pooled connection back in use within this many seconds is handed out without a ping.
PING_AFTER_IDLE_S = 2.0


def ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle for a while (``pool_pre_ping`` pings on
    every checkout).

    Why: a task or a request checks a connection out once per transaction, and an upload takes several; under
    load each ping was a round trip and ~0.2 ms of CPU between the process and PostgreSQL, for a connection
    used a few milliseconds earlier. A connection that idled (a quiet worker, a server restarted meanwhile)
    is still pinged, and a dead one is replaced before anyone uses it. One that breaks within the idle window
    fails its statement as a disconnect: SQLAlchemy then drops every pooled connection as old as it, the
    request answers 503 and a task retries (both were already how a failure during a transaction ends).
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
        # A connection just opened has no idle_since (the record's info is cleared when it reconnects).
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection (and any as old) and hands out a new one.
            raise DisconnectionError("connection lost while idle in the pool") from exc


db = Database()


# -- work that must wait for the commit ---------------------------------------------------------------------------
# Socket frames and push deliveries are about rows: sent before the commit they would point at rows a client can't
# read yet, and sent at all after a rollback they would point at nothing. Code stages such work on the session's
# transaction under a name; after the commit the name's flush gets it, a rollback of the whole transaction drops it
# (a savepoint's rollback leaves the outer transaction's work staged).

_FLUSHES: dict[str, Callable[[Any], object]] = {}
log = logging.getLogger(__name__)


def on_commit(name: str, flush: Callable[[Any], object]) -> None:
    """Register ``flush``, called after each commit with what was staged under ``name`` (if anything was)."""
    _FLUSHES[name] = flush


def staged(session: Session | scoped_session[Session], name: str, factory: Callable[[], T]) -> T:
    """The container of the work staged under ``name`` on this session's transaction, made by ``factory`` on
    first use."""
    if isinstance(session, scoped_session):
        session = session()  # the thread's own Session: events and ``info`` live there
    if not session.in_transaction():
        session.begin()  # so that a rollback (which fires no event without a transaction) drops it
    return session.info.setdefault(f"staged:{name}", factory())


@event.listens_for(Session, "after_commit")
def _flush_staged(session: Session) -> None:
    for name, flush in _FLUSHES.items():
        work = session.info.pop(f"staged:{name}", None)
        if not work:
            continue
        try:
            flush(work)
        except Exception:  # the rows are committed; each flush has its own catch-up path
            log.warning("after-commit %s failed", name, exc_info=True)


@event.listens_for(Session, "after_soft_rollback")
def _drop_staged(session: Session, previous_transaction: SessionTransaction) -> None:
    # Soft rollback fires even when no SQL ran yet (plain after_rollback does not).
    if previous_transaction.parent is None:
        for name in _FLUSHES:
            session.info.pop(f"staged:{name}", None)
