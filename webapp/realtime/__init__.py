"""Real-time delivery: the authenticated socket at /api/v1/ws, its frame dispatch and the per-process hub.

See docs/realtime.md for the protocol (frames, close codes, ticket flow, reconnect and catch-up) and the server
model. Feature packages add frame handlers in their own ``frames`` module (loaded by ``create_app``).
"""

from __future__ import annotations

from flask import Flask

from webapp.realtime.endpoint import ws_bp
from webapp.realtime.hub import Settings
from webapp.realtime.resources import blp as ticket_blp


def register_realtime(app: Flask) -> None:
    """Mount the socket route and the ticket view (the features' frame handlers are loaded by create_app)."""
    settings = Settings.from_config(app.config)
    # simple-websocket answers protocol pings and closes a socket whose pong doesn't come back within one
    # interval (dead peers), and closes with 1009 above the hard frame size before buffering more of it.
    app.config.setdefault("SOCK_SERVER_OPTIONS", {
        "ping_interval": settings.heartbeat_s, "max_message_size": settings.hard_max_frame_bytes,
    })
    api = app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    api.register_blueprint(ticket_blp)
    app.register_blueprint(ws_bp)
