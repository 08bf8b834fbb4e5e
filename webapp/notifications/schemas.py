from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from webapp.activities.schemas import AthleteRefSchema

MAX_IDS = 500


class NotificationRefsSchema(ma.Schema):
    activity_id = ma.fields.Integer(allow_none=True)
    post_id = ma.fields.Integer(allow_none=True)
    comment_id = ma.fields.Integer(allow_none=True)
    group_id = ma.fields.Integer(allow_none=True)
    achievement_id = ma.fields.Integer(allow_none=True)


class NotificationSchema(ma.Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String(metadata={"description": "kudos, comment, follow, follow_request, follow_accepted, "
                                                     "group_join_request, group_joined, achievement, message, "
                                                     "hydration_reminder"})
    actor = ma.fields.Nested(AthleteRefSchema, allow_none=True, metadata={"description": "null for system events"})
    refs = ma.fields.Nested(NotificationRefsSchema)
    payload = ma.fields.Dict(metadata={"description": "What to show without another request (names, titles)"})
    read = ma.fields.Boolean()
    created_at = ma.fields.DateTime()


class NotificationPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(NotificationSchema))
    next_cursor = ma.fields.String(allow_none=True)
    unread_count = ma.fields.Integer()


class MarkReadSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    ids = ma.fields.List(ma.fields.Integer(), validate=validate.Length(1, MAX_IDS),
                         metadata={"description": "Mark these (yours; others' ids are ignored)"})
    all = ma.fields.Boolean(metadata={"description": "true: mark every notification read"})

    @ma.validates_schema
    def _exactly_one(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if ("ids" in data) == ("all" in data):
            raise ma.ValidationError('Send either "ids" or "all": true.')
        if data.get("all") is False:
            raise ma.ValidationError('Only "all": true is meaningful.', field_name="all")


class UnreadCountSchema(ma.Schema):
    unread_count = ma.fields.Integer()
