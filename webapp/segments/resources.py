from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from domain.pagination import PageArgsSchema
from domain.segments import service
from webapp.auth import current_user
from webapp.segments.schemas import (
    AchievementPageSchema,
    EffortPageSchema,
    EffortSchema,
    ExploreArgsSchema,
    LeaderboardArgsSchema,
    LeaderboardSchema,
    SegmentCreateSchema,
    SegmentEffortArgsSchema,
    SegmentPageSchema,
    SegmentSchema,
)

blp = Blueprint("segments", __name__, url_prefix="/api/v1",
                description="Segments, efforts, leaderboards and achievements")


@blp.route("/segments")
class Segments(MethodView):
    @blp.arguments(SegmentCreateSchema)
    @blp.response(201, SegmentSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a segment from a range of one of your activities, or from a list of points.

        Existing activities in its area are matched against it in the background.
        """
        user = current_user()
        return service.serialize(user, service.create(user, data))


@blp.route("/segments/explore")
class Explore(MethodView):
    @blp.doc(operationId="exploreSegments")
    @blp.arguments(ExploreArgsSchema, location="query")
    @blp.response(200, SegmentSchema(many=True))
    def get(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        """Segments in a map area, most popular (most athletes) first"""
        return service.explore(current_user(), args["bounds"], args["sport_type"], args["limit"])


@blp.route("/segments/<int:segment_id>")
class SegmentById(MethodView):
    @blp.response(200, SegmentSchema)
    def get(self, segment_id: int) -> dict[str, Any]:
        """A segment, with the viewer's best effort and whether they starred it"""
        return service.serialize(current_user(), service.get(segment_id))


@blp.route("/segments/<int:segment_id>/star")
class Star(MethodView):
    @blp.doc(operationId="starSegment")
    @blp.response(200, SegmentSchema)
    def put(self, segment_id: int) -> dict[str, Any]:
        """Star a segment"""
        user = current_user()
        return service.serialize(user, service.star(user, segment_id, True), starred=True)

    @blp.doc(operationId="unstarSegment")
    @blp.response(200, SegmentSchema)
    def delete(self, segment_id: int) -> dict[str, Any]:
        """Unstar a segment"""
        user = current_user()
        return service.serialize(user, service.star(user, segment_id, False), starred=False)


@blp.route("/me/starred-segments")
class Starred(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, SegmentPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Segments the signed-in athlete starred, most recent first"""
        return service.starred(current_user(), args["cursor"], args["limit"])


@blp.route("/segments/<int:segment_id>/efforts")
class SegmentEfforts(MethodView):
    @blp.arguments(SegmentEffortArgsSchema, location="query")
    @blp.response(200, EffortPageSchema)
    def get(self, args: dict[str, Any], segment_id: int) -> dict[str, Any]:
        """Your efforts on a segment, newest first"""
        return service.my_efforts(current_user(), segment_id, args["cursor"], args["limit"])


@blp.route("/segments/<int:segment_id>/leaderboard")
class Leaderboard(MethodView):
    @blp.arguments(LeaderboardArgsSchema, location="query")
    @blp.response(200, LeaderboardSchema)
    def get(self, args: dict[str, Any], segment_id: int) -> dict[str, Any]:
        """Each athlete's best effort, fastest first (ties to the earlier effort); public activities only"""
        return service.leaderboard(current_user(), segment_id, args)


@blp.route("/activities/<int:activity_id>/efforts")
class ActivityEfforts(MethodView):
    @blp.response(200, EffortSchema(many=True))
    def get(self, activity_id: int) -> list[dict[str, Any]]:
        """Segment efforts of an activity (others don't see efforts that touch a hidden part)"""
        return service.activity_efforts(current_user(), activity_id)


@blp.route("/users/<int:user_id>/achievements")
class Achievements(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, AchievementPageSchema)
    def get(self, args: dict[str, Any], user_id: int) -> dict[str, Any]:
        """An athlete's achievements (PRs, KOM/QOM, top 10s, best efforts, milestones, streaks), newest first"""
        return service.achievements_for(current_user(), user_id, args["cursor"], args["limit"])
