"""Kudos and comments, mounted on both ``/activities/{id}`` and ``/posts/{id}`` (the ``collection`` segment)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from domain.pagination import PageArgsSchema
from domain.social import interactions as service
from webapp.auth import current_user
from webapp.interactions.schemas import (
    CommentCreateSchema,
    CommentPageSchema,
    CommentSchema,
    KudoerPageSchema,
    KudosStateSchema,
)

blp = Blueprint("interactions", __name__, url_prefix="/api/v1", description="Kudos and comments")

KINDS: dict[str, service.Kind] = {"activities": "activity", "posts": "post"}
TARGET = "/<any(activities, posts):collection>/<int:target_id>"


@blp.route(f"{TARGET}/kudos")
class KudosResource(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, KudoerPageSchema)
    def get(self, args: dict[str, Any], collection: str, target_id: int) -> dict[str, Any]:
        """Athletes who gave kudos, newest first"""
        return service.list_kudos(current_user(), KINDS[collection], target_id, args["cursor"], args["limit"])

    @blp.doc(operationId="giveKudos")
    @blp.response(201, KudosStateSchema)
    @blp.alt_response(200, schema=KudosStateSchema, description="Kudos already given: nothing changed")
    def post(self, collection: str, target_id: int) -> tuple[dict[str, Any], int]:
        """Give kudos (once per athlete; repeating it is a no-op answered with 200)"""
        state, created = service.give_kudos(current_user(), KINDS[collection], target_id)
        return state, 201 if created else 200

    @blp.doc(operationId="removeKudos")
    @blp.response(200, KudosStateSchema)
    def delete(self, collection: str, target_id: int) -> dict[str, Any]:
        """Take kudos back (idempotent)"""
        return service.remove_kudos(current_user(), KINDS[collection], target_id)


@blp.route(f"{TARGET}/comments")
class CommentsResource(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, CommentPageSchema)
    def get(self, args: dict[str, Any], collection: str, target_id: int) -> dict[str, Any]:
        """Comments, oldest first (conversation order)"""
        return service.list_comments(current_user(), KINDS[collection], target_id, args["cursor"], args["limit"])

    @blp.arguments(CommentCreateSchema)
    @blp.response(201, CommentSchema)
    def post(self, data: dict[str, Any], collection: str, target_id: int) -> dict[str, Any]:
        """Comment (1 to 2,000 characters)"""
        return service.add_comment(current_user(), KINDS[collection], target_id, data["text"])


@blp.route("/comments/<int:comment_id>")
class CommentById(MethodView):
    @blp.response(204)
    def delete(self, comment_id: int) -> None:
        """Delete a comment (its author, or the owner of the activity or post it is on)"""
        service.delete_comment(current_user(), comment_id)
