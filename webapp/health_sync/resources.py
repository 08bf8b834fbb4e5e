from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from domain.health_sync import export_import
from domain.health_sync import sync as service
from webapp.auth import current_user
from webapp.health_sync.schemas import ExportAcceptedSchema, ExportFileSchema, SyncResultSchema, SyncSchema
from webapp.inputs import body_limit

blp = Blueprint("health_sync", __name__, url_prefix="/api/v1", description="Apple Health / Health Connect sync")


@blp.route("/health/sync")
class HealthSync(MethodView):
    @body_limit("HEALTH_SYNC_MAX_BYTES")
    @blp.arguments(SyncSchema)
    @blp.response(200, SyncResultSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """A batch of samples (up to 10,000) and deletions; idempotent by (source, source_id)"""
        return service.sync(current_user(), data)


@blp.route("/health/export")
class HealthExport(MethodView):
    @blp.arguments(ExportFileSchema, location="files")
    @blp.response(202, ExportAcceptedSchema)
    @body_limit("MAX_CONTENT_LENGTH")
    def post(self, files: dict[str, Any]) -> dict[str, Any]:
        """An Apple Health export.xml (or gzipped): its sleep, resting HR, HRV, body mass, water and dietary
        records are imported in the background (workouts: POST /uploads)"""
        return export_import.accept(current_user(), files["file"].read())
