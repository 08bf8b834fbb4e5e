"""`GET /api/v1/ws`: authenticate the handshake, then run one socket's inbound loop and frame dispatch.

The handshake is accepted first (flask-sock answers the upgrade before our code runs), so a refused client gets
an application close code it can act on (4401: get a fresh token or ticket) rather than a bare HTTP status a
browser would hide. After authentication the connection is subscribed to its user's channel and marked online
*before* "hello" goes out: a client that saw "hello" misses nothing published afterwards.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import redis
from flask import Blueprint, current_app, request
from marshmallow import ValidationError
from simple_websocket import ConnectionClosed
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from domain.errors import STATUS_CODES, Refusal
from models import User, db
from models.pubsub import Frame, pubsub
from webapp import auth
from webapp.auth import bearer_token, provision_user
from webapp.extensions import sock
from webapp.httpcache import origin_allowed
from webapp.inputs import UnsafeInput, parse_json
from webapp.realtime import frames
from webapp.realtime.hub import (
    CLOSE_INTERNAL,
    CLOSE_TOO_SLOW,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHENTICATED,
    TOO_SLOW_REASON,
    Connection,
    HubUnavailable,
    Settings,
    get_hub,
)
from webapp.realtime.resources import redeem_ticket

log = logging.getLogger(__name__)

#: ``auth.expiring`` goes out this long before the socket's ID token expires.
EXPIRY_WARNING_S = 60.0

ws_bp = Blueprint("realtime_ws", __name__)

# HTTP statuses raised by shared service code (flask_smorest.abort) → error frame codes.


class Rejected(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _io_model() -> str:
    try:
        from gevent import monkey
    except ImportError:
        return "threads"
    return "gevent" if monkey.is_module_patched("socket") else "threads"


def verify_token(token: str) -> dict[str, Any]:
    """The verified claims of an ID token, or ``Rejected`` with the close code and reason to use."""
    try:
        return auth.verify_token(token)
    except auth.TokenRejected as exc:
        if exc.kind == "unavailable":
            raise Rejected(CLOSE_TRY_AGAIN, "try again later") from None
        raise Rejected(CLOSE_UNAUTHENTICATED, "token expired" if exc.kind == "expired" else "invalid token") from None


def authenticate_handshake() -> tuple[int, float | None]:
    """(user id, when its token expires) for this handshake (``?ticket=`` or ``Authorization: Bearer``), or
    ``Rejected``."""
    if not origin_allowed(request.headers.get("Origin"), request.host, current_app.config["CORS_ORIGINS"]):
        raise Rejected(CLOSE_UNAUTHENTICATED, "origin not allowed (CORS_ORIGINS)")
    ticket = request.args.get("ticket")
    if ticket is not None:
        try:
            redeemed = redeem_ticket(ticket)
        except redis.RedisError:
            log.warning("ticket store unavailable", exc_info=True)
            raise Rejected(CLOSE_TRY_AGAIN, "try again later") from None
        if redeemed is None:
            raise Rejected(CLOSE_UNAUTHENTICATED, "invalid or expired ticket")
        return redeemed
    token = bearer_token()
    if token is None:
        raise Rejected(CLOSE_UNAUTHENTICATED, "unauthenticated")
    claims = verify_token(token)
    return provision_user(claims).id, _expiry(claims)


def _expiry(claims: dict[str, Any]) -> float | None:
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) else None


def refresh_auth(conn: Connection, frame: Frame) -> Frame:
    """``auth.refresh`` {token}: a fresh ID token for the same athlete keeps the socket open past the old one's
    expiry (mobile SDKs refresh tokens hourly); anything else is refused and the old expiry stands."""
    token = frame.get("token")
    if not isinstance(token, str) or not token:
        return error_frame("invalid", "auth.refresh needs a token.", 422)
    try:
        claims = verify_token(token)
    except Rejected as exc:
        return error_frame("unauthenticated", exc.reason, 401)
    user_id = db.session.scalar(select(User.id).where(User.firebase_uid == claims["uid"]))
    if user_id != conn.user_id:
        return error_frame("forbidden", "The token belongs to another account.", 403)
    conn.auth_expires_at = _expiry(claims)
    conn.expiry_warned = False
    return {"type": "auth.refreshed", "expires_at": conn.auth_expires_at}


def check_expiry(conn: Connection, now: float) -> None:
    """Warn a minute before the socket's token expires; close it (4401 "token expired") when it has."""
    expires = conn.auth_expires_at
    if expires is None:
        return
    if now >= expires:
        conn.close(CLOSE_UNAUTHENTICATED, "token expired")
    elif not conn.expiry_warned and now >= expires - EXPIRY_WARNING_S:
        conn.expiry_warned = True
        conn.send({"type": "auth.expiring", "expires_at": expires})


def _reject(ws: Any, code: int, reason: str) -> None:
    try:
        ws.close(reason=code, message=reason)
    except ConnectionClosed:
        return
    # Give the client a moment to answer the close (its reader thread then ends), so the close frame is read
    # before the TCP connection goes away.
    ws.thread.join(timeout=2.0)


def error_frame(code: str, message: str, status: int, ref: Any = None, **extra: Any) -> Frame:
    frame: Frame = {"type": "error", "code": code, "message": message, "status": status, **extra}
    if ref is not None:
        frame["ref"] = ref
    return frame


def _http_error_frame(exc: HTTPException) -> Frame:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    extra = {"errors": data["errors"]} if data.get("errors") else {}
    return error_frame(STATUS_CODES.get(status, "error"), str(data.get("message") or exc.description), status,
                       **extra)


def dispatch(conn: Connection, raw: str | bytes) -> None:
    """Answer one client frame on ``conn``. A bad frame gets an ``error`` frame; the socket stays open."""
    settings = conn.settings
    if isinstance(raw, bytes):
        conn.send(error_frame("bad_frame", "Frames are JSON text; binary frames are not accepted.", 400))
        return
    if len(raw) > settings.max_frame_bytes or len(raw.encode()) > settings.max_frame_bytes:
        conn.send(error_frame("frame_too_large", f"Frames are limited to {settings.max_frame_bytes} bytes.", 413))
        return
    try:
        frame = parse_json(raw)  # the REST bodies' guard: no NUL, surrogate, 1,000-deep nesting or NaN
    except UnsafeInput as exc:
        code = "bad_json" if exc.status == 400 else "invalid"
        conn.send(error_frame(code, exc.message.replace("The body", "The frame"), exc.status))
        return
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        conn.send(error_frame("bad_frame", 'A frame is a JSON object with a string "type".', 400))
        return
    ref = frame.get("ref")
    if not conn.bucket.take(time.monotonic()):
        conn.send(error_frame("rate_limited", f"Too many frames: at most {settings.rate_per_s:g} per second "
                              f"(bursts of {settings.rate_burst}).", 429, ref))
        return
    frame_type = frame["type"]
    if frame_type == "ping":
        reply: Frame | None = {"type": "pong"}
    elif frame_type == "auth.refresh":
        try:
            reply = refresh_auth(conn, frame)
        finally:
            db.session.remove()
    else:
        handler = frames.HANDLERS.get(frame_type)
        if handler is None:
            conn.send(error_frame("unknown_type", f"Unknown frame type {frame_type[:64]!r}.", 400, ref))
            return
        reply = _call(handler, conn, frame)
    if reply is not None:
        if ref is not None:
            reply.setdefault("ref", ref)
        conn.send(reply)


def _call(handler: frames.Handler, conn: Connection, frame: Frame) -> Frame | None:
    try:
        return handler(conn, frame)
    except frames.FrameError as exc:
        return exc.frame()
    except Refusal as exc:
        return error_frame(exc.code, exc.message, exc.status, **({"errors": exc.errors} if exc.errors else {}))
    except HTTPException as exc:  # e.g. a schema's load aborting the way it does in a REST view
        return _http_error_frame(exc)
    except ValidationError as exc:
        return error_frame("invalid", "The frame's fields are not valid.", 422, errors=exc.messages)
    except Exception:
        log.exception("frame handler for %r failed (socket %s, user %s)", frame.get("type"), conn.id, conn.user_id)
        return error_frame("internal", "The server failed to handle this frame.", 500)
    finally:
        db.session.remove()  # rolls back whatever the handler left open


def _mark_online(conn: Connection) -> None:
    try:
        pubsub.mark_online(conn.user_id, conn.id)
    except redis.RedisError:
        log.warning("presence refresh failed", exc_info=True)


def _run_connect_hooks(conn: Connection, query: dict[str, str]) -> None:
    for hook in list(frames.CONNECT_HOOKS):
        try:
            hook(conn, query)
        except Exception:
            log.exception("on_connect hook %s failed (socket %s)", getattr(hook, "__name__", hook), conn.id)
        finally:
            db.session.remove()


@sock.route("/api/v1/ws", bp=ws_bp)
def websocket(ws: Any) -> None:
    """One socket's life: authenticate, subscribe, hello, then read and dispatch frames until it closes."""
    settings = Settings.from_config(current_app.config)
    try:
        user_id, expires_at = authenticate_handshake()
    except Rejected as exc:
        _reject(ws, exc.code, exc.reason)
        return
    except Exception:
        log.exception("socket handshake failed")
        _reject(ws, CLOSE_INTERNAL, "internal error")
        return
    finally:
        db.session.remove()
    try:
        hub = get_hub()
    except (HubUnavailable, redis.RedisError):
        log.warning("pub/sub unavailable; refusing a socket", exc_info=True)
        _reject(ws, CLOSE_TRY_AGAIN, "try again later")
        return
    conn = Connection(hub, ws, user_id, settings)
    conn.auth_expires_at = expires_at
    try:
        hub.add(conn)
    except (HubUnavailable, redis.RedisError):
        hub.remove(conn)
        _reject(ws, CLOSE_TRY_AGAIN, "try again later")
        return
    conn.start()
    try:
        _mark_online(conn)
        conn.send({"type": "hello", "user_id": user_id, "connection_id": conn.id, "heartbeat_s": settings.heartbeat_s,
                   "server": {"pid": os.getpid(), "io": _io_model()}})
        _run_connect_hooks(conn, {k: v for k, v in request.args.items() if k != "ticket"})
        next_presence = time.monotonic() + settings.presence_s
        while conn.closing is None:
            data = ws.receive(timeout=settings.tick_s)
            if data is not None:
                dispatch(conn, data)
            now = time.monotonic()
            if now >= next_presence:
                _mark_online(conn)
                next_presence = now + settings.presence_s
            if conn.writer_stuck(now):
                conn.close(CLOSE_TOO_SLOW, TOO_SLOW_REASON)
            check_expiry(conn, time.time())
    except ConnectionClosed:
        pass
    except Exception:
        log.exception("socket %s failed", conn.id)
        conn.close(CLOSE_INTERNAL, "internal error")
    finally:
        hub.remove(conn)
        conn.close()
        try:
            pubsub.mark_offline(conn.user_id, conn.id)
        except redis.RedisError:
            log.warning("could not mark socket %s offline (it ages out)", conn.id, exc_info=True)
        # Let the writer finish a close frame it is sending; a writer stuck on a client that stopped reading
        # is unblocked by shutting the socket down.
        conn.writer_done.wait(timeout=settings.write_timeout_s)
        conn.kill_socket()
        db.session.remove()
