"""The socket's frame protocol: one registry of typed JSON frame handlers, filled by the feature packages.

A client frame is a JSON object with a ``type`` (``"chat.send"``, ``"live.point"``, …), an optional ``ref`` the
client picks to match the reply, and the type's own fields. A handler gets the connection and the frame, does its
work (in an app context, with ``db.session`` removed after every frame) and returns the reply frame or None; the
dispatcher copies ``ref`` onto the reply. A ``FrameError`` becomes an ``error`` frame on the same socket — a bad
frame never closes the connection.

Feature packages register with ``@handler("type", schema=…, reply=…)`` in their own ``frames`` module, which
``create_app`` imports: ``schema`` is the marshmallow schema the handler loads the frame with, ``reply`` the type of
the frame it answers with. Both feed the AsyncAPI document (``webapp.realtime.asyncapi``), so the published
description of the socket is the one the server validates with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import marshmallow as ma

Frame = dict[str, Any]


class Connection(Protocol):
    """What a handler may do with the socket it was called for (implemented in ``webapp.realtime.hub``)."""

    id: str
    user_id: int

    def send(self, frame: Frame) -> bool:
        """Queue a frame for this socket without blocking; False when the socket is closing or too far behind."""
        ...

    def subscribe(self, channel: str) -> None:
        """Also receive what is published on ``channel`` (e.g. a live session's), until unsubscribed or closed."""
        ...

    def unsubscribe(self, channel: str) -> None: ...


class FrameError(Exception):
    """A client error answered on the socket: ``{"type": "error", "code", "message", "status", "ref"}``."""

    def __init__(self, code: str, message: str, *, status: int = 400, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra

    def frame(self) -> Frame:
        return {"type": "error", "code": self.code, "message": self.message, "status": self.status, **self.extra}


Handler = Callable[[Connection, Frame], Frame | None]
ConnectHook = Callable[[Connection, dict[str, str]], None]

@dataclass(frozen=True)
class FrameSpec:
    """What the AsyncAPI document says about a client frame type."""

    schema: type[ma.Schema] | None
    reply: str | None
    summary: str


HANDLERS: dict[str, Handler] = {}
FRAME_SPECS: dict[str, FrameSpec] = {}
#: Called once a socket is authenticated and subscribed, with the handshake's query arguments
#: (e.g. ``last_message_id`` for chat catch-up). Exceptions are logged, never fatal to the socket.
CONNECT_HOOKS: list[ConnectHook] = []

def handler(frame_type: str, *, schema: type[ma.Schema] | None = None,
            reply: str | None = None) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        if frame_type in HANDLERS and HANDLERS[frame_type] is not fn:
            raise RuntimeError(f"two handlers for frame type {frame_type!r}")
        HANDLERS[frame_type] = fn
        FRAME_SPECS[frame_type] = FrameSpec(schema, reply, (fn.__doc__ or "").strip().split("\n")[0])
        return fn

    return register


def on_connect(fn: ConnectHook) -> ConnectHook:
    if fn not in CONNECT_HOOKS:
        CONNECT_HOOKS.append(fn)
    return fn
