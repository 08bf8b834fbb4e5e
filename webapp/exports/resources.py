"""Exports: one activity as GPX/TCX/FIT, and the whole account as a zip (started here, built by a task)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Blueprint as FlaskBlueprint
from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import validate

from domain.exports import account
from domain.exports.activity import FORMATS, export_activity
from webapp.auth import current_user

blp = Blueprint("exports", __name__, url_prefix="/api/v1", description="Activity files and whole-account exports")
#: The download of a finished account export: outside /api/v1 because the signed link is its own credential.
downloads = FlaskBlueprint("downloads", __name__)


class ExportArgsSchema(ma.Schema):
    format = ma.fields.String(required=True, validate=validate.OneOf(FORMATS))


class AccountExportSchema(ma.Schema):
    id = ma.fields.Integer()
    status = ma.fields.String(metadata={"enum": ["queued", "running", "ready", "failed"]})
    size_bytes = ma.fields.Integer(allow_none=True)
    error = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    finished_at = ma.fields.DateTime(allow_none=True)
    download_url = ma.fields.String(allow_none=True, metadata={
        "description": "When ready: a short-lived link (ACCOUNT_EXPORT_LINK_TTL_S) that needs no token"})
    expires_at = ma.fields.DateTime(allow_none=True)


def _attachment(data: bytes, name: str, mimetype: str) -> Response:
    return Response(data, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                      "Cache-Control": "private, no-store"})


@blp.route("/activities/<int:activity_id>/export")
class ActivityExport(MethodView):
    @blp.arguments(ExportArgsSchema, location="query")
    @blp.response(200, content_type="application/octet-stream")
    def get(self, args: dict[str, Any], activity_id: int) -> Response:
        """The activity as a GPX 1.1, TCX v2 or FIT file. The owner gets the whole track; anyone else who may see
        the activity gets only the visible part (privacy zones and the hidden start/end removed)"""
        data, name, mimetype = export_activity(current_user(), activity_id, args["format"])
        return _attachment(data, name, mimetype)


@blp.route("/me/export")
class MyAccountExport(MethodView):
    @blp.response(202, AccountExportSchema, description="The export being built: the new one, or the one already "
                  "queued or running (a second request while one runs returns it). The athlete is notified with "
                  "a download link when it is ready.")
    def post(self) -> dict[str, Any]:
        """Export the whole account as a zip (profile, activities as original files and GPX, efforts, posts,
        comments, kudos, chat messages sent)"""
        export, _started = account.request_export(current_user())
        return account.as_json(export)

    @blp.response(200, AccountExportSchema)
    def get(self) -> dict[str, Any]:
        """The latest account export, with a fresh download link when it is ready"""
        return account.as_json(account.latest_export(current_user()))


@downloads.route("/downloads/account-exports/<int:export_id>")
def download_account_export(export_id: int) -> Response:
    try:
        expires = int(request.args.get("expires", "0"))
    except ValueError:
        expires = 0
    data, name = account.download(export_id, expires, request.args.get("sig", ""))
    return _attachment(data, name, "application/zip")
