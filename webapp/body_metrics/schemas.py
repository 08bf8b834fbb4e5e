from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from models import BodyMetric
from models.health import METRIC_UNITS
from webapp.columns import ColumnLength
from webapp.health_fields import HHMM, RangePageArgsSchema, UtcDateTime


class MetricCreateSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    kind = ma.fields.String(required=True, validate=[ColumnLength(BodyMetric.kind), validate.OneOf(list(METRIC_UNITS))])
    value = ma.fields.Float(required=True)
    unit = ma.fields.String(validate=ColumnLength(BodyMetric.unit), metadata={
        "description": "defaults to the kind's unit (kg, bpm, ms, %, cm, count, kcal); lb, in, m, s, kJ converted"})
    measured_at = UtcDateTime(required=True)


class MetricPatchSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    value = ma.fields.Float()
    unit = ma.fields.String(validate=ColumnLength(BodyMetric.unit))
    measured_at = UtcDateTime()


class MetricArgsSchema(RangePageArgsSchema):
    kind = ma.fields.String(load_default=None, validate=[ColumnLength(BodyMetric.kind),
                                                          validate.OneOf(list(METRIC_UNITS))])


class MetricSchema(ma.Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String()
    value = ma.fields.Float()
    unit = ma.fields.String()
    measured_at = ma.fields.DateTime()
    end_at = ma.fields.DateTime(allow_none=True)
    source = ma.fields.String()
    created_at = ma.fields.DateTime()


class MetricPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(MetricSchema))
    next_cursor = ma.fields.String(allow_none=True)


class HealthSettingsPatchSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    height_cm = ma.fields.Float(allow_none=True, validate=validate.Range(50, 260))
    protein_pct = ma.fields.Integer(validate=validate.Range(5, 60))
    carbohydrate_pct = ma.fields.Integer(validate=validate.Range(5, 80))
    fat_pct = ma.fields.Integer(validate=validate.Range(10, 70))
    water_goal_ml = ma.fields.Integer(allow_none=True, validate=validate.Range(500, 8000))
    reminders_enabled = ma.fields.Boolean()
    reminder_every_h = ma.fields.Integer(validate=validate.Range(1, 12))
    wake_start = ma.fields.String(validate=[validate.Length(5, 5), HHMM])
    wake_end = ma.fields.String(validate=[validate.Length(5, 5), HHMM])
    night_start = ma.fields.String(validate=[validate.Length(5, 5), HHMM])
    night_end = ma.fields.String(validate=[validate.Length(5, 5), HHMM])



class HealthSettingsSchema(ma.Schema):
    """The athlete's health settings as stored (response)."""

    height_cm = ma.fields.Float(allow_none=True)
    protein_pct = ma.fields.Integer()
    carbohydrate_pct = ma.fields.Integer()
    fat_pct = ma.fields.Integer()
    water_goal_ml = ma.fields.Integer(allow_none=True)
    reminders_enabled = ma.fields.Boolean()
    reminder_every_h = ma.fields.Integer()
    wake_start = ma.fields.String()
    wake_end = ma.fields.String()
    night_start = ma.fields.String()
    night_end = ma.fields.String()

