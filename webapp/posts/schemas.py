from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from models.user import VISIBILITIES
from webapp.activities.schemas import ActivitySchema, AthleteRefSchema
from webapp.media.schemas import MediaSchema

POST_TEXT_MAX = 5000


class TrimmedString(ma.fields.String):
    """A string with surrounding whitespace removed before validation, so "   " fails a Length(1, …) check."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


class PostCreateSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    text = TrimmedString(required=True, validate=validate.Length(1, POST_TEXT_MAX))
    visibility = ma.fields.String(validate=validate.OneOf(VISIBILITIES), metadata={
        "description": "Defaults to the author's preferences.default_visibility; not allowed on group posts"})
    activity_id = ma.fields.Integer(load_default=None, allow_none=True, metadata={
        "description": "Share this activity with a caption (you must be able to see it)"})
    group_id = ma.fields.Integer(load_default=None, allow_none=True, metadata={
        "description": "Post in this group's discussion (active members only); read by the group's audience"})


class PostPatchSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    text = TrimmedString(validate=validate.Length(1, POST_TEXT_MAX))
    visibility = ma.fields.String(validate=validate.OneOf(VISIBILITIES))


class PostSchema(ma.Schema):
    id = ma.fields.Integer()
    athlete = ma.fields.Nested(AthleteRefSchema)
    text = ma.fields.String()
    visibility = ma.fields.String(metadata={"description": "Ignored for group posts: the group's audience reads"})
    media = ma.fields.List(ma.fields.Nested(MediaSchema), metadata={"description": "Its photos and videos, in order"})
    activity_id = ma.fields.Integer(allow_none=True)
    activity = ma.fields.Nested(ActivitySchema, allow_none=True, metadata={
        "description": "The shared activity, or null when there is none or this viewer may not see it"})
    group_id = ma.fields.Integer(allow_none=True)
    kudos_count = ma.fields.Integer()
    comment_count = ma.fields.Integer()
    has_kudoed = ma.fields.Boolean(metadata={"description": "The viewer gave kudos to this post"})
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
