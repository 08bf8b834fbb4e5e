from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from domain.pagination import PageArgsSchema
from domain.social import follows as service
from webapp.auth import current_user
from webapp.follows.schemas import FollowStateSchema, UserPageSchema

blp = Blueprint("follows", __name__, url_prefix="/api/v1", description="Follows, follow requests and blocks")


@blp.route("/users/<int:user_id>/follow")
class FollowResource(MethodView):
    @blp.response(200, FollowStateSchema)
    def post(self, user_id: int) -> dict[str, str]:
        """Follow an athlete (a private account gets a request to approve: status pending)"""
        return {"status": service.follow(current_user(), user_id)}

    @blp.doc(operationId="unfollowUser")
    @blp.response(204)
    def delete(self, user_id: int) -> None:
        """Unfollow, or withdraw a pending request"""
        service.unfollow(current_user(), user_id)


@blp.route("/users/<int:user_id>/followers")
class Followers(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, UserPageSchema)
    def get(self, args: dict[str, Any], user_id: int) -> dict[str, Any]:
        """Who follows this athlete, newest first"""
        return service.followers(current_user(), user_id, args["cursor"], args["limit"])


@blp.route("/users/<int:user_id>/following")
class Following(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, UserPageSchema)
    def get(self, args: dict[str, Any], user_id: int) -> dict[str, Any]:
        """Whom this athlete follows, newest first"""
        return service.following(current_user(), user_id, args["cursor"], args["limit"])


@blp.route("/me/follow-requests")
class FollowRequests(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, UserPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Pending requests to follow the signed-in (private) athlete"""
        return service.pending_requests(current_user(), args["cursor"], args["limit"])


@blp.route("/me/follow-requests/<int:user_id>/accept")
class AcceptRequest(MethodView):
    @blp.response(204)
    def post(self, user_id: int) -> None:
        """Accept a follow request"""
        service.answer_request(current_user(), user_id, accept=True)


@blp.route("/me/follow-requests/<int:user_id>/decline")
class DeclineRequest(MethodView):
    @blp.response(204)
    def post(self, user_id: int) -> None:
        """Decline a follow request"""
        service.answer_request(current_user(), user_id, accept=False)


@blp.route("/users/<int:user_id>/block")
class BlockResource(MethodView):
    @blp.response(204)
    def post(self, user_id: int) -> None:
        """Block an athlete: ends follows both ways; they can no longer see, follow or message you"""
        service.block(current_user(), user_id)

    @blp.doc(operationId="unblockUser")
    @blp.response(204)
    def delete(self, user_id: int) -> None:
        """Unblock an athlete"""
        service.unblock(current_user(), user_id)


@blp.route("/me/blocks")
class MyBlocks(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, UserPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Athletes the signed-in athlete blocked"""
        return service.blocked(current_user(), args["cursor"], args["limit"])
