"""Socket frame handlers for chat: the same service calls (and error statuses) as the REST views.

Client → server: ``chat.send`` {conversation_id, client_id, body} → ``chat.ack`` {client_id, message, created};
``chat.typing`` {conversation_id} (no reply; other members get ``chat.typing``, at most one per 2 s);
``chat.read`` {conversation_id, message_id} → ``chat.read`` {conversation_id, user_id, message_id (the receipt
now), unread_count}, and when the receipt moved every member's sockets (the reader's included) get
``chat.read`` {conversation_id, user_id, message_id}; ``chat.sync`` {after_id,
limit?} → ``chat.sync`` {messages (oldest first), has_more}.

On connect with ``?last_message_id=N`` the socket gets one ``chat.sync`` frame with the messages after N, right
after ``hello`` (the socket is already subscribed then, so nothing committed later is missed either); when
``has_more`` is true the client continues with ``chat.sync`` {after_id: last id received}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask import current_app
from marshmallow import validate

from domain.chat import service
from domain.chat.service import ChatError
from webapp.chat.schemas import MessageCreateSchema
from webapp.realtime.frames import Connection, Frame, FrameError, handler, on_connect


class _FrameSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # "type" and "ref" ride along on every frame


class SendFrameSchema(_FrameSchema, MessageCreateSchema):
    class Meta:
        unknown = ma.EXCLUDE

    conversation_id = ma.fields.Integer(required=True)


class ConversationFrameSchema(_FrameSchema):
    conversation_id = ma.fields.Integer(required=True)


class ReadFrameSchema(ConversationFrameSchema):
    message_id = ma.fields.Integer(required=True, validate=validate.Range(min=1))


class SyncFrameSchema(_FrameSchema):
    after_id = ma.fields.Integer(required=True, validate=validate.Range(min=0))
    limit = ma.fields.Integer(load_default=None, validate=validate.Range(1, 1000))


def _load(schema: ma.Schema, frame: Frame) -> dict[str, Any]:
    try:
        return schema.load(frame)
    except ma.ValidationError as exc:
        raise FrameError("invalid", "The frame's fields are not valid.", status=422, errors=exc.messages) from None


def _refusals(fn: Callable[[Connection, Frame], Frame | None]) -> Callable[[Connection, Frame], Frame | None]:
    """A service refusal becomes an ``error`` frame with the REST status (403, 404, 409, 422, 429)."""

    def wrapper(conn: Connection, frame: Frame) -> Frame | None:
        try:
            return fn(conn, frame)
        except ChatError as exc:
            extra: dict[str, Any] = {}
            if exc.field:
                extra["errors"] = {exc.field: [exc.message]}
            if exc.retry_after is not None:
                extra["retry_after"] = exc.retry_after
            raise FrameError(exc.code, exc.message, status=exc.status, **extra) from None

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


_send_schema = SendFrameSchema()
_conversation_schema = ConversationFrameSchema()
_read_schema = ReadFrameSchema()
_sync_schema = SyncFrameSchema()


@handler("chat.send", schema=SendFrameSchema, reply="chat.ack")
@_refusals
def send(conn: Connection, frame: Frame) -> Frame:
    """Store (or find the resent) message; every member's sockets get chat.message after the commit."""
    data = _load(_send_schema, frame)
    message, created = service.send(conn.user_id, data["conversation_id"], data["client_id"], data["body"])
    return {"type": "chat.ack", "client_id": data["client_id"], "created": created,
            "message": service.message_json(message)}


@handler("chat.typing", schema=ConversationFrameSchema)
@_refusals
def typing(conn: Connection, frame: Frame) -> None:
    """Relay to the other members (not stored); extra indicators within the interval are dropped quietly."""
    service.typing(conn.user_id, _load(_conversation_schema, frame)["conversation_id"])
    return None


@handler("chat.read", schema=ReadFrameSchema, reply="chat.read")
@_refusals
def read(conn: Connection, frame: Frame) -> Frame:
    """Store the receipt; the reply has the broadcast's shape (plus unread_count) and is sent even when the
    receipt did not move (an older id), so the client always learns where it stands."""
    data = _load(_read_schema, frame)
    state = service.mark_read(conn.user_id, data["conversation_id"], data["message_id"])
    return {"type": "chat.read", "conversation_id": state["conversation_id"], "user_id": conn.user_id,
            "message_id": state["last_read_message_id"], "unread_count": state["unread_count"]}


def _sync_frame(user_id: int, after_id: int, limit: int | None) -> Frame:
    page = current_app.config["CHAT_SYNC_PAGE"]
    result = service.sync(user_id, after_id, min(limit or page, page))
    return {"type": "chat.sync", "after_id": after_id, "has_more": result["has_more"],
            "messages": [service.message_json(m) for m in result["messages"]]}


@handler("chat.sync", schema=SyncFrameSchema, reply="chat.sync")
@_refusals
def sync(conn: Connection, frame: Frame) -> Frame:
    """The messages after after_id in all the user's conversations, oldest first, a page at a time."""
    data = _load(_sync_schema, frame)
    return _sync_frame(conn.user_id, data["after_id"], data["limit"])


@on_connect
def catch_up(conn: Connection, query: dict[str, str]) -> None:
    """``?last_message_id=N``: send what was missed since N as one chat.sync frame, right after hello."""
    raw = query.get("last_message_id")
    if raw is None:
        return
    try:
        after_id = int(raw)
        if after_id < 0:
            raise ValueError
    except ValueError:
        conn.send({"type": "error", "code": "invalid", "status": 422,
                   "message": "last_message_id must be a non-negative integer."})
        return
    conn.send(_sync_frame(conn.user_id, after_id, None))
