"""Inputs no view should ever see, refused in one place before any view runs.

- **Body size, per route.** Flask's ``MAX_CONTENT_LENGTH`` (the 128 MiB upload ceiling) would otherwise apply to
  every route, and a JSON body is parsed in one go on the gevent loop: a 14 MB body stalls every socket of the
  process for seconds. Each request gets the limit of its route — ``MAX_JSON_BYTES`` unless the view is marked
  with :func:`body_limit` — and a declared ``Content-Length`` above it is answered 413 before a byte is read;
  a chunked body is cut off at the same limit by Werkzeug (``request.max_content_length``).
- **Text PostgreSQL can't store.** NUL characters (``text``/``varchar`` reject them) and lone UTF-16 surrogates
  (``"\\ud800"`` in JSON: not encodable as UTF-8) in any JSON string or key, path or query parameter, form
  field or file name: 422, naming where.
- **JSON the parser or the schemas choke on.** Nesting deeper than ``MAX_JSON_DEPTH`` (1,000 levels overflow
  the recursion limit of the decoder and of marshmallow), ``NaN``/``Infinity`` and numbers that overflow a float
  (not JSON, and not storable), integers beyond PostgreSQL's ``bigint`` (every integer column is one at most)
  and invalid JSON: 400 or 422, never a 500.
- **Where an uploaded file waits.** In memory up to ``FILE_SPOOL_BYTES`` (Werkzeug's default spills anything
  over 500 KB to a temporary file), on disk above it: see :class:`InputRequest`.

The socket endpoint parses its frames with :func:`parse_json` too, so both doors refuse the same inputs.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import socket
from collections.abc import Callable
from tempfile import SpooledTemporaryFile
from typing import IO, Any, TypeVar

from flask import Flask, Request, current_app, request
from flask_smorest import abort

MAX_JSON_DEPTH = 64
#: PostgreSQL's ``bigint``: no integer column in the schema is wider.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})

F = TypeVar("F", bound=Callable[..., Any])

#: An uploaded file up to this size is held in memory while the form is parsed.
FILE_SPOOL_BYTES = 8 * 1024 * 1024


class InputRequest(Request):
    """Flask's request, with uploaded files spooled to disk only above ``FILE_SPOOL_BYTES``.

    Why: the upload route reads the whole file into memory anyway (it is hashed, checked and stored in one
    piece), so a typical activity file (a 1-hour GPX is ~750 KB) written to a temporary file by the form parser
    was written and read back for nothing: about a tenth of the web process's time per upload. Larger files
    (rare: zips, exports) still go to disk while the body is read, so a slow client sending one holds at most
    ``FILE_SPOOL_BYTES`` of memory until it is done.
    """

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None, content_length: int | None = None) -> IO[bytes]:
        return SpooledTemporaryFile(max_size=FILE_SPOOL_BYTES, mode="rb+")


class UnsafeInput(ValueError):
    """An input refused before any schema sees it: ``status`` (400 or 422), a sentence, and where (a path)."""

    def __init__(self, status: int, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.where = where


def body_limit(config_key: str) -> Callable[[F], F]:
    """Let a view accept bodies up to ``app.config[config_key]`` bytes instead of ``MAX_JSON_BYTES``
    (the upload route: files of up to ``MAX_CONTENT_LENGTH``). The ceiling stays ``MAX_CONTENT_LENGTH``."""

    def mark(view: F) -> F:
        view.body_limit_config = config_key  # type: ignore[attr-defined]
        return view

    return mark


def _handler() -> Any:
    """The function that will answer this request (a MethodView's method, or the view function)."""
    view = current_app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    return getattr(view_class, request.method.lower(), None) if view_class is not None else view


def route_body_limit() -> int:
    """The byte limit of this request's route (read from the view method, so it sits next to the route)."""
    config = current_app.config
    ceiling = int(config["MAX_CONTENT_LENGTH"])
    key = getattr(_handler(), "body_limit_config", None)
    limit = int(config[key]) if key else int(config["MAX_JSON_BYTES"])
    return min(limit, ceiling)


def unstorable(text: str) -> str | None:
    """Why PostgreSQL (or UTF-8) can't take ``text``, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    return "NUL characters are not allowed." if found.group() == "\x00" else \
        "Unpaired UTF-16 surrogates are not allowed (the text is not valid Unicode)."


def _reject_constant(name: str) -> Any:
    raise UnsafeInput(400, f"{name} is not a JSON number.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnsafeInput(422, f"The number {text[:32]} is too large.")
    return value


def parse_json(raw: str | bytes) -> Any:
    """``json.loads`` for untrusted bodies and frames: the value, or :class:`UnsafeInput` (never another error)."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except UnsafeInput:
        raise
    except RecursionError:
        raise UnsafeInput(400, f"The JSON is nested too deeply (at most {MAX_JSON_DEPTH} levels).") from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, an integer literal of over 4,300 digits
        raise UnsafeInput(400, "The body is not valid JSON.") from None
    check_json(value)
    return value


def check_json(value: Any) -> None:
    """Walk a decoded JSON value (iteratively: a deep value must not overflow our stack either)."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise UnsafeInput(400, f"The JSON is nested too deeply (at most {MAX_JSON_DEPTH} levels).")
        if isinstance(item, str):
            reason = unstorable(item)
            if reason:
                raise UnsafeInput(422, reason, path or "$")
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not INT_MIN <= item <= INT_MAX:
                raise UnsafeInput(422, "Integers must fit in 64 bits.", path or "$")
        elif isinstance(item, dict):
            for key, child in item.items():
                reason = unstorable(key)
                if reason:
                    raise UnsafeInput(422, reason, path or "$")
                stack.append((child, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))


def _refuse(location: str, exc: UnsafeInput) -> None:
    if exc.where is None:
        abort(exc.status, message=exc.message)
    abort(exc.status, message=exc.message, errors={location: {exc.where: [exc.message]}})


def _check_texts(location: str, pairs: Any) -> None:
    for key, value in pairs:
        for text in (key, value):
            reason = unstorable(text) if isinstance(text, str) else None
            if reason:
                _refuse(location, UnsafeInput(422, reason, key.replace("\x00", "\\u0000")))


def _stop_reading_body() -> None:
    """Make sure the server never reads a refused body. To reuse a keep-alive connection gunicorn reads what is
    left of the body, 1 KB at a time; with megabytes already in the socket buffer no read ever waits, so the loop
    never yields and stalls every socket of the gevent process for a fifth of a second per refused 14 MB body.
    gunicorn ignores an application's ``Connection: close`` (a hop-by-hop header), so the read side of the
    client socket is shut: the drain sees end-of-stream at once, and gunicorn closes the connection after the
    response (which the shut read side does not affect). Other servers honour the ``Connection: close`` header
    the 413 also carries."""
    sock = request.environ.get("gunicorn.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RD)


def declared_query_names(handler: Any) -> set[str] | None:
    """The query parameters an API operation declares (``@blp.arguments(…, location="query")`` or a documented
    query parameter), or None for a route that is not an API operation (the socket, the health checks)."""
    apidoc = getattr(handler, "_apidoc", None)
    if apidoc is None:
        return None
    names: set[str] = set()
    for parameter in apidoc.get("arguments", {}).get("parameters", []):
        if parameter.get("in") == "query":
            schema = parameter["schema"]
            instance = schema() if isinstance(schema, type) else schema
            names |= {field.data_key or name for name, field in instance.fields.items() if not field.dump_only}
    for parameter in apidoc.get("manual_doc", {}).get("parameters", []):
        if isinstance(parameter, dict) and parameter.get("in") == "query":
            names.add(parameter["name"])
    return names


def _refuse_unknown_query() -> None:
    """Unknown query parameters are refused like unknown body fields: a misspelt filter (``?sport=``) must not
    silently return everything."""
    declared = declared_query_names(_handler())
    if declared is None:
        return
    unknown = [name for name in request.args if name not in declared]
    if unknown:
        accepted = ", ".join(sorted(declared)) or "none"
        abort(422, message=f"{unknown[0]}: unknown query parameter (this operation accepts: {accepted}).",
              errors={"query": {name: ["Unknown field."] for name in unknown}})


def register_input_guard(app: Flask) -> None:
    app.request_class = InputRequest

    @app.before_request
    def _guard_inputs() -> None:
        limit = route_body_limit()
        if request.content_length is not None and request.content_length > limit:
            _stop_reading_body()
            abort(413, message=f"The request body is too large: this route accepts at most {limit} bytes.",
                  headers={"Connection": "close"})
        request.max_content_length = limit  # a chunked body is cut off at the same limit
        _check_texts("path", ((k, v) for k, v in (request.view_args or {}).items() if isinstance(v, str)))
        _check_texts("query", request.args.items(multi=True))
        _refuse_unknown_query()
        if request.mimetype in _FORM_TYPES:
            _check_texts("form", request.form.items(multi=True))
            _check_texts("files", ((name, f.filename or "") for name, f in request.files.items(multi=True)))
        elif request.is_json:
            body = request.get_data(cache=True)
            if body.strip():
                try:
                    parse_json(body)
                except UnsafeInput as exc:
                    _refuse("json", exc)
