from __future__ import annotations

import marshmallow as ma
from marshmallow import validate
from webargs.fields import DelimitedList

from models.activity import SPORT_TYPES, Activity
from models.user import VISIBILITIES
from webapp.columns import ColumnLength
from webapp.media.schemas import MediaSchema

STREAM_KEYS = ("time", "latlng", "distance", "altitude", "heartrate", "cadence", "watts", "temp",
               "velocity_smooth", "grade_smooth", "moving")


class AthleteRefSchema(ma.Schema):
    id = ma.fields.Integer()
    display_name = ma.fields.String()
    avatar_url = ma.fields.String(allow_none=True)


class MapSchema(ma.Schema):
    polyline = ma.fields.String(metadata={"description": "Google encoded polyline (detailed)"})
    summary_polyline = ma.fields.String(metadata={"description": "Simplified polyline for lists and feeds"})
    polylines = ma.fields.List(ma.fields.String(), metadata={
        "description": "One polyline per visible stretch: draw these to leave privacy-hidden parts out"})


class ActivitySchema(ma.Schema):
    id = ma.fields.Integer()
    media = ma.fields.List(ma.fields.Nested(MediaSchema), metadata={
        "description": "Its photos and videos, in order (each with signed, short-lived URLs)"})
    athlete = ma.fields.Nested(AthleteRefSchema)
    name = ma.fields.String()
    description = ma.fields.String()
    sport_type = ma.fields.String()
    visibility = ma.fields.String()
    manual = ma.fields.Boolean()
    start_date = ma.fields.DateTime()
    device = ma.fields.String(allow_none=True)
    distance_m = ma.fields.Float()
    elapsed_time_s = ma.fields.Float()
    moving_time_s = ma.fields.Float()
    elevation_gain_m = ma.fields.Float(allow_none=True)
    elevation_loss_m = ma.fields.Float(allow_none=True)
    avg_speed_mps = ma.fields.Float(allow_none=True)
    max_speed_mps = ma.fields.Float(allow_none=True)
    avg_hr = ma.fields.Float(allow_none=True)
    max_hr = ma.fields.Float(allow_none=True)
    avg_cadence = ma.fields.Float(allow_none=True)
    avg_power = ma.fields.Float(allow_none=True)
    max_power = ma.fields.Float(allow_none=True)
    avg_temp = ma.fields.Float(allow_none=True)
    perceived_exertion = ma.fields.Integer(allow_none=True)
    notes = ma.fields.String(allow_none=True, metadata={"description": "Private notes: only the owner sees them"})
    has_gps = ma.fields.Boolean()
    start_latlng = ma.fields.List(ma.fields.Float(), allow_none=True)
    end_latlng = ma.fields.List(ma.fields.Float(), allow_none=True)
    bounds = ma.fields.List(ma.fields.Float(), allow_none=True,
                            metadata={"description": "[min_lat, min_lng, max_lat, max_lng]"})
    map = ma.fields.Nested(MapSchema, allow_none=True, metadata={"description": "null without GPS"})
    splits_metric = ma.fields.List(ma.fields.Dict())
    splits_standard = ma.fields.List(ma.fields.Dict())
    laps = ma.fields.List(ma.fields.Dict())
    best_efforts = ma.fields.List(ma.fields.Dict())
    achievements = ma.fields.List(ma.fields.Dict())
    kudos_count = ma.fields.Integer()
    comment_count = ma.fields.Integer()
    has_kudoed = ma.fields.Boolean(metadata={"description": "The viewer gave kudos to this activity"})
    upload_id = ma.fields.Integer(allow_none=True)
    external_id = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class ActivityPatchSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    name = ma.fields.String(validate=ColumnLength(Activity.name, 1))
    description = ma.fields.String(validate=validate.Length(0, 10000))
    sport_type = ma.fields.String(validate=validate.OneOf(SPORT_TYPES))
    visibility = ma.fields.String(validate=validate.OneOf(VISIBILITIES))
    perceived_exertion = ma.fields.Integer(allow_none=True, validate=validate.Range(1, 10))
    notes = ma.fields.String(allow_none=True, validate=validate.Length(0, 10000))


class ManualActivitySchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    sport_type = ma.fields.String(required=True, validate=validate.OneOf(SPORT_TYPES))
    start_date = ma.fields.AwareDateTime(required=True, metadata={"description": "ISO 8601 with a UTC offset"})
    elapsed_time_s = ma.fields.Float(required=True, validate=validate.Range(1, 7 * 24 * 3600),
                                     metadata={"description": "Duration in seconds"})
    distance_m = ma.fields.Float(load_default=0.0, validate=validate.Range(0, 2_000_000))
    elevation_gain_m = ma.fields.Float(load_default=None, allow_none=True, validate=validate.Range(0, 30_000))
    avg_hr = ma.fields.Float(load_default=None, allow_none=True, validate=validate.Range(20, 250))
    perceived_exertion = ma.fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, 10))
    notes = ma.fields.String(load_default=None, allow_none=True, validate=validate.Length(0, 10000))
    name = ma.fields.String(validate=ColumnLength(Activity.name, 1))
    description = ma.fields.String(load_default="", validate=validate.Length(0, 10000))
    visibility = ma.fields.String(validate=validate.OneOf(VISIBILITIES))


class ActivityListArgsSchema(ma.Schema):
    cursor = ma.fields.String(load_default=None)
    limit = ma.fields.Integer(load_default=30, validate=validate.Range(1, 200))
    sport_type = ma.fields.String(load_default=None, validate=validate.OneOf(SPORT_TYPES))
    after = ma.fields.AwareDateTime(load_default=None, metadata={"description": "Only activities starting after"})
    before = ma.fields.AwareDateTime(load_default=None, metadata={"description": "Only activities starting before"})


class ActivityPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ActivitySchema))
    next_cursor = ma.fields.String(allow_none=True)


class StreamArgsSchema(ma.Schema):
    keys = DelimitedList(ma.fields.String(validate=validate.OneOf(STREAM_KEYS)),
                                   load_default=list(STREAM_KEYS), metadata={"description": "Comma-separated"})
    resolution = ma.fields.String(load_default="high", validate=validate.OneOf(("low", "medium", "high")))
