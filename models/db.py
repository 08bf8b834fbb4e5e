"""Engine and session handling shared by the web app, the workers and the CLI.

Plain SQLAlchemy 2.0 (no Flask extension) so that ``models`` depends on nothing above it. One
thread-local ``scoped_session``: gunicorn gthread and flask-sock run a request per thread, Celery runs a
task per process or thread, and each removes its session when it is done.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import BigInteger, DateTime, MetaData, Table, create_engine, event, select
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, scoped_session, sessionmaker

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
            url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size * 2,
            pool_recycle=1800, future=True,
        )
        self._factory.configure(bind=self.engine)
        return self.engine

    def dispose_after_fork(self) -> None:
        """A forked child must not reuse the parent's sockets; close=False leaves the parent's intact."""
        if self.engine is not None:
            self.engine.dispose(close=False)



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
