from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from domain.live import service
from webapp.auth import current_user
from webapp.live.schemas import (
    FinishSchema,
    ListArgsSchema,
    LiveSessionListSchema,
    LiveSessionSchema,
    LiveStartSchema,
    PointBatchSchema,
    PointsResultSchema,
)

blp = Blueprint("live", __name__, url_prefix="/api/v1",
                description="Live workout tracking: followers watch a session as it is recorded")


@blp.route("/live-sessions")
class LiveSessions(MethodView):
    @blp.arguments(LiveStartSchema)
    @blp.response(201, LiveSessionSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Start a live session (one at a time: 409 while another is live)"""
        user = current_user()
        session = service.start(user, data)
        return service.serialize(user.id, session, user)

    @blp.arguments(ListArgsSchema, location="query")
    @blp.response(200, LiveSessionListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Live sessions of athletes you follow and may watch (scope=following), or your own (scope=mine)"""
        return {"items": service.list_sessions(current_user(), args["scope"], args["limit"])}


@blp.route("/live-sessions/<int:session_id>")
class LiveSessionById(MethodView):
    @blp.response(200, LiveSessionSchema)
    def get(self, session_id: int) -> dict[str, Any]:
        """A live session with its recent track as you may see it (others never see privacy-zone points)"""
        user = current_user()
        session, owner = service.get_visible(user.id, session_id)
        return service.serialize(user.id, session, owner)

    @blp.response(204)
    def delete(self, session_id: int) -> None:
        """Discard a live session and its points (owner only)"""
        service.discard(current_user(), session_id)


@blp.route("/live-sessions/<int:session_id>/points")
class LivePoints(MethodView):
    @blp.doc(operationId="addLiveSessionPoints")
    @blp.arguments(PointBatchSchema)
    @blp.response(200, PointsResultSchema)
    def post(self, data: dict[str, Any], session_id: int) -> dict[str, Any]:
        """Append a batch of points (owner only; times strictly increasing; a resent batch is not duplicated)"""
        return service.add_points(current_user().id, session_id, data["points"])


@blp.route("/live-sessions/<int:session_id>/finish")
class FinishLiveSession(MethodView):
    @blp.arguments(FinishSchema)
    @blp.response(200, LiveSessionSchema)
    def post(self, data: dict[str, Any], session_id: int) -> dict[str, Any]:
        """End the session; with save=true it becomes an activity through the upload pipeline (upload_id)"""
        return service.finish(current_user(), session_id, data["save"])
