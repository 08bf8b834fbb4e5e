"""JSON errors for everything, in flask-smorest's shape: {"code", "status", "message"[, "errors"]}.

flask-smorest's own handler fills ``message``/``errors`` only for its ``abort``; errors raised by Werkzeug
itself (unknown route, 405, 413) get their description as the message here, so a client always has one.
Unexpected exceptions become a logged 500 with the request id, never a traceback to the client; database
constraint races become 409 and a lost database 503.
"""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
from flask import Flask, g, request
from flask_smorest.error_handler import ErrorSchema as SmorestErrorSchema
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import Conflict, HTTPException, InternalServerError, ServiceUnavailable

from domain.errors import Refusal
from models.db import db
from webapp.openapi import OMITTABLE

log = logging.getLogger(__name__)


class ErrorSchema(SmorestErrorSchema):
    """flask-smorest's error shape as we send it: with the request id (the OpenAPI document's ``Error``)."""

    class Meta:
        example = {
            "code": 422, "status": "Unprocessable Entity",
            "message": "file: missing — send the activity file in the multipart field 'file'.",
            "errors": {"files": {"file": ["Missing data for required field."]}},
            "request_id": "5f0c6b1e9a4d4b7e8d2f3a1c0b9e8d7f"}

    code = ma.fields.Integer(metadata={"description": "The HTTP status code"})
    status = ma.fields.String(metadata={"description": "The HTTP status name"})
    message = ma.fields.String(metadata={"description": "What went wrong, naming the first problem"})
    errors = ma.fields.Dict(metadata={
        OMITTABLE: True, "description": "Per input location and field, the problems found: "
                                        "{\"json\": {\"name\": [\"Missing data for required field.\"]}}"})
    request_id = ma.fields.String(metadata={"description": "Quote it when reporting a problem (X-Request-ID)"})


#: How to send a field, per input location: the end of "`name`: missing — send it …".
_WHERE = {"json": "in the JSON body", "query": "as a query parameter", "form": "as a multipart form field",
          "files": "as a file in the multipart field", "path": "in the path", "headers": "as a header"}


def first_problem(errors: Any) -> str | None:
    """One sentence naming the first problem of marshmallow-shaped ``errors`` ({location: {field: [msg]}}),
    e.g. "file: missing — send it as a file in the multipart field 'file'."."""
    if not isinstance(errors, dict) or not errors:
        return None
    location, fields = next(iter(errors.items()))
    path: list[str] = []
    node: Any = fields
    while isinstance(node, dict) and node:
        key, node = next(iter(node.items()))
        if key != "_schema":
            path.append(f"[{key}]" if isinstance(key, int) or str(key).isdigit() else str(key))
    while isinstance(node, list) and node:
        node = node[0]
    text = str(node) if node is not None else "invalid"
    name = ".".join(path).replace(".[", "[") or "body"
    if text == "Missing data for required field.":
        where = _WHERE.get(str(location), f"in {location}")
        suffix = f" '{path[0]}'" if location == "files" and path else ""
        return f"{name}: missing — send it {where}{suffix}."
    if text == "Unknown field.":
        return f"{name}: unknown field — it is not part of this operation's {location} input."
    return f"{name}: {text}"


#: Werkzeug's stock sentences, which speak of browsers and spelling: replaced by ones an API client can act on.
def _plain_message(exc: HTTPException) -> str | None:
    if exc.description != type(exc).description:
        return None  # raised with a sentence of its own
    if exc.code == 400:
        return "The request could not be read: check that the body is what its Content-Type says."
    if exc.code == 404:
        return f"No such endpoint: {request.method} {request.path} (the operations are listed at /api/v1/docs)."
    if exc.code == 405:
        allowed = ", ".join(getattr(exc, "valid_methods", None) or [])
        return f"{request.method} is not allowed on {request.path}" + (f"; use {allowed}." if allowed else ".")
    return None


def error_payload(exc: HTTPException) -> tuple[dict[str, Any], int, dict[str, str]]:
    payload: dict[str, Any] = {"code": exc.code, "status": exc.name}
    data = getattr(exc, "data", None) or {}
    errors = data.get("errors", data.get("messages"))
    payload["message"] = (data.get("message") or first_problem(errors) or _plain_message(exc)
                          or exc.description or exc.name)
    if errors is not None:
        payload["errors"] = errors
    headers = dict(data.get("headers") or {})
    valid_methods = getattr(exc, "valid_methods", None)  # set on werkzeug's MethodNotAllowed
    if exc.code == 405 and valid_methods:
        headers["Allow"] = ", ".join(valid_methods)
    if g.get("request_id"):
        payload["request_id"] = g.request_id
    return payload, exc.code or 500, headers


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[dict[str, Any], int, dict[str, str]]:
        return error_payload(exc)

    @app.errorhandler(Refusal)
    def _refused(exc: Refusal) -> tuple[dict[str, Any], int, dict[str, str]]:
        # A refused operation may have flushed part of its work: none of it may reach the next commit.
        db.session.rollback()
        http = HTTPException()
        http.code, http.description = exc.status, exc.message
        # The ad-hoc attribute flask-smorest's abort sets too (error_payload reads it); werkzeug does not declare it.
        http.data = {"message": exc.message, "headers": exc.headers,  # type: ignore[attr-defined]
                     **({"errors": exc.errors} if exc.errors else {})}
        payload, status, headers = error_payload(http)
        return payload, status, headers

    @app.errorhandler(IntegrityError)
    def _integrity(exc: IntegrityError) -> tuple[dict[str, Any], int, dict[str, str]]:
        db.session.rollback()
        log.info("integrity conflict: %s", exc.orig)
        return error_payload(Conflict("The request conflicts with the current state of the resource."))

    @app.errorhandler(OperationalError)
    def _db_down(exc: OperationalError) -> tuple[dict[str, Any], int, dict[str, str]]:
        db.session.rollback()
        log.error("database unavailable: %s", exc.orig)
        return error_payload(ServiceUnavailable("The service is temporarily unavailable; retry shortly."))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[dict[str, Any], int, dict[str, str]]:
        log.exception("unhandled error")
        db.session.rollback()
        return error_payload(InternalServerError("Something went wrong on our side; it has been logged."))
