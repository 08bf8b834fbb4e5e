"""Log lines that say what they are about: ``request_id`` (web), ``task_id`` and ``task_name`` (workers), and
the athlete where known; JSON lines (python-json-logger) when ``LOG_JSON`` is on, human-readable otherwise.

A web request's id travels with the tasks it enqueues (tasks.signals puts it in the Celery message headers), so
one upload can be followed from its POST through every pipeline stage by grepping one id.
"""

from __future__ import annotations

import logging
import re
import uuid

from flask import Flask, Response, g, has_request_context, request
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from models import logcontext

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def current_request_id() -> str | None:
    if has_request_context():
        return g.get("request_id")
    return logcontext.request_id.get()


def current_athlete_id() -> int | None:
    if has_request_context():
        user = g.get("user")
        return getattr(user, "id", None)
    return logcontext.athlete_id.get()


class ContextFilter(logging.Filter):
    """Adds ``request_id``, ``athlete_id``, ``task_id`` and ``task_name`` to every record (``-`` when unknown,
    so a format string can always name them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = record.__dict__  # LogRecord allows extra attributes; typed access would need a cast per field
        fields.setdefault("request_id", current_request_id() or "-")
        fields.setdefault("athlete_id", current_athlete_id() or "-")
        fields.setdefault("task_id", logcontext.task_id.get() or "-")
        fields.setdefault("task_name", logcontext.task_name.get() or "-")
        # The human-readable line names only what is known: "[req 3f2a… task pipeline.ingest 9c1d… athlete 7] ".
        parts = [f"req {fields['request_id']}" if fields["request_id"] != "-" else "",
                 f"task {fields['task_name']} {fields['task_id']}" if fields["task_id"] != "-" else "",
                 f"athlete {fields['athlete_id']}" if fields["athlete_id"] != "-" else ""]
        known = " ".join(p for p in parts if p)
        fields["context"] = f"[{known}] " if known else ""
        return True


#: One JSON object per line; the context fields always present (``-`` when unknown) so queries can rely on them.
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(athlete_id)s %(task_id)s %(task_name)s"
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(context)s%(message)s"


def json_formatter() -> logging.Formatter:
    # "context" is the text format's summary of the same fields: not repeated in the JSON object.
    return JsonFormatter(JSON_FIELDS, rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
                         reserved_attrs=[*RESERVED_ATTRS, "context"])


def configure_logging(level: str, *, json_logs: bool) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(json_formatter() if json_logs else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # Alembic announces every plugin at INFO whenever it is imported; keep start-up logs readable.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    # Celery's per-task success line lacks the request id; tasks.signals writes one that has it (failures and
    # retries still come from Celery, at WARNING and above).
    logging.getLogger("celery.app.trace").setLevel(max(logging.WARNING, root.level))
    # And its "Task … received" line: one more line per task in the worker's main process, which also hands
    # out every task; the success line above says the same with the ids.
    logging.getLogger("celery.worker.strategy").setLevel(max(logging.WARNING, root.level))


def register_request_ids(app: Flask) -> None:
    """Honour a caller's X-Request-ID (mobile clients and proxies set one) or mint one; echo it back."""

    @app.before_request
    def _assign_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response
