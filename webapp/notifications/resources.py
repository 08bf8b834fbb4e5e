from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from domain.notifications import inbox as service
from domain.pagination import PageArgsSchema
from webapp.auth import current_user
from webapp.notifications.schemas import MarkReadSchema, NotificationPageSchema, UnreadCountSchema

blp = Blueprint("notifications", __name__, url_prefix="/api/v1", description="In-app notifications")


@blp.route("/notifications")
class Notifications(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, NotificationPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The signed-in athlete's notifications, newest first, with the unread count"""
        return service.list_notifications(current_user(), args["cursor"], args["limit"])


@blp.route("/notifications/read")
class MarkRead(MethodView):
    @blp.arguments(MarkReadSchema)
    @blp.response(200, UnreadCountSchema)
    def post(self, data: dict[str, Any]) -> dict[str, int]:
        """Mark notifications read: {"ids": [...]} or {"all": true}; returns the new unread count"""
        return {"unread_count": service.mark_read(current_user(), data.get("ids"))}


@blp.route("/notifications/unread-count")
class UnreadCount(MethodView):
    @blp.response(200, UnreadCountSchema)
    def get(self) -> dict[str, int]:
        """How many notifications are unread (for the badge)"""
        return {"unread_count": service.unread_count(current_user())}
