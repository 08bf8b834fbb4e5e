from __future__ import annotations

import marshmallow as ma

from webapp.activities.schemas import AthleteRefSchema
from webapp.media.schemas import MediaSchema
from webapp.openapi import omittable


class FeedMapSchema(ma.Schema):
    summary_polyline = ma.fields.String(metadata={
        "description": "Simplified encoded polyline as this viewer may see it (privacy zones removed for others)"})


class FeedActivitySchema(ma.Schema):
    id = ma.fields.Integer()
    media = ma.fields.List(ma.fields.Nested(MediaSchema), metadata={"description": "Its ready photos and videos"})
    athlete = ma.fields.Nested(AthleteRefSchema)
    name = ma.fields.String()
    sport_type = ma.fields.String()
    visibility = ma.fields.String()
    start_date = ma.fields.DateTime()
    distance_m = ma.fields.Float()
    moving_time_s = ma.fields.Float()
    elapsed_time_s = ma.fields.Float()
    elevation_gain_m = ma.fields.Float(allow_none=True)
    avg_speed_mps = ma.fields.Float(allow_none=True)
    has_gps = ma.fields.Boolean()
    map = ma.fields.Nested(FeedMapSchema, allow_none=True, metadata={"description": "null without GPS"})
    kudos_count = ma.fields.Integer()
    comment_count = ma.fields.Integer()
    has_kudoed = ma.fields.Boolean(metadata={"description": "Whether the signed-in athlete gave kudos"})


class FeedPostSchema(ma.Schema):
    id = ma.fields.Integer()
    media = ma.fields.List(ma.fields.Nested(MediaSchema), metadata={"description": "Its ready photos and videos"})
    text = ma.fields.String()
    visibility = ma.fields.String()
    created_at = ma.fields.DateTime()
    activity = ma.fields.Nested(FeedActivitySchema, allow_none=True, metadata={
        "description": "The shared activity, when there is one and the viewer may see it"})
    kudos_count = ma.fields.Integer()
    comment_count = ma.fields.Integer()
    has_kudoed = ma.fields.Boolean()


class FeedItemSchema(ma.Schema):
    type = ma.fields.String(metadata={"description": "activity or post: says which of the two keys is present"})
    id = ma.fields.Integer(metadata={"description": "The activity's or the post's id"})
    date = ma.fields.DateTime(metadata={"description": "What the feed is ordered by: start or creation time"})
    athlete = ma.fields.Nested(AthleteRefSchema)
    activity = ma.fields.Nested(FeedActivitySchema, metadata=omittable(description="Present when type is activity"))
    post = ma.fields.Nested(FeedPostSchema, metadata=omittable(description="Present when type is post"))


class FeedPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(FeedItemSchema))
    next_cursor = ma.fields.String(allow_none=True, metadata={"description": "Pass back as ?cursor= for older items"})
