from __future__ import annotations

import marshmallow as ma


class UserSummarySchema(ma.Schema):
    id = ma.fields.Integer()
    display_name = ma.fields.String()
    avatar_url = ma.fields.String(allow_none=True)
    is_private = ma.fields.Boolean()
    since = ma.fields.DateTime(metadata={"description": "When the relationship started"})


class UserPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(UserSummarySchema))
    next_cursor = ma.fields.String(allow_none=True)


class FollowStateSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "accepted, or pending until a private account approves"})
