from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from domain.pagination import MAX_LIMIT, PageArgsSchema
from models.activity import SPORT_TYPES
from models.group import JOIN_POLICIES, Group
from webapp.activities.schemas import AthleteRefSchema
from webapp.columns import ColumnLength

#: Roles an owner may hand out with PATCH …/members/{user_id}; "owner" transfers ownership.
ASSIGNABLE_ROLES = ("owner", "admin", "member")
MEMBER_STATUSES = ("active", "pending")
LEADERBOARD_METRICS = ("distance", "moving_time")


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("Must not be blank.")


class GroupMembershipSchema(ma.Schema):
    role = ma.fields.String(metadata={"description": "owner, admin or member"})
    status = ma.fields.String(metadata={"description": "active, or pending until an owner/admin approves"})


class GroupSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    description = ma.fields.String()
    join_policy = ma.fields.String(metadata={"description": "open: anyone joins at once; approval: owner/admins "
                                                            "approve each request"})
    sport_type = ma.fields.String(allow_none=True)
    avatar_url = ma.fields.String(allow_none=True)
    member_count = ma.fields.Integer(metadata={"description": "Active members"})
    owner = ma.fields.Nested(AthleteRefSchema)
    membership = ma.fields.Nested(GroupMembershipSchema, allow_none=True,
                                  metadata={"description": "The viewer's membership, null when not a member"})
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class GroupCreateSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    name = ma.fields.String(required=True, validate=[ColumnLength(Group.name, 1), _not_blank])
    description = ma.fields.String(load_default="", validate=validate.Length(0, 5000))
    join_policy = ma.fields.String(load_default="open", validate=validate.OneOf(JOIN_POLICIES))
    sport_type = ma.fields.String(load_default=None, allow_none=True, validate=validate.OneOf(SPORT_TYPES))
    avatar_url = ma.fields.Url(load_default=None, allow_none=True, schemes={"http", "https"},
                               validate=validate.Length(max=2048))


class GroupPatchSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    name = ma.fields.String(validate=[ColumnLength(Group.name, 1), _not_blank])
    description = ma.fields.String(validate=validate.Length(0, 5000))
    join_policy = ma.fields.String(validate=validate.OneOf(JOIN_POLICIES), metadata={
        "description": "Switching to open approves every waiting request"})
    sport_type = ma.fields.String(allow_none=True, validate=validate.OneOf(SPORT_TYPES))
    avatar_url = ma.fields.Url(allow_none=True, schemes={"http", "https"}, validate=ColumnLength(Group.avatar_url))


class GroupPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(GroupSchema))
    next_cursor = ma.fields.String(allow_none=True)


class GroupListArgsSchema(PageArgsSchema):
    q = ma.fields.String(load_default=None, validate=validate.Length(1, 120),
                         metadata={"description": "Part of the name (case-insensitive)"})
    sport_type = ma.fields.String(load_default=None, validate=validate.OneOf(SPORT_TYPES))


class GroupMemberSchema(ma.Schema):
    athlete = ma.fields.Nested(AthleteRefSchema)
    role = ma.fields.String()
    status = ma.fields.String()
    since = ma.fields.DateTime(metadata={"description": "When the athlete joined or asked to join"})


class GroupMemberPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(GroupMemberSchema))
    next_cursor = ma.fields.String(allow_none=True)


class GroupMemberListArgsSchema(PageArgsSchema):
    status = ma.fields.String(load_default="active", validate=validate.OneOf(MEMBER_STATUSES),
                              metadata={"description": "pending: join requests (owner and admins only)"})


class GroupMemberPatchSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    role = ma.fields.String(required=True, validate=validate.OneOf(ASSIGNABLE_ROLES), metadata={
        "description": "admin or member; owner transfers ownership (the current owner becomes an admin)"})


class GroupPostSchema(ma.Schema):
    id = ma.fields.Integer()
    athlete = ma.fields.Nested(AthleteRefSchema)
    group_id = ma.fields.Integer()
    text = ma.fields.String()
    activity_id = ma.fields.Integer(allow_none=True)
    kudos_count = ma.fields.Integer()
    comment_count = ma.fields.Integer()
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class GroupPostPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(GroupPostSchema))
    next_cursor = ma.fields.String(allow_none=True)


class GroupLeaderboardArgsSchema(ma.Schema):
    sport_type = ma.fields.String(load_default=None, validate=validate.OneOf(SPORT_TYPES))
    metric = ma.fields.String(load_default="distance", validate=validate.OneOf(LEADERBOARD_METRICS))
    limit = ma.fields.Integer(load_default=100, validate=validate.Range(1, MAX_LIMIT))


class GroupLeaderboardEntrySchema(ma.Schema):
    rank = ma.fields.Integer(metadata={"description": "1 = highest; equal values share a rank"})
    athlete = ma.fields.Nested(AthleteRefSchema)
    value = ma.fields.Float(metadata={"description": "Metres (distance) or seconds (moving_time)"})
    activity_count = ma.fields.Integer()


class GroupLeaderboardSchema(ma.Schema):
    metric = ma.fields.String()
    sport_type = ma.fields.String(allow_none=True)
    week_start = ma.fields.DateTime(metadata={"description": "Monday 00:00 UTC of the current ISO week"})
    week_end = ma.fields.DateTime(metadata={"description": "The next Monday 00:00 UTC (exclusive)"})
    entries = ma.fields.List(ma.fields.Nested(GroupLeaderboardEntrySchema))
