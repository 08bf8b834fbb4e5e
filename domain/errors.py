"""Refusals: the one way a domain operation says "no" to its caller.

The domain knows nothing of HTTP frameworks or sockets, but its refusals carry an HTTP status because that is
the vocabulary every client of this backend already speaks: the web layer turns a ``Refusal`` into
flask-smorest's JSON error shape (``webapp.errors``) and the socket layer into an ``error`` frame.
"""

from __future__ import annotations

from typing import Any, NoReturn


class Refusal(Exception):
    """A client error: ``status`` (4xx), a sentence for the athlete, and optionally field ``errors``
    (marshmallow's shape, e.g. ``{"json": {"start_date": ["In the future."]}}``), response ``headers`` and a
    machine-readable ``code`` for socket frames."""

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 errors: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or STATUS_CODES.get(status, "error")
        self.errors = errors
        self.headers = headers or {}

    def __str__(self) -> str:
        return self.message


#: The machine-readable code of each status, for socket ``error`` frames.
STATUS_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 409: "conflict",
                410: "gone", 413: "too_large", 422: "invalid", 429: "rate_limited", 503: "unavailable"}


def refuse(status: int, message: str, *, errors: dict[str, Any] | None = None,
           headers: dict[str, str] | None = None) -> NoReturn:
    """Raise a ``Refusal`` (same arguments as flask-smorest's ``abort``, so a view reads the same)."""
    raise Refusal(status, message, errors=errors, headers=headers)
