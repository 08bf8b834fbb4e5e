"""Request and response schemas of the chat API (also used to build the socket frames' JSON)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from domain.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageArgsSchema
from models.chat import KINDS, ROLES, Conversation, Message
from webapp.activities.schemas import AthleteRefSchema
from webapp.columns import ColumnLength
from webapp.media.schemas import MediaSchema

WHO_MAY_MESSAGE = (
    "Anyone may start a direct conversation with (or add to a group conversation) an athlete with a public "
    "account, unless either of them blocked the other; an athlete with a private account only accepts it from "
    "people they follow or whose follow request they accepted. Across a block either way the other athlete is "
    "not found (404; unknown among member_ids); sending in an existing direct conversation across a block is "
    "refused with 403."
)


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("Must not be blank.")


class MessageSchema(ma.Schema):
    id = ma.fields.Integer(metadata={"description": "Increases with every message (all conversations): the cursor "
                                                   "of history and catch-up"})
    conversation_id = ma.fields.Integer()
    sender = ma.fields.Nested(AthleteRefSchema)
    client_id = ma.fields.String(metadata={"description": "The id the sending device chose"})
    body = ma.fields.String()
    created_at = ma.fields.DateTime()
    media = ma.fields.List(ma.fields.Nested(MediaSchema), metadata={
        "description": "History only, and only when it has some: the message's photos and videos (signed, "
                       "short-lived URLs)"})


class MemberSchema(ma.Schema):
    athlete = ma.fields.Nested(AthleteRefSchema)
    role = ma.fields.String(metadata={"description": "admin or member"})
    last_read_message_id = ma.fields.Integer(metadata={"description": "Read receipt: read up to this message id"})
    joined_at = ma.fields.DateTime()


class ConversationSchema(ma.Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String(metadata={"description": "direct or group"})
    name = ma.fields.String(allow_none=True, metadata={"description": "Group conversations; null for direct"})
    group_id = ma.fields.Integer(allow_none=True, metadata={
        "description": "The group owning this conversation: its members are the group's active members and its "
                       "admins the group's owner and admins (change them through the group)"})
    member_count = ma.fields.Integer()
    members = ma.fields.List(ma.fields.Nested(MemberSchema), metadata={
        "description": "Every member in the single-conversation view; the first 10 by joining order in lists"})
    last_message = ma.fields.Nested(MessageSchema, allow_none=True)
    last_activity_at = ma.fields.DateTime(metadata={"description": "Last message, or creation"})
    unread_count = ma.fields.Integer(metadata={"description": "Messages from others after the viewer's read receipt"})
    last_read_message_id = ma.fields.Integer(metadata={"description": "The viewer's read receipt"})
    role = ma.fields.String(metadata={"description": "The viewer's role: admin or member"})
    muted = ma.fields.Boolean(metadata={"description": "The viewer muted it: no notifications or push"})
    created_at = ma.fields.DateTime()


class ConversationCreateSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE
        description = ("direct: {kind, user_id} returns the pair's conversation (200) or creates it (201). group: "
                       "{kind, name, member_ids} creates a group conversation whose creator is its admin; "
                       "{kind, group_id[, name]} creates the chat of a group (its owner or an admin only; one per "
                       "group; 200 with the existing one). " + WHO_MAY_MESSAGE)

    kind = ma.fields.String(required=True, validate=validate.OneOf(KINDS))
    user_id = ma.fields.Integer(load_default=None, metadata={"description": "direct: the other athlete"})
    name = ma.fields.String(load_default=None, validate=[ColumnLength(Conversation.name, 1), _not_blank],
                            metadata={"description": "group: required unless group_id is given (default: the "
                                                     "group's name)"})
    member_ids = ma.fields.List(ma.fields.Integer(), load_default=list, validate=validate.Length(max=255),
                                metadata={"description": "group: the other athletes to add (not with group_id)"})
    group_id = ma.fields.Integer(load_default=None, metadata={"description": "group: the owning group"})

    @ma.validates_schema
    def _shape(self, data: dict[str, Any], **_: Any) -> None:
        if data["kind"] == "direct":
            if data["user_id"] is None:
                raise ma.ValidationError("Required for a direct conversation.", "user_id")
            extra = [k for k in ("name", "group_id") if data.get(k) is not None] + (
                ["member_ids"] if data["member_ids"] else [])
            if extra:
                raise ma.ValidationError(f"Not allowed for a direct conversation: {', '.join(extra)}.", "kind")
            return
        if data["user_id"] is not None:
            raise ma.ValidationError("Only for a direct conversation; use member_ids.", "user_id")
        if data["group_id"] is not None and data["member_ids"]:
            raise ma.ValidationError("A group's chat has the group's members; don't list them.", "member_ids")
        if data["group_id"] is None and data["name"] is None:
            raise ma.ValidationError("Required for a group conversation.", "name")


class ConversationPatchSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    name = ma.fields.String(validate=[ColumnLength(Conversation.name, 1), _not_blank],
                            metadata={"description": "Rename a group conversation (its admins)"})
    muted = ma.fields.Boolean(metadata={"description": "The viewer's own switch: no notifications or push"})


class ConversationPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ConversationSchema))
    next_cursor = ma.fields.String(allow_none=True)


class ConversationListArgsSchema(PageArgsSchema):
    limit = ma.fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(1, 100))


class MessageHistoryArgsSchema(ma.Schema):
    class Meta:
        description = ("Without a cursor or with before=<id>: the newest messages (older than id), newest first. "
                       "With after=<id>: the messages after id, oldest first — pass the last id you have to get "
                       "exactly what you missed. has_more says whether another page follows in the same direction.")

    before = ma.fields.Integer(load_default=None, validate=validate.Range(min=1),
                               metadata={"description": "Messages with a smaller id, newest first"})
    after = ma.fields.Integer(load_default=None, validate=validate.Range(min=0),
                              metadata={"description": "Messages with a larger id, oldest first"})
    limit = ma.fields.Integer(load_default=50, validate=validate.Range(1, MAX_LIMIT))

    @ma.validates_schema
    def _one_cursor(self, data: dict[str, Any], **_: Any) -> None:
        if data["before"] is not None and data["after"] is not None:
            raise ma.ValidationError("Pass before or after, not both.", "after")


class MessagePageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(MessageSchema), metadata={
        "description": "Newest first (default, before), oldest first (after)"})
    has_more = ma.fields.Boolean()


class MessageCreateSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE
        description = ("Send a message. client_id is the device's own id for it (e.g. a UUID): sending it again "
                       "(after a dropped connection) returns the same message with 200 instead of 201, and never "
                       "makes a second one; the same client_id with another body is a 409. The body is at most "
                       "CHAT_MAX_BODY_CHARS (4,000) characters and not blank (422); each sender has a budget of "
                       "CHAT_RATE_LIMIT_MESSAGES (30) per CHAT_RATE_LIMIT_WINDOW_S (10) seconds (429 with "
                       "Retry-After). " + WHO_MAY_MESSAGE)

    client_id = ma.fields.String(required=True, validate=[ColumnLength(Message.client_id, 1), _not_blank])
    body = ma.fields.String(required=True)


class ReadSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    message_id = ma.fields.Integer(required=True, validate=validate.Range(min=1), metadata={
        "description": "A message of this conversation: everything up to it counts as read (never moves back)"})


class ReadStateSchema(ma.Schema):
    conversation_id = ma.fields.Integer()
    last_read_message_id = ma.fields.Integer()
    unread_count = ma.fields.Integer()


class MemberAddSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    user_id = ma.fields.Integer(required=True)


class MemberPatchSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    role = ma.fields.String(required=True, validate=validate.OneOf(ROLES))
