"""Requests gunicorn refuses itself (URI or headers too long, a malformed request line) are answered in the
API's JSON error shape, not gunicorn's HTML page: config/gunicorn.py installs its writer in each worker."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.processes import gunicorn


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The app gunicorn serves here: the refusals under test happen before any app runs."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    env = {k: v for k, v in os.environ.items() if k != "FIREBASE_AUTH_EMULATOR_HOST"}
    with gunicorn("tests.config.test_gunicorn_errors:hello", {**env, "APP_ENV": "testing"}, workers=1,
                  ready=_answers, timeout=30) as port:
        yield ("127.0.0.1", port)


def _answers(port: int) -> bool:
    try:
        return _send(("127.0.0.1", port), b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0] == 200
    except OSError:
        return False


def _send(address: tuple[str, int], raw: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(address, timeout=10) as conn:
        conn.sendall(raw)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(("raw", "code"), [
    (b"GET /api/v1/me?q=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-Big: " + b"x" * 9000 + b"\r\n\r\n", 431),
    (b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n", 431),
    (b"NOT A REQUEST LINE\r\n\r\n", 400),
])
def test_gunicorns_own_refusals_are_json(server: tuple[str, int], raw: bytes, code: int) -> None:
    status, headers, body = _send(server, raw)
    assert status == code
    assert headers["content-type"] == "application/json"
    payload = json.loads(body)
    assert payload["code"] == code and isinstance(payload["status"], str) and payload["message"]
