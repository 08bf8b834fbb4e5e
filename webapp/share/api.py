"""Share links of activities under /api/v1 (the public page itself is webapp.share.pages)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from domain.sharing import service
from models import ActivityShare
from webapp.auth import current_user

blp = Blueprint("shares", __name__, url_prefix="/api/v1", description="Public share links of activities")


class ShareSchema(ma.Schema):
    token = ma.fields.String()
    url = ma.fields.String(metadata={"description": "The public page: anyone with the link can open it"})
    activity_id = ma.fields.Integer()
    created_at = ma.fields.DateTime()


def _json(share: ActivityShare) -> dict[str, Any]:
    return service.share_json(share, url_for("share_pages.page", token=share.share_token, _external=True))


@blp.route("/activities/<int:activity_id>/share")
class ActivityShareLink(MethodView):
    @blp.response(201, ShareSchema, description="The live link (the same one when the activity is shared already). "
                  "Only activities visible to everyone on a public account can be shared (409 otherwise).")
    def post(self, activity_id: int) -> dict[str, Any]:
        """Share the activity publicly: an unguessable link to a page anyone can open (owner only)"""
        return _json(service.share(current_user(), activity_id))

    @blp.response(200, ShareSchema)
    def get(self, activity_id: int) -> dict[str, Any]:
        """The activity's live share link (404 when it is not shared)"""
        return _json(service.live_share(current_user(), activity_id))

    @blp.response(204)
    def delete(self, activity_id: int) -> None:
        """Revoke the link: its page is gone at once (sharing again makes a new link)"""
        service.revoke(current_user(), activity_id)
