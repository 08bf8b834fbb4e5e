"""What a log line is about, outside an HTTP request: the Celery task being run and the web request (and
athlete) that caused it. Set by the worker's task signals (tasks.signals) from the message headers; read by
the log filter (webapp.logs). Context variables, so each thread or greenlet keeps its own."""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
athlete_id: ContextVar[int | None] = ContextVar("athlete_id", default=None)
task_id: ContextVar[str | None] = ContextVar("task_id", default=None)
task_name: ContextVar[str | None] = ContextVar("task_name", default=None)

_ALL: tuple[ContextVar[Any], ...] = (request_id, athlete_id, task_id, task_name)


def bind(*, request: str | None, athlete: int | None, task: str | None, name: str | None) -> list[Token[Any]]:
    """Set the four values; returns the tokens ``unbind`` takes to restore what was there."""
    return [var.set(value) for var, value in zip(_ALL, (request, athlete, task, name), strict=True)]


def unbind(tokens: list[Token[Any]]) -> None:
    for var, token in zip(_ALL, tokens, strict=True):
        var.reset(token)
