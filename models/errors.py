"""Which failures of our stores are transient: the one list every retrying task and stage uses.

A transient error is one where the same call may succeed a moment later (the database restarting, Redis or
object storage unreachable, a connection dropped), so a task retries it with back-off. Python's built-in
``ConnectionError`` is not here on purpose: neither redis-py's nor SQLAlchemy's errors derive from it.
"""

from __future__ import annotations

import redis
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from models.storage import StorageError

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,  # the server went away, a connection was refused, a statement timed out
    InterfaceError,  # a connection closed under us
    DisconnectionError,
    redis.exceptions.ConnectionError,  # includes BusyLoadingError (Redis loading its data after a restart)
    redis.exceptions.TimeoutError,
    StorageError,
)

