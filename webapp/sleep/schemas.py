from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from models import SleepSession
from models.health import DEVICE_EVENT_TYPES, SLEEP_SOURCES
from webapp.columns import ColumnLength
from webapp.health_fields import RangePageArgsSchema, UtcDateTime


class SleepCreateSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    start = UtcDateTime(required=True)
    end = UtcDateTime(required=True)
    quality = ma.fields.Integer(allow_none=True, validate=validate.Range(1, 5))
    notes = ma.fields.String(allow_none=True, validate=ColumnLength(SleepSession.notes, max=1000))


class SleepPatchSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    start = UtcDateTime()
    end = UtcDateTime()
    quality = ma.fields.Integer(allow_none=True, validate=validate.Range(1, 5))
    notes = ma.fields.String(allow_none=True, validate=ColumnLength(SleepSession.notes, max=1000))


class SleepArgsSchema(RangePageArgsSchema):
    source = ma.fields.String(load_default=None, validate=[ColumnLength(SleepSession.source),
                                                                validate.OneOf(SLEEP_SOURCES)])


class StageSchema(ma.Schema):
    stage = ma.fields.String(metadata={"description": "in_bed, asleep, light, deep, rem, awake"})
    start = ma.fields.String()
    end = ma.fields.String()
    source_id = ma.fields.String()


class SleepSchema(ma.Schema):
    id = ma.fields.Integer()
    source = ma.fields.String(metadata={"description": "manual, estimated, healthkit or health_connect"})
    start = ma.fields.DateTime()
    end = ma.fields.DateTime()
    duration_min = ma.fields.Float()
    quality = ma.fields.Integer(allow_none=True)
    notes = ma.fields.String(allow_none=True)
    stages = ma.fields.List(ma.fields.Nested(StageSchema))
    uncertainty_min = ma.fields.Integer(allow_none=True, metadata={"description": "estimates: ± minutes per edge"})
    confidence = ma.fields.Float(allow_none=True, metadata={"description": "estimates: 0–1"})
    night_of = ma.fields.String(allow_none=True)
    counted = ma.fields.Boolean(metadata={
        "description": "false when a higher-priority source recorded the same night (device > manual > estimated)"})
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class SleepPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(SleepSchema))
    next_cursor = ma.fields.String(allow_none=True)


class DeviceEventSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    type = ma.fields.String(required=True, validate=validate.OneOf(DEVICE_EVENT_TYPES))
    at = UtcDateTime(required=True)


class DeviceEventsSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    events = ma.fields.List(ma.fields.Nested(DeviceEventSchema), required=True, validate=validate.Length(max=5000))


class DeviceEventsResultSchema(ma.Schema):
    accepted = ma.fields.Integer()
    sessions = ma.fields.List(ma.fields.Nested(SleepSchema), metadata={
        "description": "the estimated sessions of the nights these events touched, as now estimated"})
