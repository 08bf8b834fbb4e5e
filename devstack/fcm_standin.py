"""A local stand-in for FCM's HTTP v1 API: the development stack's push target, and the tests' and benchmarks'.

The real firebase-admin client talks to it (``FCM_ENDPOINT``), so everything up to the HTTP request is the
production code path. It serves ``POST /v1/projects/{project}/messages:send``, records every request (project,
bearer token and the message as firebase-admin encoded it) and answers like FCM: ``{"name":
"projects/…/messages/…"}``, or — when told to, per token — FCM's error JSON with the
``google.firebase.fcm.v1.FcmError`` detail that firebase-admin maps to its exception classes
(``UnregisteredError``, ``QuotaExceededError``…).

What it received is inspectable over HTTP (development: ``make run`` prints the address):

* ``GET /_sent[?token=T]`` — the messages answered with success, oldest first: ``{"count": n, "messages": [...]}``
  (each item: ``token``, ``project``, ``at`` (Unix time) and ``message``, the FCM message JSON);
* ``GET /_requests[?token=T]`` — every attempt, failures included, with ``answer`` (``ok`` or the FCM error code);
* ``POST /_fail`` ``{"token": T, "code": "UNAVAILABLE", "times": 2}`` — answer that error to the next sends to
  ``T`` (``times: null``: for good), to watch the retry and token-removal paths;
* ``DELETE /_sent`` — forget everything received and scripted.

Production never uses it: ``config.ProductionConfig`` refuses ``FCM_ENDPOINT``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: FCM error code → (HTTP status, google.rpc status, message), as FCM answers them.
ERRORS: dict[str, tuple[int, str, str]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token"),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Message sends'."),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"),
}


def error_body(code: str) -> tuple[int, dict[str, Any]]:
    status, rpc_status, message = ERRORS[code]
    details: list[dict[str, Any]] = [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]
    if code == "INVALID_ARGUMENT":
        details.append({"@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}]})
    return status, {"error": {"code": status, "message": message, "status": rpc_status, "details": details}}


@dataclass(frozen=True)
class Request:
    project: str
    authorization: str
    message: dict[str, Any]
    answer: str  # "ok" or the FCM error code answered
    at: float = field(default_factory=time.time)

    @property
    def token(self) -> str:
        return str(self.message.get("token"))

    def as_json(self) -> dict[str, Any]:
        return {"token": self.token, "project": self.project, "at": self.at, "answer": self.answer,
                "message": self.message}


class FcmServer:
    """``FcmServer()`` listens on 127.0.0.1 (a free port unless ``port`` is given); ``.url`` is what FCM_ENDPOINT
    takes.

    ``fail(token, "UNAVAILABLE", times=2)`` answers that error to the next two sends to ``token`` (then
    success); ``times=None`` answers it for good. ``keep`` bounds how many requests are remembered (a long
    development run); ``on_request`` is called with each one after it was answered (the stack logs them).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, keep: int | None = None,
                 on_request: Callable[[Request], None] | None = None) -> None:
        self.requests: list[Request] = []
        self.keep = keep
        self.on_request = on_request
        self._lock = threading.Lock()
        self._scripted: dict[str, deque[str]] = defaultdict(deque)
        self._permanent: dict[str, str] = {}
        self._ids = itertools.count(1)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: firebase-admin reuses pooled connections

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                parts = url.path.strip("/").split("/")
                raw = self._body()
                if url.path == "/_fail":
                    self._script(raw)
                    return
                if len(parts) != 4 or parts[0] != "v1" or parts[1] != "projects" or parts[3] != "messages:send":
                    self._not_found()
                    return
                try:
                    message = json.loads(raw)["message"]
                    if not isinstance(message, dict):
                        raise ValueError
                except (ValueError, KeyError, TypeError):
                    self._reply(400, error_body("INVALID_ARGUMENT")[1])
                    return
                status, body = server._answer(parts[2], self.headers.get("Authorization", ""), message)
                self._reply(status, body)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                tokens = parse_qs(url.query).get("token")
                token = tokens[0] if tokens else None
                if url.path == "/_sent":
                    items = server.received(token, ok_only=True)
                elif url.path == "/_requests":
                    items = server.received(token, ok_only=False)
                else:
                    self._not_found()
                    return
                self._reply(200, {"count": len(items), "messages": items})

            def do_DELETE(self) -> None:
                if urlsplit(self.path).path != "/_sent":
                    self._not_found()
                    return
                server.reset()
                self._reply(200, {"count": 0, "messages": []})

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length)

            def _script(self, raw: bytes) -> None:
                try:
                    spec = json.loads(raw)
                    server.fail(str(spec["token"]), str(spec["code"]), spec.get("times", 1))
                except (ValueError, KeyError, TypeError) as exc:
                    self._reply(400, {"error": {"code": 400, "message": f"bad /_fail request: {exc}",
                                                "status": "INVALID_ARGUMENT"}})
                    return
                self._reply(200, {"ok": True})

            def _not_found(self) -> None:
                self._reply(404, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}})

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 256
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fcm-standin", daemon=True)
        self.thread.start()

    def _answer(self, project: str, authorization: str, message: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        token = str(message.get("token"))
        with self._lock:
            code = self._scripted[token].popleft() if self._scripted[token] else self._permanent.get(token)
            request = Request(project, authorization, message, code or "ok")
            self.requests.append(request)
            if self.keep is not None and len(self.requests) > self.keep:
                del self.requests[:len(self.requests) - self.keep]
            message_id = next(self._ids)
        if self.on_request is not None:
            with contextlib.suppress(Exception):  # a logging hook never breaks the answer
                self.on_request(request)
        if code:
            return error_body(code)
        return 200, {"name": f"projects/{project}/messages/{message_id}"}

    def fail(self, token: str, code: str, times: int | None = 1) -> None:
        if code not in ERRORS:
            raise ValueError(f"unknown FCM error code {code}")
        with self._lock:
            if times is None:
                self._permanent[token] = code
            else:
                self._scripted[token].extend([code] * int(times))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._scripted.clear()
            self._permanent.clear()

    def sent(self, token: str | None = None) -> list[dict[str, Any]]:
        """Messages answered with success (to ``token`` when given)."""
        with self._lock:
            return [r.message for r in self.requests if r.answer == "ok" and (token is None or r.token == token)]

    def received(self, token: str | None = None, *, ok_only: bool = True) -> list[dict[str, Any]]:
        """Requests as JSON (what ``GET /_sent`` and ``/_requests`` answer)."""
        with self._lock:
            return [r.as_json() for r in self.requests
                    if (not ok_only or r.answer == "ok") and (token is None or r.token == token)]

    def attempts(self, token: str) -> list[str]:
        with self._lock:
            return [r.answer for r in self.requests if r.token == token]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    """``python -m devstack.fcm_standin [PORT]``: serve (a free port by default), print the URL, run until
    terminated, then print how many requests it received."""
    import signal
    import sys

    server = FcmServer(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(server.url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    print(len(server.requests), flush=True)
    server.stop()


if __name__ == "__main__":
    main()
