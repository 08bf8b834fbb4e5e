"""`POST /api/v1/ws/ticket`: a one-time, short-lived ticket for clients that can't set headers on a WebSocket.

Browsers can't send ``Authorization`` on a WebSocket handshake, and a Firebase ID token in a URL would end up in
access logs for an hour. A ticket is random, lives ~30 s in Redis, and is consumed atomically (GETDEL) by the
first handshake that presents it, so a logged URL is useless.
"""

from __future__ import annotations

import secrets
from typing import cast

from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from models.redis_store import redis_store
from webapp.auth import current_user
from webapp.realtime.hub import Settings

blp = Blueprint("realtime", __name__, url_prefix="/api/v1", description="Real-time socket")

_KEY = "ws:ticket:"


class TicketSchema(Schema):
    ticket = fields.String(required=True, metadata={"description": "Pass as ?ticket= on GET /api/v1/ws"})
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds the ticket stays valid"})


def issue_ticket(user_id: int, ttl_s: int, token_expires_at: float | None = None) -> str:
    """A ticket for ``user_id``; the socket it opens expires with the ID token that asked for it."""
    ticket = secrets.token_urlsafe(32)
    expires = int(token_expires_at) if token_expires_at else 0
    redis_store.client.set(_KEY + ticket, f"{user_id}:{expires}", ex=ttl_s)
    return ticket


def redeem_ticket(ticket: str) -> tuple[int, float | None] | None:
    """(user id, when its token expires) for a live ticket, or None when unknown, used or expired (one use)."""
    if not ticket or len(ticket) > 128:
        return None
    # The shared client is made without decode_responses; redis-py's annotation covers both kinds of client.
    value = cast(bytes | None, redis_store.client.getdel(_KEY + ticket))
    if value is None:
        return None
    user_id, _, expires = value.decode().partition(":")
    return int(user_id), (float(expires) if expires and expires != "0" else None)


@blp.route("/ws/ticket")
class WSTicket(MethodView):
    @blp.response(201, TicketSchema)
    def post(self) -> dict[str, object]:
        """A one-time ticket opening the socket (GET /api/v1/ws?ticket=…) for clients that can't send headers"""
        ttl = Settings.from_config(current_app.config).ticket_ttl_s
        return {"ticket": issue_ticket(current_user().id, ttl, g.get("token_expires_at")), "expires_in": ttl}
