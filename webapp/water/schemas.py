from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from models import WaterLog
from webapp.columns import ColumnLength
from webapp.health_fields import UtcDateTime


class WaterCreateSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    ml = ma.fields.Integer(required=True, validate=validate.Range(1, 5000, error="A drink is 1 to 5,000 ml."))
    drunk_at = UtcDateTime(required=True)
    drink = ma.fields.String(validate=[ColumnLength(WaterLog.drink, min=1)], metadata={
        "description": "water (default), coffee, tea, sports drink…"})


class WaterPatchSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    ml = ma.fields.Integer(validate=validate.Range(1, 5000, error="A drink is 1 to 5,000 ml."))
    drunk_at = UtcDateTime()
    drink = ma.fields.String(validate=[ColumnLength(WaterLog.drink, min=1)])


class WaterSchema(ma.Schema):
    id = ma.fields.Integer()
    ml = ma.fields.Integer()
    drink = ma.fields.String()
    drunk_at = ma.fields.DateTime()
    source = ma.fields.String()
    created_at = ma.fields.DateTime()


class WaterPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(WaterSchema))
    next_cursor = ma.fields.String(allow_none=True)


class HydrationDaySchema(ma.Schema):
    date = ma.fields.String()
    drunk_ml = ma.fields.Integer()
    baseline_ml = ma.fields.Integer(metadata={"description": "by sex, or the goal you set"})
    sweat_ml = ma.fields.Integer(metadata={"description": "estimated loss in the day's workouts"})
    goal_ml = ma.fields.Integer()
    progress = ma.fields.Float(allow_none=True)


class HydrationDayPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(HydrationDaySchema))
    next_cursor = ma.fields.String(allow_none=True)
