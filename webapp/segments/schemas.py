from __future__ import annotations

import marshmallow as ma
from marshmallow import ValidationError, validate, validates_schema

from models.activity import SPORT_TYPES
from models.leaderboard import AGE_GROUPS, DATE_RANGES, GENDERS
from models.segment import Segment
from webapp.activities.schemas import AthleteRefSchema
from webapp.columns import ColumnLength


class SegmentCreateSchema(ma.Schema):
    """Either ``activity_id`` + ``start_index`` + ``end_index``, or ``points`` (+ ``sport_type``)."""

    class Meta:
        unknown = ma.RAISE

    name = ma.fields.String(required=True, validate=ColumnLength(Segment.name, 1))
    activity_id = ma.fields.Integer()
    start_index = ma.fields.Integer(validate=validate.Range(min=0))
    end_index = ma.fields.Integer(validate=validate.Range(min=1))
    sport_type = ma.fields.String(validate=validate.OneOf(SPORT_TYPES))
    points = ma.fields.List(ma.fields.List(ma.fields.Float(), validate=validate.Length(2, 3)),
                            validate=validate.Length(2, 20000),
                            metadata={"description": "[[lat, lng], …] or [[lat, lng, elevation_m], …]"})

    @validates_schema
    def _one_source(self, data: dict, **_: object) -> None:
        from_activity = {"activity_id", "start_index", "end_index"} & set(data)
        if from_activity and "points" in data:
            raise ValidationError("Give either activity_id/start_index/end_index or points, not both.")
        if from_activity and from_activity != {"activity_id", "start_index", "end_index"}:
            raise ValidationError("activity_id, start_index and end_index go together.")
        if not from_activity and "points" not in data:
            raise ValidationError("Give activity_id/start_index/end_index or points.")
        if "points" in data and "sport_type" not in data:
            raise ValidationError({"sport_type": ["Required with points."]})
        if from_activity and data["end_index"] <= data["start_index"]:
            raise ValidationError({"end_index": ["Must be greater than start_index."]})


class SegmentSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    sport_type = ma.fields.String()
    distance_m = ma.fields.Float()
    elevation_gain_m = ma.fields.Float(allow_none=True)
    avg_grade_pct = ma.fields.Float(allow_none=True)
    max_grade_pct = ma.fields.Float(allow_none=True)
    climb_category = ma.fields.String(allow_none=True, metadata={"description": "4, 3, 2, 1, HC or null"})
    bounds = ma.fields.List(ma.fields.Float(), metadata={"description": "[min_lat, min_lng, max_lat, max_lng]"})
    start_latlng = ma.fields.List(ma.fields.Float())
    end_latlng = ma.fields.List(ma.fields.Float())
    polyline = ma.fields.String()
    effort_count = ma.fields.Integer()
    athlete_count = ma.fields.Integer()
    star_count = ma.fields.Integer()
    starred = ma.fields.Boolean()
    athlete_pr = ma.fields.Dict(allow_none=True, metadata={"description": "The viewer's best effort"})
    creator = ma.fields.Nested(AthleteRefSchema, allow_none=True)
    created_at = ma.fields.DateTime()


class SegmentPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(SegmentSchema))
    next_cursor = ma.fields.String(allow_none=True)


class ExploreArgsSchema(ma.Schema):
    bounds = ma.fields.String(required=True, metadata={"description": "sw_lat,sw_lng,ne_lat,ne_lng"})
    sport_type = ma.fields.String(load_default=None, validate=validate.OneOf(SPORT_TYPES))
    limit = ma.fields.Integer(load_default=10, validate=validate.Range(1, 50))

    @validates_schema
    def _bounds(self, data: dict, **_: object) -> None:
        try:
            sw_lat, sw_lng, ne_lat, ne_lng = (float(v) for v in data["bounds"].split(","))
        except (ValueError, KeyError):
            raise ValidationError({"bounds": ["Use sw_lat,sw_lng,ne_lat,ne_lng (four numbers)."]}) from None
        if not (-90 <= sw_lat <= ne_lat <= 90 and -180 <= sw_lng <= 180 and -180 <= ne_lng <= 180):
            raise ValidationError({"bounds": ["Latitudes must be ordered within ±90, longitudes within ±180."]})


class EffortSchema(ma.Schema):
    id = ma.fields.Integer()
    segment = ma.fields.Dict()
    activity_id = ma.fields.Integer()
    athlete_id = ma.fields.Integer()
    start_date = ma.fields.DateTime()
    elapsed_time_s = ma.fields.Float()
    moving_time_s = ma.fields.Float()
    start_index = ma.fields.Integer()
    end_index = ma.fields.Integer()
    pr_rank = ma.fields.Integer(allow_none=True)
    kom_rank = ma.fields.Integer(allow_none=True)


class EffortPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(EffortSchema))
    next_cursor = ma.fields.String(allow_none=True)


class SegmentEffortArgsSchema(ma.Schema):
    athlete = ma.fields.String(load_default="me", validate=validate.OneOf(["me"]),
                               metadata={"description": "Whose efforts: only 'me' for now"})
    cursor = ma.fields.String(load_default=None)
    limit = ma.fields.Integer(load_default=30, validate=validate.Range(1, 200))


class LeaderboardArgsSchema(ma.Schema):
    filter = ma.fields.String(load_default="overall", validate=validate.OneOf(["overall", "following"]))
    gender = ma.fields.String(load_default=None, validate=validate.OneOf(GENDERS))
    age_group = ma.fields.String(load_default=None, validate=validate.OneOf([a[0] for a in AGE_GROUPS]))
    date_range = ma.fields.String(load_default=None, validate=validate.OneOf(DATE_RANGES))
    limit = ma.fields.Integer(load_default=10, validate=validate.Range(1, 200))
    around_me = ma.fields.Boolean(load_default=False, metadata={
        "description": "Entries around the viewer's rank instead of the top"})


class LeaderboardEntrySchema(ma.Schema):
    rank = ma.fields.Integer()
    athlete = ma.fields.Nested(AthleteRefSchema)
    elapsed_time_s = ma.fields.Float()
    effort_id = ma.fields.Integer()
    activity_id = ma.fields.Integer()
    start_date = ma.fields.DateTime()


class LeaderboardSchema(ma.Schema):
    entries = ma.fields.List(ma.fields.Nested(LeaderboardEntrySchema))
    entry_count = ma.fields.Integer()
    my_entry = ma.fields.Nested(LeaderboardEntrySchema, allow_none=True)


class AchievementSchema(ma.Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String(metadata={
        "description": "pr, kom, qom, top10, best_effort, first_sport, milestone, streak"})
    rank = ma.fields.Integer(allow_none=True)
    value = ma.fields.Float(allow_none=True)
    activity_id = ma.fields.Integer(allow_none=True)
    effort_id = ma.fields.Integer(allow_none=True)
    segment_id = ma.fields.Integer(allow_none=True)
    details = ma.fields.Dict()
    created_at = ma.fields.DateTime()


class AchievementPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(AchievementSchema))
    next_cursor = ma.fields.String(allow_none=True)
