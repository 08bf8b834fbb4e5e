from __future__ import annotations

from datetime import UTC

import marshmallow as ma
from marshmallow import validate

from models.activity import SPORT_TYPES
from models.live import LiveSession
from models.user import VISIBILITIES
from webapp.activities.schemas import AthleteRefSchema
from webapp.columns import ColumnLength

#: Ten minutes at 1 Hz: a phone that was offline sends its backlog in a few batches.
MAX_BATCH_POINTS = 600


class StrictSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class LiveStartSchema(StrictSchema):
    sport_type = ma.fields.String(load_default="running", validate=validate.OneOf(SPORT_TYPES))
    title = ma.fields.String(load_default="", validate=ColumnLength(LiveSession.title))
    visibility = ma.fields.String(load_default=None, validate=validate.OneOf(VISIBILITIES), metadata={
        "description": "Who may watch; defaults to your default visibility"})


class LivePointSchema(StrictSchema):
    time = ma.fields.AwareDateTime(required=True, default_timezone=UTC, metadata={
        "description": "When the device recorded the point (ISO 8601; UTC when no offset). Strictly increasing."})
    lat = ma.fields.Float(load_default=None, allow_none=True, validate=validate.Range(-90, 90))
    lng = ma.fields.Float(load_default=None, allow_none=True, validate=validate.Range(-180, 180))
    ele = ma.fields.Float(load_default=None, allow_none=True, validate=validate.Range(-1000, 10000))
    hr = ma.fields.Integer(load_default=None, allow_none=True, validate=validate.Range(0, 300))
    cadence = ma.fields.Integer(load_default=None, allow_none=True, validate=validate.Range(0, 300))
    power = ma.fields.Integer(load_default=None, allow_none=True, validate=validate.Range(0, 3000))
    distance_m = ma.fields.Float(load_default=None, allow_none=True, validate=validate.Range(0, 2_000_000),
                                 metadata={"description": "The device's own cumulative distance, if it has one"})

    @ma.validates_schema
    def _position_pair(self, data: dict, **_: object) -> None:
        if (data.get("lat") is None) != (data.get("lng") is None):
            raise ma.ValidationError("lat and lng come together (or neither, for a point without GPS).")


class PointBatchSchema(StrictSchema):
    points = ma.fields.List(ma.fields.Nested(LivePointSchema), required=True,
                            validate=validate.Length(min=1, max=MAX_BATCH_POINTS))


class SocketPointBatchSchema(PointBatchSchema):
    """The ``live.point`` frame: the batch plus the frame's envelope."""

    type = ma.fields.String()
    ref = ma.fields.Raw()
    session_id = ma.fields.Integer(required=True, strict=True)


class FinishSchema(StrictSchema):
    save = ma.fields.Boolean(load_default=False, metadata={
        "description": "true: turn the session into an activity through the upload pipeline"})


class ListArgsSchema(StrictSchema):
    scope = ma.fields.String(load_default="following", validate=validate.OneOf(("following", "mine")))
    limit = ma.fields.Integer(load_default=50, validate=validate.Range(1, 100))


class LivePointOutSchema(ma.Schema):
    time = ma.fields.String()
    lat = ma.fields.Float(allow_none=True)
    lng = ma.fields.Float(allow_none=True)
    ele = ma.fields.Float(allow_none=True)
    hr = ma.fields.Integer(allow_none=True)
    cadence = ma.fields.Integer(allow_none=True)
    power = ma.fields.Integer(allow_none=True)
    seq = ma.fields.Integer(metadata={"description": "Owner only"})
    distance_m = ma.fields.Float(allow_none=True, metadata={"description": "Owner only"})
    hidden = ma.fields.Boolean(metadata={"description": "Owner only: whether others see this point"})


class LiveSessionSchema(ma.Schema):
    id = ma.fields.Integer()
    athlete = ma.fields.Nested(AthleteRefSchema)
    sport_type = ma.fields.String()
    title = ma.fields.String()
    visibility = ma.fields.String()
    status = ma.fields.String(metadata={"description": "live | ended"})
    end_reason = ma.fields.String(allow_none=True, metadata={"description": "finished | abandoned | max_duration"})
    started_at = ma.fields.DateTime()
    ended_at = ma.fields.DateTime(allow_none=True)
    elapsed_s = ma.fields.Float()
    distance_m = ma.fields.Float(metadata={
        "description": "Others get only the distance between points they may see"})
    hr = ma.fields.Integer(allow_none=True)
    last_point = ma.fields.Nested(LivePointOutSchema, allow_none=True)
    points = ma.fields.List(ma.fields.Nested(LivePointOutSchema), metadata={
        "description": "The newest points (up to 500) the viewer may see, oldest first"})
    point_count = ma.fields.Integer(metadata={"description": "Owner only"})
    last_point_at = ma.fields.DateTime(allow_none=True, metadata={"description": "Owner only"})
    upload_id = ma.fields.Integer(allow_none=True, metadata={"description": "Owner only, once saved"})
    activity_id = ma.fields.Integer(allow_none=True, metadata={"description": "Owner only, once processed"})


class LiveSessionListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(LiveSessionSchema))


class PointsResultSchema(ma.Schema):
    session_id = ma.fields.Integer()
    accepted = ma.fields.Integer(metadata={"description": "New points stored"})
    duplicates = ma.fields.Integer(metadata={"description": "Points already received (a resent batch)"})
    point_count = ma.fields.Integer()
    distance_m = ma.fields.Float()
