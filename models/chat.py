"""Chat: direct and group conversations, their members (with read pointers) and messages.

A direct conversation holds exactly two athletes, stored as an ordered pair (``user_low_id < user_high_id``)
under a unique index, so two people have one conversation however many times and however concurrently either
of them starts it. A group conversation has a name, admins and members; a ``groups`` row can own at most one
(``group_id`` unique): its members then mirror the group's active members — admins mirror the group's owner
and admins — through a trigger on ``group_members`` (see the 0006 migration), so every path that changes a
group's membership (join, approval, leave, removal, role change, deletion) changes its chat too.

Message ids come from one bigserial and are handed out under a global lock held until commit (see
``webapp.chat.service.send``), so commit order is id order and "everything after id N" is an exact catch-up.
``(sender_id, client_id)`` is unique: a resend of the same client-chosen id never makes a second message.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base

DIRECT, GROUP = "direct", "group"
KINDS = (DIRECT, GROUP)
ADMIN, MEMBER = "admin", "member"
ROLES = (ADMIN, MEMBER)


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    #: Group conversations only (direct ones are named after the other athlete by the client).
    name: Mapped[str | None] = mapped_column(String(120))
    #: The group that owns this conversation, if any; at most one conversation per group.
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), unique=True)
    #: Direct conversations only: the pair, lower id first.
    user_low_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    user_high_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    #: Denormalised for the conversation list (ordered by last activity); no FK: messages point here already.
    last_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_activity_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("kind IN ('direct', 'group')", name="kind"),
        CheckConstraint(
            "(kind = 'direct' AND user_low_id IS NOT NULL AND user_high_id IS NOT NULL AND user_low_id < user_high_id"
            " AND group_id IS NULL AND name IS NULL)"
            " OR (kind = 'group' AND user_low_id IS NULL AND user_high_id IS NULL AND name IS NOT NULL)",
            name="shape"),
        Index("uq_conversations_direct_pair", "user_low_id", "user_high_id", unique=True),
        Index("ix_conversations_user_high_id", "user_high_id"),
    )


class ConversationMember(Base):
    __tablename__ = "conversation_members"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(8), default=MEMBER, server_default=MEMBER)
    #: A muted conversation writes no notifications (so no push) for this member; live frames still arrive.
    muted: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    #: The read receipt: every message up to this id counts as read. Only ever moves forward.
    last_read_message_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    joined_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("role IN ('admin', 'member')", name="role"),
        Index("ix_conversation_members_user", "user_id"),
    )


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    sender_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: Chosen by the sending device (e.g. a UUID); a resend with the same id returns the stored message.
    client_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        Index("uq_messages_sender_client", "sender_id", "client_id", unique=True),
        Index("ix_messages_conversation_id", "conversation_id", "id"),
    )
