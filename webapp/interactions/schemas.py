from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from webapp.activities.schemas import AthleteRefSchema
from webapp.posts.schemas import TrimmedString

COMMENT_TEXT_MAX = 2000


class KudosStateSchema(ma.Schema):
    kudos_count = ma.fields.Integer(metadata={"description": "Kudos on the object after this request"})
    has_kudoed = ma.fields.Boolean(metadata={"description": "Whether the viewer's kudos stands"})


class KudoerSchema(ma.Schema):
    id = ma.fields.Integer()
    display_name = ma.fields.String()
    avatar_url = ma.fields.String(allow_none=True)
    given_at = ma.fields.DateTime()


class KudoerPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(KudoerSchema))
    next_cursor = ma.fields.String(allow_none=True)


class CommentCreateSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    text = TrimmedString(required=True, validate=validate.Length(1, COMMENT_TEXT_MAX))


class CommentSchema(ma.Schema):
    id = ma.fields.Integer()
    athlete = ma.fields.Nested(AthleteRefSchema)
    text = ma.fields.String()
    activity_id = ma.fields.Integer(allow_none=True)
    post_id = ma.fields.Integer(allow_none=True)
    can_delete = ma.fields.Boolean(metadata={"description": "The viewer wrote it or owns the commented object"})
    created_at = ma.fields.DateTime()


class CommentPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(CommentSchema))
    next_cursor = ma.fields.String(allow_none=True)
