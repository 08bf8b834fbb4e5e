from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from domain.health_sync.workouts import MAX_ROUTE_POINTS, ROUTE_SLACK
from models import HealthSyncItem
from models.health import SYNC_SOURCES
from webapp.columns import ColumnLength
from webapp.health_fields import UtcDateTime
from webapp.uploads.schemas import UploadField


class RoutePointSchema(ma.Schema):
    """One location of a workout's route (HealthKit HKWorkoutRoute, Health Connect ExerciseRoute). Ranges and
    times are checked with the batch (a bad point refuses it, naming the sample)."""

    class Meta:
        unknown = ma.RAISE

    at = UtcDateTime(required=True)
    lat = ma.fields.Float(required=True, metadata={"description": "degrees, -90 to 90"})
    lon = ma.fields.Float(required=True, metadata={"description": "degrees, -180 to 180"})
    ele = ma.fields.Float(allow_none=True, metadata={"description": "metres above sea level"})
    hr = ma.fields.Float(allow_none=True, metadata={"description": "heart rate at that moment, bpm"})


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
    route = ma.fields.List(ma.fields.Nested(RoutePointSchema), allow_none=True, metadata={"description": (
        f"workout: its locations, at most {MAX_ROUTE_POINTS:,}, each within the workout's start and end (give or "
        f"take {int(ROUTE_SLACK.total_seconds())} s). A workout with a route becomes an upload of it, processed "
        "like a GPX file (see `uploads` in the answer).")})


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


class SyncUploadSchema(ma.Schema):
    source_id = ma.fields.String()
    upload_id = ma.fields.Integer(metadata={"description": "GET /uploads/{upload_id} follows its processing"})
    status = ma.fields.String(metadata={"description": "the upload's status when it was made"})


class SyncResultSchema(ma.Schema):
    source = ma.fields.String()
    anchor = ma.fields.String(metadata={"description": "ours: moves only when a batch changed something"})
    platform_anchor = ma.fields.String(allow_none=True)
    accepted = ma.fields.Integer()
    created = ma.fields.Integer()
    updated = ma.fields.Integer()
    unchanged = ma.fields.Integer()
    deleted = ma.fields.Integer()
    uploads = ma.fields.List(ma.fields.Nested(SyncUploadSchema), metadata={
        "description": "the uploads this batch made of its workouts' routes"})


class ExportFileSchema(ma.Schema):
    file = UploadField(required=True, metadata={"description": "export.xml from the Health app (optionally gzipped)"})


class ExportAcceptedSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "queued: the records are imported in the background"})
