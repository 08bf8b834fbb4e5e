from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from domain.health import metrics as service
from domain.health import settings
from webapp.auth import current_user
from webapp.body_metrics.schemas import (
    HealthSettingsPatchSchema,
    HealthSettingsSchema,
    MetricArgsSchema,
    MetricCreateSchema,
    MetricPageSchema,
    MetricPatchSchema,
    MetricSchema,
)

blp = Blueprint("body_metrics", __name__, url_prefix="/api/v1",
                description="Body metrics and health settings (private to you)")


@blp.route("/me/body-metrics")
class Metrics(MethodView):
    @blp.arguments(MetricArgsSchema, location="query")
    @blp.response(200, MetricPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Your body metrics (optionally one kind), newest first"""
        return service.list_metrics(current_user(), args)

    @blp.arguments(MetricCreateSchema)
    @blp.response(201, MetricSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Record a weight, resting heart rate, HRV (RMSSD or SDNN), body fat, height…"""
        return service.serialize(service.create_metric(current_user(), data))


@blp.route("/me/body-metrics/<int:metric_id>")
class MetricById(MethodView):
    @blp.response(200, MetricSchema)
    def get(self, metric_id: int) -> dict[str, Any]:
        """One of your body metrics"""
        return service.serialize(service.get_metric(current_user(), metric_id))

    @blp.arguments(MetricPatchSchema)
    @blp.response(200, MetricSchema)
    def patch(self, changes: dict[str, Any], metric_id: int) -> dict[str, Any]:
        """Correct a value or its time"""
        return service.serialize(service.update_metric(current_user(), metric_id, changes))

    @blp.response(204)
    def delete(self, metric_id: int) -> None:
        """Delete a body metric"""
        service.delete_metric(current_user(), metric_id)


@blp.route("/me/health/settings")
class HealthSettings(MethodView):
    @blp.response(200, HealthSettingsSchema)
    def get(self) -> dict[str, Any]:
        """Height, macro split, water goal, reminders and the night window sleep is estimated in"""
        return settings.get_settings(current_user())

    @blp.arguments(HealthSettingsPatchSchema)
    @blp.response(200, HealthSettingsSchema)
    def patch(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change your health settings"""
        return settings.update_settings(current_user(), changes)
