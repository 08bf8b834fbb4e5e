from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from domain.health import meals as service
from webapp.auth import current_user
from webapp.health_fields import DaysArgsSchema, RangePageArgsSchema
from webapp.meals.schemas import (
    MealCreateSchema,
    MealPageSchema,
    MealPatchSchema,
    MealSchema,
    NutritionDayPageSchema,
)

blp = Blueprint("meals", __name__, url_prefix="/api/v1", description="Your nutrition log (private to you)")


@blp.route("/me/meals")
class Meals(MethodView):
    @blp.arguments(RangePageArgsSchema, location="query")
    @blp.response(200, MealPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Your meals, newest first"""
        return service.list_meals(current_user(), args)

    @blp.arguments(MealCreateSchema)
    @blp.response(201, MealSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Log a meal: foods in grams or household portions; nutrients are computed"""
        return service.serialize(service.create_meal(current_user(), data))


@blp.route("/me/meals/<int:meal_id>")
class MealById(MethodView):
    @blp.response(200, MealSchema)
    def get(self, meal_id: int) -> dict[str, Any]:
        """One of your meals"""
        return service.serialize(service.get_meal(current_user(), meal_id))

    @blp.arguments(MealPatchSchema)
    @blp.response(200, MealSchema)
    def patch(self, changes: dict[str, Any], meal_id: int) -> dict[str, Any]:
        """Edit a meal (items, when given, replace the meal's items)"""
        return service.serialize(service.update_meal(current_user(), meal_id, changes))

    @blp.response(204)
    def delete(self, meal_id: int) -> None:
        """Delete a meal"""
        service.delete_meal(current_user(), meal_id)


@blp.route("/me/nutrition/days")
class NutritionDays(MethodView):
    @blp.arguments(DaysArgsSchema, location="query")
    @blp.response(200, NutritionDayPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Daily totals in your time zone against targets (basal rate + the day's workouts, your macro split)"""
        return service.nutrition_days(current_user(), args["from"], args["to"])
