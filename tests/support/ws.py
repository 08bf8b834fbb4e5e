"""Real WebSocket test harness: the app served over HTTP + WebSocket, and a small blocking client.

``WSServer`` runs werkzeug's threaded server (a thread per request, like gunicorn gthread) in a thread of the
test process, against the same session-scoped app and the committed test database. ``WSClient`` wraps
websocket-client: JSON frames in and out, protocol pings answered, and the server's close code/reason kept.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from typing import Any, Protocol
from urllib.parse import urlencode

import websocket
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

Frame = dict[str, Any]
WS_PATH = "/api/v1/ws"


class WSClosed(Exception):
    """The server closed the socket (``code``/``reason`` as sent in its close frame; 1006 if none)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"socket closed by the server: {code} {reason!r}")
        self.code = code
        self.reason = reason


class WSServer:
    def __init__(self, app: Flask, host: str = "127.0.0.1") -> None:
        self.app = app
        # werkzeug logs every request at INFO through its own logger; the suite's output stays readable without.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.server: BaseWSGIServer = make_server(host, 0, app, threaded=True)
        self.host = host
        self.port = self.server.server_port
        self.url = f"http://{host}:{self.port}"
        self.ws_url = f"ws://{host}:{self.port}{WS_PATH}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="ws-test-server", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class WSClient:
    """One socket. ``recv`` returns the next JSON frame (pings are answered on the way)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, *, timeout: float = 5.0,
                 rcvbuf: int | None = None) -> None:
        self.url = url
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.hello: Frame | None = None
        sockopt = ((socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf),) if rcvbuf else ()
        self.ws = websocket.create_connection(
            url, header=[f"{k}: {v}" for k, v in (headers or {}).items()], timeout=timeout, sockopt=sockopt,
            enable_multithread=True,
        )

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    def send(self, frame: Frame | str | bytes) -> None:
        if isinstance(frame, bytes):
            self.ws.send_binary(frame)
        else:
            self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    def _closed_by_server(self, frame: websocket.ABNF | None) -> WSClosed:
        code, reason = 1006, ""
        if frame is not None and len(frame.data) >= 2:
            code = int.from_bytes(frame.data[:2], "big")
            reason = frame.data[2:].decode("utf-8", "replace")
        elif frame is not None:
            code = 1005
        self.close_code, self.close_reason = code, reason
        with contextlib.suppress(Exception):  # complete the closing handshake if the server still listens
            self.ws.send_close()
        self.ws.shutdown()
        return WSClosed(code, reason)

    def recv(self, timeout: float = 2.0) -> Frame:
        """The next frame as a dict; raises ``WSClosed`` when the server closed, ``TimeoutError`` on timeout."""
        if self.close_code is not None:
            raise WSClosed(self.close_code, self.close_reason or "")
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no frame within {timeout} s")
            self.ws.settimeout(remaining)
            try:
                frame = self.ws.recv_frame()
            except websocket.WebSocketTimeoutException as exc:
                raise TimeoutError(f"no frame within {timeout} s") from exc
            except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError) as exc:
                raise self._closed_by_server(None) from exc
            if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                raise self._closed_by_server(frame)
            if frame.opcode == websocket.ABNF.OPCODE_PING:
                self.ws.pong(frame.data)
                continue
            if frame.opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY,
                                websocket.ABNF.OPCODE_CONT):
                self.ws.cont_frame.validate(frame)
                self.ws.cont_frame.add(frame)
                if self.ws.cont_frame.is_fire(frame):
                    _opcode, whole = self.ws.cont_frame.extract(frame)
                    return json.loads(whole.data)

    def recv_type(self, frame_type: str, timeout: float = 2.0) -> Frame:
        """The next frame of ``frame_type``, skipping any others."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {frame_type!r} frame within {timeout} s")
            frame = self.recv(timeout=remaining)
            if frame.get("type") == frame_type:
                return frame

    def drain(self, timeout: float = 0.2) -> list[Frame]:
        """Everything that arrives until ``timeout`` passes quietly."""
        frames: list[Frame] = []
        while True:
            try:
                frames.append(self.recv(timeout=timeout))
            except TimeoutError:
                return frames

    def wait_closed(self, timeout: float = 5.0) -> tuple[int, str]:
        """Read (discarding frames) until the server closes; returns (code, reason)."""
        deadline = time.monotonic() + timeout
        while self.close_code is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the server did not close within {timeout} s")
            try:
                self.recv(timeout=remaining)
            except WSClosed:
                break
        return self.close_code or 1006, self.close_reason or ""

    def close(self) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = 1000, "closed by client"
            with contextlib.suppress(Exception):
                self.ws.close(timeout=1)


class HasWSURL(Protocol):
    ws_url: str


def connect(server: HasWSURL, *, token: str | None = None, ticket: str | None = None,
            headers: dict[str, str] | None = None, wait_hello: bool = True, timeout: float = 5.0,
            rcvbuf: int | None = None, **query: Any) -> WSClient:
    """Open a socket; with ``wait_hello`` returns once "hello" arrived (the socket is then subscribed) or the
    server closed it (``client.close_code`` set, no exception)."""
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    params = {k: v for k, v in query.items() if v is not None}
    if ticket is not None:
        params["ticket"] = ticket
    url = server.ws_url + (f"?{urlencode(params)}" if params else "")
    client = WSClient(url, all_headers, timeout=timeout, rcvbuf=rcvbuf)
    if wait_hello:
        with contextlib.suppress(WSClosed):
            client.hello = client.recv_type("hello", timeout=timeout)
    return client
