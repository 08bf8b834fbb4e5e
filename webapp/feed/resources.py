from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from domain.media import attached
from domain.pagination import PageArgsSchema
from webapp.auth import current_user
from webapp.feed.schemas import FeedPageSchema

blp = Blueprint("feed", __name__, url_prefix="/api/v1", description="The home feed")


@blp.route("/feed")
class Feed(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, FeedPageSchema)
    def get(self, args: dict[str, Any]) -> Response:
        """The signed-in athlete's home feed: own and followed athletes' activities and posts, newest first"""
        # The service returns the page already in FeedPageSchema's dumped shape (a hot path: dumping it
        # through marshmallow cost more than loading it); the schema above still documents the response.
        return jsonify(attached.feed_page(current_user(), args["cursor"], args["limit"]))
