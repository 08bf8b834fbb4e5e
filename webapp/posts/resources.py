from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from domain.media import attached
from domain.social import posts as service
from webapp.auth import current_user
from webapp.posts.schemas import PostCreateSchema, PostPatchSchema, PostSchema

blp = Blueprint("posts", __name__, url_prefix="/api/v1", description="Posts, shared activities and group posts")


@blp.route("/posts")
class Posts(MethodView):
    @blp.arguments(PostCreateSchema)
    @blp.response(201, PostSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Write a post, share an activity with a caption, or post in a group you are an active member of"""
        user = current_user()
        return attached.post_json(user, service.create_post(user, data), user)


@blp.route("/posts/<int:post_id>")
class PostById(MethodView):
    @blp.response(200, PostSchema)
    def get(self, post_id: int) -> dict[str, Any]:
        """A post as the viewer may see it (the shared activity only if the viewer may see it too)"""
        user = current_user()
        post, author = service.get_visible_post(user, post_id)
        return attached.post_json(user, post, author)

    @blp.arguments(PostPatchSchema)
    @blp.response(200, PostSchema)
    def patch(self, changes: dict[str, Any], post_id: int) -> dict[str, Any]:
        """Edit the text or visibility of your post"""
        user = current_user()
        return attached.post_json(user, service.update_post(user, post_id, changes), user)

    @blp.response(204)
    def delete(self, post_id: int) -> None:
        """Delete your post with its kudos and comments"""
        service.delete_post(current_user(), post_id)
