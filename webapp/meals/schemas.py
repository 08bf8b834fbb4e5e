from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from models import Meal
from models.health import MEAL_TYPES, NUTRIENTS
from webapp.columns import ColumnLength
from webapp.health_fields import UtcDateTime


class MealItemInSchema(ma.Schema):
    """{food_id, grams} or {food_id, portion_id, quantity}."""

    class Meta:
        unknown = ma.RAISE

    food_id = ma.fields.Integer(required=True)
    grams = ma.fields.Float(validate=validate.Range(min=0, min_inclusive=False, max=5000))
    portion_id = ma.fields.Integer()
    quantity = ma.fields.Float(validate=validate.Range(min=0, min_inclusive=False, max=50))

    @ma.validates_schema
    def _one_amount(self, data: dict[str, Any], **_: Any) -> None:
        if ("grams" in data) == ("portion_id" in data):
            raise ma.ValidationError("Give grams, or a portion_id (with an optional quantity).", "grams")
        if "quantity" in data and "portion_id" not in data:
            raise ma.ValidationError("A quantity counts portions: give the portion_id.", "quantity")


class MealCreateSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    meal_type = ma.fields.String(required=True, validate=validate.OneOf(MEAL_TYPES))
    eaten_at = UtcDateTime(required=True)
    notes = ma.fields.String(allow_none=True, validate=ColumnLength(Meal.notes, max=500))
    items = ma.fields.List(ma.fields.Nested(MealItemInSchema), required=True, validate=validate.Length(1, 50))


class MealPatchSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    meal_type = ma.fields.String(validate=validate.OneOf(MEAL_TYPES))
    eaten_at = UtcDateTime()
    notes = ma.fields.String(allow_none=True, validate=ColumnLength(Meal.notes, max=500))
    items = ma.fields.List(ma.fields.Nested(MealItemInSchema), validate=validate.Length(1, 50))


NutrientsSchema = ma.Schema.from_dict({n: ma.fields.Float(allow_none=True) for n in NUTRIENTS}, name="Nutrients")


class MealItemSchema(ma.Schema):
    id = ma.fields.Integer()
    food_id = ma.fields.Integer(allow_none=True, metadata={"description": "None once the (own) food was deleted"})
    name = ma.fields.String()
    grams = ma.fields.Float()
    portion_id = ma.fields.Integer(allow_none=True)
    quantity = ma.fields.Float(allow_none=True)
    nutrients = ma.fields.Nested(NutrientsSchema)


class MealSchema(ma.Schema):
    id = ma.fields.Integer()
    meal_type = ma.fields.String()
    eaten_at = ma.fields.DateTime()
    notes = ma.fields.String(allow_none=True)
    source = ma.fields.String()
    items = ma.fields.List(ma.fields.Nested(MealItemSchema))
    totals = ma.fields.Nested(NutrientsSchema)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class MealPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(MealSchema))
    next_cursor = ma.fields.String(allow_none=True)


class TargetSchema(ma.Schema):
    basal_kcal = ma.fields.Float(metadata={"description": "Mifflin–St Jeor"})
    activity_kcal = ma.fields.Float()
    activity_methods = ma.fields.List(ma.fields.String(), metadata={
        "description": "how the workouts' energy was found: device, heart_rate, met"})
    energy_kcal = ma.fields.Float()
    protein_g = ma.fields.Float()
    carbohydrate_g = ma.fields.Float()
    fat_g = ma.fields.Float()


class NutritionDaySchema(ma.Schema):
    date = ma.fields.String()
    totals = ma.fields.Nested(NutrientsSchema)
    target = ma.fields.Nested(TargetSchema, allow_none=True)
    missing = ma.fields.List(ma.fields.String(), metadata={
        "description": "what the target needs and the profile lacks (weight, height, birth_year)"})


class NutritionDayPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(NutritionDaySchema))
    next_cursor = ma.fields.String(allow_none=True)
