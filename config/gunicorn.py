"""Gunicorn settings for the web processes: ``gunicorn -c config/gunicorn.py 'webapp:create_app()'``.

Default model: ``WEB_WORKER_CLASS=gevent`` with ``WEB_CONCURRENCY=2`` processes (one per core). A WebSocket
holds its request for its whole life (plus a reader and a writer); under gevent those are three greenlets of a
few KB each, so one process holds thousands of sockets while REST requests interleave with them. psycopg2 is
made cooperative (psycogreen) so a query waits without blocking the other greenlets.

Fallback: ``WEB_WORKER_CLASS=gthread`` (plain OS threads, no monkey-patching). Each open socket then pins one of
the ``WEB_THREADS`` request threads of its process (and two more threads of its own), so a process holds at
most ``WEB_THREADS`` sockets at once: fine for debugging, not for 2,000 sockets. See docs/realtime.md.

Never combine gevent with ``--preload``: the app (and its thread-locals) must be imported after gevent patched
the process, which the gevent worker does in each child before loading the app.

The address is the app's own setting (``WEB_BIND_HOST``, ``PORT``: loopback in development, every interface in
production), and ``on_starting`` checks the config against what will really listen (a ``-b`` on the command line
wins over ``bind``) before anything does: emulator auth on a public address stops the master with a clear error.
"""

from __future__ import annotations

import gc
import json
import os
from typing import Any

from config import ConfigError, load_config

# Checked in on_starting, where a refusal is gunicorn's one-line "Error: …" rather than a traceback.
_settings = load_config(validate=False)
_host = _settings.WEB_BIND_HOST
bind = f"[{_host}]:{_settings.PORT}" if ":" in _host else f"{_host}:{_settings.PORT}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = os.environ.get("WEB_WORKER_CLASS", "gevent")
# gevent: concurrent clients (sockets + HTTP requests) per process before accept() pauses.
worker_connections = int(os.environ.get("WEB_WORKER_CONNECTIONS", "5000"))
threads = int(os.environ.get("WEB_THREADS", "64"))  # gthread only
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "10"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
keepalive = 5
# What gunicorn refuses before the app sees the request (gunicorn's defaults, stated: the URL of a GET with all
# its query parameters, each header, the number of headers). Those refusals are written by gunicorn itself —
# 414 URI Too Long, 431 Request Header Fields Too Large, 400 for a malformed request — and are sent in the
# app's JSON error shape by _json_error below (installed in each worker by post_fork).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = os.environ.get("WEB_ACCESS_LOG", "-") or None


def _gevent() -> bool:
    return "gevent" in worker_class


def on_starting(server: Any) -> None:
    try:
        _settings.validate()
        _settings.check_listeners(server.cfg.address)
    except ConfigError as exc:
        raise RuntimeError(str(exc)) from None  # gunicorn prints it and exits 1


_MESSAGES = {
    414: f"The request line (method, path and query) is too long: at most {limit_request_line} bytes.",
    431: f"The request headers are too large: at most {limit_request_fields} headers of "
         f"{limit_request_field_size} bytes each.",
}


def _json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn.util.write_error, but in flask-smorest's shape ({code, status, message}) instead of an HTML page,
    so a client parses every error of this API alike. There is no request id: no request was accepted."""
    from gunicorn import util

    message = _MESSAGES.get(status_int) or (f"{reason}: {mesg}" if mesg else reason)
    body = json.dumps({"code": status_int, "status": reason, "message": message[:1000]}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


def post_fork(server: Any, worker: Any) -> None:
    from gunicorn import util

    # Every worker class answers the requests it refuses with util.write_error, looked up at each call.
    util.write_error = _json_error
    if _gevent():
        # psycopg2 is a C extension that gevent can't patch: give it a wait callback that yields to the hub.
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
    # Pools a --preload master built before forking are reset in the child by models.reset_after_fork (an
    # os.register_at_fork hook), so nothing else is needed here.


def child_exit(server: Any, worker: Any) -> None:
    # prometheus-client multiprocess mode (models.metrics): a gone worker's open-socket gauge stops counting.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker: Any) -> None:
    # The app is loaded now. Its import-time objects (Flask, SQLAlchemy, numpy, scipy, firebase-admin: a few hundred
    # thousand) live as long as the process, yet every full collection would walk them again — pauses of 100 ms and
    # more with a thousand sockets open. Freezing moves them out of the collector's sight; objects made later (the
    # sockets') are still collected as usual.
    gc.collect()
    gc.freeze()
