from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from models.activity import SPORT_TYPES
from models.gear import GEAR_KINDS, Gear
from webapp.columns import ColumnLength


class GearSchema(ma.Schema):
    class Meta:
        example = {"id": 3, "kind": "shoes", "name": "Daily trainers", "brand": "Brooks", "model": "Ghost 16",
                   "retired": False, "default_sport_types": ["running", "trail_running"], "distance_m": 412300.5,
                   "activity_count": 47, "created_at": "2026-03-01T10:00:00+00:00"}

    id = ma.fields.Integer()
    kind = ma.fields.String(metadata={"enum": list(GEAR_KINDS)})
    name = ma.fields.String()
    brand = ma.fields.String(allow_none=True)
    model = ma.fields.String(allow_none=True)
    retired = ma.fields.Boolean(metadata={"description": "Kept with its distance; never chosen by default"})
    default_sport_types = ma.fields.List(ma.fields.String(), metadata={
        "description": "New activities of these sports get this gear unless another is chosen"})
    distance_m = ma.fields.Float(metadata={"description": "The distance of the activities that used it"})
    activity_count = ma.fields.Integer()
    created_at = ma.fields.DateTime()


class GearCreateSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    kind = ma.fields.String(required=True, validate=validate.OneOf(GEAR_KINDS))
    name = ma.fields.String(required=True, validate=ColumnLength(Gear.name, 1))
    brand = ma.fields.String(load_default=None, allow_none=True, validate=ColumnLength(Gear.brand))
    model = ma.fields.String(load_default=None, allow_none=True, validate=ColumnLength(Gear.model))
    retired = ma.fields.Boolean(load_default=False)
    default_sport_types = ma.fields.List(ma.fields.String(validate=validate.OneOf(SPORT_TYPES)),
                                         load_default=list, validate=validate.Length(max=len(SPORT_TYPES)))


class GearPatchSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    name = ma.fields.String(validate=ColumnLength(Gear.name, 1))
    brand = ma.fields.String(allow_none=True, validate=ColumnLength(Gear.brand))
    model = ma.fields.String(allow_none=True, validate=ColumnLength(Gear.model))
    retired = ma.fields.Boolean()
    default_sport_types = ma.fields.List(ma.fields.String(validate=validate.OneOf(SPORT_TYPES)),
                                         validate=validate.Length(max=len(SPORT_TYPES)))
