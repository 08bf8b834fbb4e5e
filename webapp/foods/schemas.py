from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from models import Food, FoodPortion
from webapp.columns import ColumnLength
from webapp.health_fields import nutrient_fields


class FoodSearchArgsSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    q = ma.fields.String(required=True, validate=validate.Length(1, 100), metadata={
        "description": "What the athlete typed: words in any order, typos tolerated, the last word a prefix"})
    limit = ma.fields.Integer(load_default=20, validate=validate.Range(1, 50))


class PortionInSchema(ma.Schema):
    """A household portion of a food the athlete adds (request)."""

    class Meta:
        unknown = ma.RAISE

    amount = ma.fields.Float(load_default=1.0, validate=validate.Range(min=0, min_inclusive=False, max=1000))
    description = ma.fields.String(required=True, validate=ColumnLength(FoodPortion.description, min=1, max=120))
    grams = ma.fields.Float(required=True, validate=validate.Range(min=0, min_inclusive=False, max=5000))


class PortionSchema(ma.Schema):
    id = ma.fields.Integer()
    amount = ma.fields.Float()
    description = ma.fields.String()
    grams = ma.fields.Float()


class RecipeItemInSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    food_id = ma.fields.Integer(required=True)
    grams = ma.fields.Float(required=True, validate=validate.Range(min=0, min_inclusive=False, max=5000))


class FoodCreateSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    name = ma.fields.String(required=True, validate=ColumnLength(Food.name, min=1))
    brand = ma.fields.String(allow_none=True, validate=ColumnLength(Food.brand))
    barcode = ma.fields.String(allow_none=True, validate=[ColumnLength(Food.barcode), validate.Regexp(
        r"^[0-9]{8,14}(?!\n)$", error="8 to 14 digits.")])
    portions = ma.fields.List(ma.fields.Nested(PortionInSchema), validate=validate.Length(max=20))
    items = ma.fields.List(ma.fields.Nested(RecipeItemInSchema), validate=validate.Length(1, 100), metadata={
        "description": "A recipe: its ingredients; nutrients per 100 g are computed from them"})
    locals().update(nutrient_fields(allow_none=True))


class FoodPatchSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    name = ma.fields.String(validate=ColumnLength(Food.name, min=1))
    brand = ma.fields.String(allow_none=True, validate=ColumnLength(Food.brand))
    barcode = ma.fields.String(allow_none=True, validate=[ColumnLength(Food.barcode), validate.Regexp(
        r"^[0-9]{8,14}(?!\n)$", error="8 to 14 digits.")])
    locals().update(nutrient_fields(allow_none=True))


class FoodSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    brand = ma.fields.String(allow_none=True)
    barcode = ma.fields.String(allow_none=True)
    food_group = ma.fields.String(allow_none=True)
    source = ma.fields.String(metadata={"description": "sr28, fdc, off (catalogues) or user (your own)"})
    own = ma.fields.Boolean()
    is_recipe = ma.fields.Boolean()
    portions = ma.fields.List(ma.fields.Nested(PortionSchema))
    created_at = ma.fields.DateTime()
    locals().update(nutrient_fields(allow_none=True, metadata={"description": "per 100 g (None: not known)"}))


class FoodPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(FoodSchema))
    next_cursor = ma.fields.String(allow_none=True)
