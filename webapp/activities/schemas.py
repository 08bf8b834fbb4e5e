from __future__ import annotations

from datetime import UTC
from typing import Any

import marshmallow as ma
from marshmallow import validate
from webargs.fields import DelimitedList

from models.activity import SPORT_FAMILIES, SPORT_TYPES, Activity
from models.user import VISIBILITIES
from webapp.columns import ColumnLength
from webapp.inputs import INT_MAX
from webapp.media.schemas import MediaSchema
from webapp.openapi import omittable

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


ACTIVITY_EXAMPLE = {
    "id": 4711, "athlete": {"id": 12, "display_name": "Ann", "avatar_url": None}, "name": "Morning Run",
    "description": "Easy loop by the river", "sport_type": "running", "visibility": "everyone", "manual": False,
    "start_date": "2026-10-01T07:00:00+00:00", "device": "Garmin Forerunner 265", "distance_m": 10012.4,
    "elapsed_time_s": 3120.0, "moving_time_s": 3050.0, "elevation_gain_m": 84.2, "elevation_loss_m": 83.9,
    "avg_speed_mps": 3.28, "max_speed_mps": 4.9, "avg_hr": 148.0, "max_hr": 171.0, "avg_cadence": 86.0,
    "avg_power": None, "max_power": None, "avg_temp": 14.0, "perceived_exertion": 4, "notes": None,
    "has_gps": True, "start_latlng": [45.1885, 5.7245], "end_latlng": [45.1887, 5.7243],
    "bounds": [45.1801, 5.7155, 45.1956, 5.7390],
    "map": {"polyline": "u{~vFvyys@fS]", "summary_polyline": "u{~vFvyys@fS]", "polylines": ["u{~vFvyys@fS]"]},
    "splits_metric": [{"split": 1, "distance_m": 1000.0, "elapsed_time_s": 305.0}], "splits_standard": [],
    "laps": [], "best_efforts": [], "achievements": [], "kudos_count": 3, "comment_count": 1, "has_kudoed": False,
    "upload_id": 901, "gear_id": 3, "external_id": None, "created_at": "2026-10-01T08:01:10+00:00",
    "updated_at": "2026-10-01T08:01:12+00:00", "timezone": "Europe/Paris", "start_date_local": "2026-10-01T09:00:00",
    "trainer": False, "commute": False, "training_load": 61.4, "load_method": "heart_rate", "trimp": 92.3,
    "hr_zones": [310.0, 1220.0, 1180.0, 340.0, 0.0], "energy_kcal": 702.0, "media": [],
}
#: What a list item leaves out of the detail: the heavy parts (GET /activities/{id} has them).
SUMMARY_EXCLUDES = ("description", "notes", "splits_metric", "splits_standard", "laps", "best_efforts",
                    "achievements")


class ActivitySchema(ma.Schema):
    class Meta:
        example = ACTIVITY_EXAMPLE

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
    timezone = ma.fields.String(allow_none=True, metadata={
        "description": "IANA time zone where the activity started (its first position, else the athlete's)"})
    start_date_local = ma.fields.String(allow_none=True, metadata={
        "description": "The start as a wall-clock time in `timezone`: ISO 8601 without an offset "
                       "(2026-03-01T07:30:00)", "example": "2026-03-01T07:30:00"})
    trainer = ma.fields.Boolean()
    commute = ma.fields.Boolean()
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
    training_load = ma.fields.Float(allow_none=True, metadata={
        "description": "Owner only: training load on the TSS scale (null until computed, or for others)"})
    load_method = ma.fields.String(allow_none=True, metadata={
        "description": "Owner only: power, heart_rate, rpe or estimated"})
    trimp = ma.fields.Float(allow_none=True, metadata={"description": "Owner only: Banister TRIMP"})
    hr_zones = ma.fields.List(ma.fields.Float(), allow_none=True, metadata={
        "description": "Owner only: seconds in heart-rate zones 1-5"})
    energy_kcal = ma.fields.Float(allow_none=True, metadata={"description": "Owner only: energy spent (kcal)"})
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
    gear_id = ma.fields.Integer(allow_none=True, metadata={"description": "The gear used (GET /me/gear/{id}); "
                                                                           "null without, and for others"})
    external_id = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class MapSummarySchema(ma.Schema):
    summary_polyline = ma.fields.String(metadata={
        "description": "Simplified encoded polyline as this viewer may see it (privacy zones removed for others)"})


class ActivitySummarySchema(ActivitySchema):
    """An activity in a list: the detail without its heavy parts, and only the summary polyline."""

    class Meta:
        exclude = SUMMARY_EXCLUDES
        example = {**{k: v for k, v in ACTIVITY_EXAMPLE.items() if k not in SUMMARY_EXCLUDES},
                   "map": {"summary_polyline": "u{~vFvyys@fS]"}}

    map = ma.fields.Nested(MapSummarySchema, allow_none=True, metadata={"description": "null without GPS"})


class ActivityPatchSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    name = ma.fields.String(validate=ColumnLength(Activity.name, 1))
    description = ma.fields.String(validate=validate.Length(0, 10000))
    sport_type = ma.fields.String(validate=validate.OneOf(SPORT_TYPES))
    visibility = ma.fields.String(validate=validate.OneOf(VISIBILITIES))
    perceived_exertion = ma.fields.Integer(allow_none=True, validate=validate.Range(1, 10))
    notes = ma.fields.String(allow_none=True, validate=validate.Length(0, 10000))
    gear_id = ma.fields.Integer(allow_none=True, validate=validate.Range(1, INT_MAX),
                                metadata={"description": "One of your gear, or null for none"})


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
    gear_id = ma.fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, INT_MAX), metadata={
        "description": "One of your gear; when absent, your default gear for the sport (if any)"})


class ActivityListArgsSchema(ma.Schema):
    cursor = ma.fields.String(load_default=None)
    limit = ma.fields.Integer(load_default=30, validate=validate.Range(1, 200))
    sport_type = ma.fields.String(load_default=None, validate=validate.OneOf(SPORT_TYPES))
    after = ma.fields.AwareDateTime(load_default=None, metadata={"description": "Only activities starting after"})
    before = ma.fields.AwareDateTime(load_default=None, metadata={"description": "Only activities starting before"})

    @ma.post_load
    def _in_utc(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        # PostgreSQL takes UTC offsets up to ±15:59 only; Python (and ISO 8601) allow up to ±23:59.
        for key in ("after", "before"):
            if data.get(key) is not None:
                data[key] = data[key].astimezone(UTC)
        return data


class ActivityPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ActivitySummarySchema))
    next_cursor = ma.fields.String(allow_none=True)


class SportSchema(ma.Schema):
    class Meta:
        example = {"sport_type": "trail_running", "name": "Trail Run", "family": "run"}

    sport_type = ma.fields.String(metadata={"description": "The value activities, segments and filters use"})
    name = ma.fields.String(metadata={"description": "How to show it (English)"})
    family = ma.fields.String(metadata={"enum": list(SPORT_FAMILIES),
                                        "description": "The group it belongs to in lists and totals"})


class StreamSchema(ma.Schema):
    data = ma.fields.List(ma.fields.Raw(), metadata={
        "description": "One value per point: a number, [lat, lng] for latlng, a boolean for moving, or null"})
    original_size = ma.fields.Integer(metadata={"description": "Points in the full-resolution stream"})
    resolution = ma.fields.String(metadata={"enum": ["low", "medium", "high"]})
    series_type = ma.fields.String(metadata={"description": "What the points are indexed by (time)"})


class StreamSetSchema(ma.Schema):
    """Only the streams the activity has among those asked for (an activity without GPS has no latlng)."""

    locals().update({key: ma.fields.Nested(StreamSchema, metadata=omittable()) for key in STREAM_KEYS})


class StreamArgsSchema(ma.Schema):
    keys = DelimitedList(ma.fields.String(validate=validate.OneOf(STREAM_KEYS)),
                                   load_default=list(STREAM_KEYS), metadata={"description": "Comma-separated"})
    resolution = ma.fields.String(load_default="high", validate=validate.OneOf(("low", "medium", "high")))
