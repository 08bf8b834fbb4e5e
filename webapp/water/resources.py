from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from domain.health import hydration as service
from webapp.auth import current_user
from webapp.health_fields import DaysArgsSchema, RangePageArgsSchema
from webapp.water.schemas import (
    HydrationDayPageSchema,
    WaterCreateSchema,
    WaterPageSchema,
    WaterPatchSchema,
    WaterSchema,
)

blp = Blueprint("water", __name__, url_prefix="/api/v1", description="What you drink, and your daily goal")


@blp.route("/me/water")
class Water(MethodView):
    @blp.arguments(RangePageArgsSchema, location="query")
    @blp.response(200, WaterPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Your drinks, newest first"""
        return service.list_water(current_user(), args)

    @blp.arguments(WaterCreateSchema)
    @blp.response(201, WaterSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Log a drink"""
        return service.serialize(service.create_water(current_user(), data))


@blp.route("/me/water/<int:water_id>")
class WaterById(MethodView):
    @blp.response(200, WaterSchema)
    def get(self, water_id: int) -> dict[str, Any]:
        """One of your drinks"""
        return service.serialize(service.get_water(current_user(), water_id))

    @blp.arguments(WaterPatchSchema)
    @blp.response(200, WaterSchema)
    def patch(self, changes: dict[str, Any], water_id: int) -> dict[str, Any]:
        """Correct a drink"""
        return service.serialize(service.update_water(current_user(), water_id, changes))

    @blp.response(204)
    def delete(self, water_id: int) -> None:
        """Delete a drink"""
        service.delete_water(current_user(), water_id)


@blp.route("/me/hydration/days")
class HydrationDays(MethodView):
    @blp.arguments(DaysArgsSchema, location="query")
    @blp.response(200, HydrationDayPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Each day's drinks against its goal (baseline + the day's sweat loss), in your time zone"""
        return service.hydration_days(current_user(), args["from"], args["to"])
