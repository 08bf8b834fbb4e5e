from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from domain.uploads import service
from webapp.auth import current_user
from webapp.inputs import body_limit
from webapp.openapi import one_of
from webapp.uploads.schemas import (
    BatchSchema,
    UploadFileSchema,
    UploadFormSchema,
    UploadListArgsSchema,
    UploadPageSchema,
    UploadSchema,
)

blp = Blueprint("uploads", __name__, url_prefix="/api/v1", description="Activity file uploads")


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (1 <= len(key) <= 255):
        abort(400, message="Idempotency-Key must be 1 to 255 characters.")
    return key


def _batch(batch: dict[str, Any]) -> Response:
    return Response(BatchSchema().dumps(batch), status=201, mimetype="application/json")


@blp.route("/uploads")
class Uploads(MethodView):
    @blp.arguments(UploadFormSchema, location="form")
    @blp.arguments(UploadFileSchema, location="files")
    @blp.response(201, UploadSchema, description="The upload, queued for processing (poll GET /uploads/{id}). "
                  "A .zip (or an Apple Health export with several workouts) is answered with "
                  "{batch_id, uploads: [...]}, one upload per activity. A file of more activities than "
                  "UPLOAD_MAX_ITEMS_PER_FILE (1,000), a decompression bomb or a track of more than 2 M points is "
                  "a 422; more uploads than the account's daily quota, a 429.")
    @blp.doc(responses={201: {"content": {"application/json": {"schema": one_of(UploadSchema, BatchSchema)}}}})
    @blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "required": False,
                          "schema": {"type": "string", "maxLength": 255},
                          "description": "Repeat a request safely: the same key returns the same upload"}])
    @body_limit("MAX_CONTENT_LENGTH")
    def post(self, form: dict[str, Any], files: dict[str, Any]) -> Any:
        """Upload a GPX, TCX or FIT file (optionally gzipped), or a .zip of many"""
        user = current_user()
        storage_file = files["file"]
        data = storage_file.read()
        filename = storage_file.filename
        is_zip = form.get("data_type") == "zip" or (
            form.get("data_type") is None and (data[:4] == b"PK\x03\x04" or (filename or "").lower().endswith(".zip")))
        if is_zip:
            return _batch(service.accept_zip(user, data, form))
        data_type = form.get("data_type") or (service.sniff_type(filename, data) if data else None)
        if data_type == "health":
            result = service.accept_health_export(user, data, filename, form, idempotency_key=_idempotency_key())
            return _batch(result) if isinstance(result, dict) else result
        return service.accept_file(user, data, filename, form, idempotency_key=_idempotency_key(),
                                   data_type=data_type)

    @blp.arguments(UploadListArgsSchema, location="query")
    @blp.response(200, UploadPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The signed-in athlete's uploads, newest first (optionally one zip batch)"""
        return service.list_uploads(current_user(), args["cursor"], args["limit"], args["batch_id"])


@blp.route("/uploads/<int:upload_id>")
class UploadById(MethodView):
    @blp.response(200, UploadSchema)
    def get(self, upload_id: int) -> Any:
        """Processing status of an upload: queued, processing, ready, failed or duplicate"""
        return service.get_own_upload(current_user(), upload_id)
