from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from domain import visibility
from domain.activities import service
from domain.media import attached
from models.activity import SPORTS
from webapp.activities.schemas import (
    ActivityListArgsSchema,
    ActivityPageSchema,
    ActivityPatchSchema,
    ActivitySchema,
    ManualActivitySchema,
    SportSchema,
    StreamArgsSchema,
    StreamSetSchema,
)
from webapp.auth import current_user

blp = Blueprint("activities", __name__, url_prefix="/api/v1", description="Activities, streams and maps")

CONTENT_TYPES = {
    "gpx": "application/gpx+xml", "tcx": "application/vnd.garmin.tcx+xml", "fit": "application/vnd.ant.fit",
}


@blp.route("/activities")
class Activities(MethodView):
    @blp.arguments(ManualActivitySchema)
    @blp.response(201, ActivitySchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a manual activity (no file: a gym session, a run without a watch…)"""
        user = current_user()
        return attached.activity_json(user, service.create_manual(user, data), user)


@blp.route("/activities/<int:activity_id>")
class ActivityById(MethodView):
    @blp.response(200, ActivitySchema)
    def get(self, activity_id: int) -> dict[str, Any]:
        """An activity as the viewer may see it (others get the privacy-filtered map)"""
        user = current_user()
        activity, owner = visibility.get_visible(user, activity_id)
        return attached.activity_json(user, activity, owner)

    @blp.arguments(ActivityPatchSchema)
    @blp.response(200, ActivitySchema)
    def patch(self, changes: dict[str, Any], activity_id: int) -> dict[str, Any]:
        """Edit name, description, sport, visibility, perceived exertion or private notes (owner only)"""
        user = current_user()
        return attached.activity_json(user, service.update(user, activity_id, changes), user)

    @blp.response(204)
    def delete(self, activity_id: int) -> None:
        """Delete the activity and everything derived from it, including the original file"""
        service.delete_activity(current_user(), activity_id)


@blp.route("/users/<int:user_id>/activities")
class UserActivities(MethodView):
    @blp.arguments(ActivityListArgsSchema, location="query")
    @blp.response(200, ActivityPageSchema)
    def get(self, args: dict[str, Any], user_id: int) -> dict[str, Any]:
        """An athlete's activities visible to the viewer, newest first"""
        user = current_user()
        return attached.activity_page(user, service.list_for_user(user, user_id, args))


@blp.route("/me/activities")
class MyActivities(MethodView):
    @blp.arguments(ActivityListArgsSchema, location="query")
    @blp.response(200, ActivityPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The signed-in athlete's activities, newest first (filter by sport and start date)"""
        user = current_user()
        return attached.activity_page(user, service.list_for_user(user, user.id, args))


@blp.route("/activities/<int:activity_id>/streams")
class Streams(MethodView):
    @blp.arguments(StreamArgsSchema, location="query")
    @blp.response(200, StreamSetSchema)
    def get(self, args: dict[str, Any], activity_id: int) -> dict[str, Any]:
        """Per-point streams keyed by type: {"heartrate": {"data": [...], "original_size", "resolution"}}.

        low = 100 points, medium = 1,000, high = 10,000 (all points when fewer). Non-owners get only the
        points outside the athlete's privacy zones and hidden start/end, with time and distance starting at 0.
        """
        return service.streams(current_user(), activity_id, args["keys"], args["resolution"])


@blp.route("/sports")
class Sports(MethodView):
    @blp.response(200, SportSchema(many=True))
    def get(self) -> list[dict[str, str]]:
        """Every sport an activity can have, with its display name and family, in the order to list them"""
        return [{"sport_type": sport, "name": name, "family": family} for sport, (family, name) in SPORTS.items()]


@blp.route("/activities/<int:activity_id>/export/original")
class ExportOriginal(MethodView):
    @blp.doc(operationId="exportActivityOriginal")
    @blp.response(200, content_type="application/octet-stream")
    def get(self, activity_id: int) -> Response:
        """Download the file this activity was uploaded from (owner only)"""
        data, name = service.original_file(current_user(), activity_id)
        ext = name.rsplit(".", 2)
        mimetype = "application/gzip" if name.endswith(".gz") else CONTENT_TYPES.get(ext[-1].lower(),
                                                                                      "application/octet-stream")
        return Response(data, mimetype=mimetype,
                        headers={"Content-Disposition": f'attachment; filename="{name.replace(chr(34), "")}"'})
