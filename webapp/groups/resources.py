from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from domain.pagination import PageArgsSchema
from domain.social import groups as service
from webapp.auth import current_user
from webapp.groups.schemas import (
    GroupCreateSchema,
    GroupLeaderboardArgsSchema,
    GroupLeaderboardSchema,
    GroupListArgsSchema,
    GroupMemberListArgsSchema,
    GroupMemberPageSchema,
    GroupMemberPatchSchema,
    GroupMemberSchema,
    GroupPageSchema,
    GroupPatchSchema,
    GroupPostPageSchema,
    GroupSchema,
)

blp = Blueprint("groups", __name__, url_prefix="/api/v1",
                description="Groups (clubs): membership, join requests, discussion and weekly leaderboard")


@blp.route("/groups")
class Groups(MethodView):
    @blp.arguments(GroupListArgsSchema, location="query")
    @blp.response(200, GroupPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Discover groups, most members first; q searches names, sport_type filters"""
        return service.discover(current_user(), args["q"], args["sport_type"], args["cursor"], args["limit"])

    @blp.arguments(GroupCreateSchema)
    @blp.response(201, GroupSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a group; its creator becomes the owner"""
        return service.create(current_user(), data)


@blp.route("/me/groups")
class MyGroups(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, GroupPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The signed-in athlete's groups and pending join requests, most recent first"""
        return service.my_groups(current_user(), args["cursor"], args["limit"])


@blp.route("/groups/<int:group_id>")
class GroupById(MethodView):
    @blp.response(200, GroupSchema)
    def get(self, group_id: int) -> dict[str, Any]:
        """A group's card, with the viewer's membership (null when not a member)"""
        return service.describe(current_user(), group_id)

    @blp.arguments(GroupPatchSchema)
    @blp.response(200, GroupSchema)
    def patch(self, changes: dict[str, Any], group_id: int) -> dict[str, Any]:
        """Edit the group (owner and admins); opening an approval group admits everyone waiting"""
        return service.update(current_user(), group_id, changes)

    @blp.response(204)
    def delete(self, group_id: int) -> None:
        """Delete the group with its memberships and discussion (owner only)"""
        service.delete(current_user(), group_id)


@blp.route("/groups/<int:group_id>/join")
class Join(MethodView):
    @blp.response(200, GroupSchema)
    def post(self, group_id: int) -> dict[str, Any]:
        """Join an open group, or ask to join an approval group (membership status pending)"""
        return service.join(current_user(), group_id)


@blp.route("/groups/<int:group_id>/leave")
class Leave(MethodView):
    @blp.response(204)
    def post(self, group_id: int) -> None:
        """Leave the group or withdraw a request (the owner must hand over ownership first: 422)"""
        service.leave(current_user(), group_id)


@blp.route("/groups/<int:group_id>/members")
class Members(MethodView):
    @blp.arguments(GroupMemberListArgsSchema, location="query")
    @blp.response(200, GroupMemberPageSchema)
    def get(self, args: dict[str, Any], group_id: int) -> dict[str, Any]:
        """Members in joining order; status=pending lists join requests (owner and admins only)"""
        return service.members(current_user(), group_id, args["status"], args["cursor"], args["limit"])


@blp.route("/groups/<int:group_id>/members/<int:user_id>")
class MemberById(MethodView):
    @blp.arguments(GroupMemberPatchSchema)
    @blp.response(200, GroupMemberSchema)
    def patch(self, data: dict[str, Any], group_id: int, user_id: int) -> dict[str, Any]:
        """Set a member's role (owner only); role owner hands over ownership and makes you an admin"""
        return service.set_role(current_user(), group_id, user_id, data["role"])

    @blp.response(204)
    def delete(self, group_id: int, user_id: int) -> None:
        """Decline a join request or remove a member (owner and admins; admins can't remove admins)"""
        service.remove_member(current_user(), group_id, user_id)


@blp.route("/groups/<int:group_id>/members/<int:user_id>/approve")
class Approve(MethodView):
    @blp.response(200, GroupMemberSchema)
    def post(self, group_id: int, user_id: int) -> dict[str, Any]:
        """Approve a join request (owner and admins); the athlete is notified"""
        return service.approve(current_user(), group_id, user_id)


@blp.route("/groups/<int:group_id>/feed")
class Feed(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, GroupPostPageSchema)
    def get(self, args: dict[str, Any], group_id: int) -> dict[str, Any]:
        """The group's discussion, newest first (approval groups: active members only)"""
        return service.feed(current_user(), group_id, args["cursor"], args["limit"])


@blp.route("/groups/<int:group_id>/leaderboard")
class Leaderboard(MethodView):
    @blp.arguments(GroupLeaderboardArgsSchema, location="query")
    @blp.response(200, GroupLeaderboardSchema)
    def get(self, args: dict[str, Any], group_id: int) -> dict[str, Any]:
        """This ISO week's (from Monday 00:00 UTC) totals per active member, highest first"""
        return service.leaderboard(current_user(), group_id, args["sport_type"], args["metric"], args["limit"])
