"""A local stand-in for FCM's HTTP v1 API, so tests and benchmarks drive the real firebase-admin client.

It serves ``POST /v1/projects/{project}/messages:send``, records every request (project, bearer token and the
message as firebase-admin encoded it) and answers like FCM: ``{"name": "projects/…/messages/…"}``, or — when
told to, per token — FCM's error JSON with the ``google.firebase.fcm.v1.FcmError`` detail that firebase-admin
maps to its exception classes (``UnregisteredError``, ``QuotaExceededError``…).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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

    @property
    def token(self) -> str:
        return str(self.message.get("token"))


class FcmServer:
    """``FcmServer()`` listens on 127.0.0.1 (a free port); ``.url`` is what FCM_ENDPOINT takes.

    ``fail(token, "UNAVAILABLE", times=2)`` answers that error to the next two sends to ``token`` (then
    success); ``times=None`` answers it for good.
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._scripted: dict[str, deque[str]] = defaultdict(deque)
        self._permanent: dict[str, str] = {}
        self._ids = itertools.count(1)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: firebase-admin reuses pooled connections

            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if len(parts) != 4 or parts[0] != "v1" or parts[1] != "projects" or parts[3] != "messages:send":
                    self._reply(404, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}})
                    return
                try:
                    message = json.loads(raw)["message"]
                except (ValueError, KeyError):
                    self._reply(400, error_body("INVALID_ARGUMENT")[1])
                    return
                status, body = server._answer(parts[2], self.headers.get("Authorization", ""), message)
                self._reply(status, body)

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 256
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _answer(self, project: str, authorization: str, message: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        token = str(message.get("token"))
        with self._lock:
            code = self._scripted[token].popleft() if self._scripted[token] else self._permanent.get(token)
            self.requests.append(Request(project, authorization, message, code or "ok"))
            message_id = next(self._ids)
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
                self._scripted[token].extend([code] * times)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._scripted.clear()
            self._permanent.clear()

    def sent(self, token: str | None = None) -> list[dict[str, Any]]:
        """Messages answered with success (to ``token`` when given)."""
        with self._lock:
            return [r.message for r in self.requests if r.answer == "ok" and (token is None or r.token == token)]

    def attempts(self, token: str) -> list[str]:
        with self._lock:
            return [r.answer for r in self.requests if r.token == token]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    """``python -m tests.support.fcm``: serve on a free port, print the URL, run until terminated."""
    import signal

    server = FcmServer()
    print(server.url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    print(len(server.requests), flush=True)
    server.stop()


if __name__ == "__main__":
    main()
