from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint

from domain.media import service
from webapp.auth import current_user
from webapp.media.schemas import MediaCreatedSchema, MediaCreateSchema, MediaSchema, PartsRequestSchema, PartsSchema

blp = Blueprint("media", __name__, url_prefix="/api/v1", description="Photos and videos: upload straight to storage")


@blp.route("/media")
class MediaCollection(MethodView):
    @blp.arguments(MediaCreateSchema)
    @blp.response(201, MediaCreatedSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Ask to upload a photo or video: a pre-signed POST (or, for a large video, a multipart upload)"""
        return service.create(current_user(), data)


@blp.route("/media/<int:media_id>")
class MediaById(MethodView):
    @blp.response(200, MediaSchema)
    def get(self, media_id: int) -> dict[str, Any]:
        """A media item with short-lived signed URLs, for those who may see what it is attached to"""
        return service.get(current_user(), media_id)

    @blp.response(204)
    def delete(self, media_id: int) -> None:
        """Delete your photo or video and every stored copy of it"""
        service.delete(current_user(), media_id)


@blp.route("/media/<int:media_id>/parts")
class MediaParts(MethodView):
    @blp.arguments(PartsRequestSchema)
    @blp.response(200, PartsSchema)
    def post(self, data: dict[str, Any], media_id: int) -> dict[str, Any]:
        """Pre-signed URLs to PUT these parts of a multipart upload"""
        return service.part_urls(current_user(), media_id, data["part_numbers"])


@blp.route("/media/<int:media_id>/complete")
class MediaComplete(MethodView):
    @blp.response(200, MediaSchema)
    def post(self, media_id: int) -> dict[str, Any]:
        """The client's fallback: the upload is done (storage's own event normally says so first)"""
        return service.complete(current_user(), media_id)


@blp.route("/media/<int:media_id>/hls/<string:name>")
class MediaPlaylist(MethodView):
    @blp.doc(security=[], parameters=[{"in": "query", "name": "token", "required": True, "schema": {"type": "string"}}])
    @blp.response(200, content_type="application/vnd.apple.mpegurl")
    def get(self, media_id: int, name: str) -> Response:
        """An HLS playlist with signed URLs (players cannot send a bearer token: the signed token is the key)"""
        text = service.hls_playlist(request.args.get("token", ""), media_id, name)
        return Response(text, mimetype="application/vnd.apple.mpegurl", headers={"Cache-Control": "private, no-store"})
