from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from models import HealthSyncItem
from models.health import SYNC_SOURCES
from webapp.columns import ColumnLength
from webapp.health_fields import UtcDateTime
from webapp.uploads.schemas import UploadField


class SampleSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    type = ma.fields.String(required=True, validate=[ColumnLength(HealthSyncItem.sample_type), validate.OneOf([
        "sleep", "resting_heart_rate", "hrv_rmssd", "hrv_sdnn", "steps", "active_energy", "body_mass", "body_fat",
        "height", "water", "nutrition", "workout"])])
    source_id = ma.fields.String(required=True, validate=ColumnLength(HealthSyncItem.source_id, min=1))
    at = UtcDateTime()
    start = UtcDateTime()
    end = UtcDateTime()
    value = ma.fields.Float(allow_none=True)
    unit = ma.fields.String(allow_none=True, validate=validate.Length(max=16))
    # Named apart from uploads.stage (a varchar(32)): HealthKit's stage names are longer, and it is stored in JSON.
    sleep_stage = ma.fields.String(data_key="stage", allow_none=True, validate=validate.Length(max=64), metadata={
        "description": "sleep: HealthKit HKCategoryValueSleepAnalysis… or a Health Connect stage (name or number)"})
    meal_type = ma.fields.String(allow_none=True, validate=validate.Length(max=16))
    activity = ma.fields.String(allow_none=True, validate=validate.Length(max=64))
    distance_m = ma.fields.Float(allow_none=True, validate=validate.Range(0, 1_000_000))


class SyncSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    source = ma.fields.String(required=True, validate=[ColumnLength(HealthSyncItem.source),
                                                            validate.OneOf(SYNC_SOURCES)])
    anchor = ma.fields.String(allow_none=True, validate=validate.Length(max=4096), metadata={
        "description": "the platform's anchor or changes token after this batch (echoed back)"})
    samples = ma.fields.List(ma.fields.Nested(SampleSchema), load_default=list)
    deleted = ma.fields.List(ma.fields.String(validate=ColumnLength(HealthSyncItem.source_id, min=1)),
                             load_default=list)


class SyncResultSchema(ma.Schema):
    source = ma.fields.String()
    anchor = ma.fields.String(metadata={"description": "ours: moves only when a batch changed something"})
    platform_anchor = ma.fields.String(allow_none=True)
    accepted = ma.fields.Integer()
    created = ma.fields.Integer()
    updated = ma.fields.Integer()
    unchanged = ma.fields.Integer()
    deleted = ma.fields.Integer()


class ExportFileSchema(ma.Schema):
    file = UploadField(required=True, metadata={"description": "export.xml from the Health app (optionally gzipped)"})


class ExportAcceptedSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "queued: the records are imported in the background"})
