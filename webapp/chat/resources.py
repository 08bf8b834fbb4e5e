"""Chat REST API: conversations, history, sending, read receipts, members (rules in ``webapp.chat.service``)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from domain.chat import service
from domain.media import attached
from webapp.auth import current_user
from webapp.chat.schemas import (
    ConversationCreateSchema,
    ConversationListArgsSchema,
    ConversationPageSchema,
    ConversationPatchSchema,
    ConversationSchema,
    MemberAddSchema,
    MemberPatchSchema,
    MemberSchema,
    MessageCreateSchema,
    MessageHistoryArgsSchema,
    MessagePageSchema,
    MessageSchema,
    ReadSchema,
    ReadStateSchema,
)

blp = Blueprint("chat", __name__, url_prefix="/api/v1",
                description="Chat: direct and group conversations, messages, read receipts and members "
                            "(the socket carries the same messages live)")



@blp.route("/conversations")
class Conversations(MethodView):
    @blp.arguments(ConversationListArgsSchema, location="query")
    @blp.response(200, ConversationPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The signed-in athlete's conversations, most recent activity first, with last message and unread count"""
        return service.list_conversations(current_user().id, args["cursor"], args["limit"])

    @blp.arguments(ConversationCreateSchema)
    @blp.response(201, ConversationSchema)
    @blp.alt_response(200, schema=ConversationSchema,
                      description="The direct conversation of this pair, or the group's chat, already existed")
    def post(self, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Start a direct conversation (one per pair) or a group conversation (optionally a group's chat)

        Direct: anyone not in a block with you (either way; across a block the athlete is not found, 404); an
        athlete with a private account only if they follow you or accepted your follow (403). The same rule
        applies to every athlete added to a group conversation. A group's chat is created by its owner or an
        admin; its members are the group's.
        """
        viewer = current_user()
        if data["kind"] == "direct":
            conversation, created = service.create_direct(viewer, data["user_id"])
        elif data["group_id"] is not None:
            conversation, created = service.create_group_chat(viewer, data["group_id"], data["name"])
        else:
            conversation, created = service.create_group(viewer, data["name"], data["member_ids"]), True
        return conversation, 201 if created else 200


@blp.route("/conversations/<int:conversation_id>")
class ConversationById(MethodView):
    @blp.response(200, ConversationSchema)
    def get(self, conversation_id: int) -> dict[str, Any]:
        """A conversation with all its members and their read receipts (members only: 404 otherwise)"""
        return service.describe(current_user().id, conversation_id)

    @blp.arguments(ConversationPatchSchema)
    @blp.response(200, ConversationSchema)
    def patch(self, changes: dict[str, Any], conversation_id: int) -> dict[str, Any]:
        """Rename a group conversation (admins) and/or mute it for yourself"""
        return service.update_conversation(current_user().id, conversation_id, changes)


@blp.route("/conversations/<int:conversation_id>/messages")
class Messages(MethodView):
    @blp.arguments(MessageHistoryArgsSchema, location="query")
    @blp.response(200, MessagePageSchema)
    def get(self, args: dict[str, Any], conversation_id: int) -> dict[str, Any]:
        """History by message id: newest first (default, before=<id>) or oldest first after=<id> (catch-up)

        Ids only grow, and a message is numbered and committed under one lock, so after=<the last id you have>
        returns exactly the messages you have not seen.
        """
        return attached.message_history(current_user(), conversation_id, args["before"], args["after"],
                                        args["limit"])

    @blp.arguments(MessageCreateSchema)
    @blp.response(201, MessageSchema)
    @blp.alt_response(200, schema=MessageSchema, description="A resend: this client_id was already stored")
    def post(self, data: dict[str, Any], conversation_id: int) -> tuple[dict[str, Any], int]:
        """Send a message (idempotent per client_id); every member's sockets get it as chat.message

        A resend with a used client_id and the same body returns the stored message (200); with another body, 409.
        Body: not blank, at most 4,000 characters (422). At most 30 messages per 10 s per sender (429 with
        Retry-After). In a direct conversation a block either way refuses the message (403).
        """
        message, created = service.send(current_user().id, conversation_id, data["client_id"], data["body"])
        return message, 201 if created else 200


@blp.route("/conversations/<int:conversation_id>/read")
class Read(MethodView):
    @blp.arguments(ReadSchema)
    @blp.response(200, ReadStateSchema)
    def post(self, data: dict[str, Any], conversation_id: int) -> dict[str, Any]:
        """Read receipt: everything up to message_id is read (an older id changes nothing); members get chat.read"""
        return service.mark_read(current_user().id, conversation_id, data["message_id"])


@blp.route("/conversations/<int:conversation_id>/members")
class Members(MethodView):
    @blp.arguments(MemberAddSchema)
    @blp.response(201, MemberSchema)
    @blp.alt_response(200, schema=MemberSchema, description="Already a member: nothing changed")
    def post(self, data: dict[str, Any], conversation_id: int) -> tuple[dict[str, Any], int]:
        """Add an athlete to a group conversation (admins; not across a block, private accounts as for direct)"""
        member, created = service.add_member(current_user().id, conversation_id, data["user_id"])
        return member, 201 if created else 200


@blp.route("/conversations/<int:conversation_id>/members/<int:user_id>")
class MemberById(MethodView):
    @blp.arguments(MemberPatchSchema)
    @blp.response(200, MemberSchema)
    def patch(self, data: dict[str, Any], conversation_id: int, user_id: int) -> dict[str, Any]:
        """Promote to admin or demote to member (admins; the last admin can't step down)"""
        return service.set_role(current_user().id, conversation_id, user_id, data["role"])

    @blp.response(204)
    def delete(self, conversation_id: int, user_id: int) -> None:
        """Remove a member (admins) or leave (your own id); the last admin leaving promotes the oldest member"""
        service.remove_member(current_user().id, conversation_id, user_id)
