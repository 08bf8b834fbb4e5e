"""chat conversations, members, messages and read receipts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# A group's conversation mirrors the group's active members (owner/admins → admin), whatever path changes them.
# The function's queries see rows committed since the statement began (plpgsql, VOLATILE), so a join that
# waited on the FK lock of a group whose chat was being created finds the new conversation.
GROUP_CHAT_MEMBERS = """
CREATE FUNCTION group_chat_members() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  gid bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.group_id ELSE NEW.group_id END;
  conv bigint;
BEGIN
  SELECT id INTO conv FROM conversations WHERE group_id = gid;
  IF conv IS NULL THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND NEW.status <> 'active') THEN
    DELETE FROM conversation_members
     WHERE conversation_id = conv AND user_id = OLD.user_id;
  ELSIF NEW.status = 'active' THEN
    INSERT INTO conversation_members (conversation_id, user_id, role, last_read_message_id)
    SELECT conv, NEW.user_id, CASE WHEN NEW.role IN ('owner', 'admin') THEN 'admin' ELSE 'member' END,
           COALESCE(c.last_message_id, 0)
      FROM conversations c WHERE c.id = conv
    ON CONFLICT (conversation_id, user_id) DO UPDATE SET role = EXCLUDED.role;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER group_chat_members AFTER INSERT OR DELETE OR UPDATE OF status, role ON group_members
  FOR EACH ROW EXECUTE FUNCTION group_chat_members();
"""

DROP_GROUP_CHAT_MEMBERS = """
DROP TRIGGER IF EXISTS group_chat_members ON group_members;
DROP FUNCTION IF EXISTS group_chat_members();
"""


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=True),
        sa.Column("group_id", sa.BigInteger(), nullable=True),
        sa.Column("user_low_id", sa.BigInteger(), nullable=True),
        sa.Column("user_high_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by_id", sa.BigInteger(), nullable=True),
        sa.Column("last_message_id", sa.BigInteger(), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('direct', 'group')", name=op.f("ck_conversations_kind")),
        sa.CheckConstraint(
            "(kind = 'direct' AND user_low_id IS NOT NULL AND user_high_id IS NOT NULL AND user_low_id < user_high_id"
            " AND group_id IS NULL AND name IS NULL)"
            " OR (kind = 'group' AND user_low_id IS NULL AND user_high_id IS NULL AND name IS NOT NULL)",
            name=op.f("ck_conversations_shape")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_conversations_created_by_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["group_id"], ["groups.id"], name=op.f("fk_conversations_group_id_groups"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_high_id"], ["users.id"], name=op.f("fk_conversations_user_high_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_low_id"], ["users.id"], name=op.f("fk_conversations_user_low_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint("group_id", name=op.f("uq_conversations_group_id")),
    )
    op.create_index("uq_conversations_direct_pair", "conversations", ["user_low_id", "user_high_id"], unique=True)
    op.create_index("ix_conversations_user_high_id", "conversations", ["user_high_id"], unique=False)
    op.create_table(
        "conversation_members",
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=8), server_default="member", nullable=False),
        sa.Column("muted", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("last_read_message_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'member')", name=op.f("ck_conversation_members_role")),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_conversation_members_conversation_id_conversations"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_conversation_members_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("conversation_id", "user_id", name=op.f("pk_conversation_members")),
    )
    op.create_index("ix_conversation_members_user", "conversation_members", ["user_id"], unique=False)
    op.create_table(
        "messages",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("sender_id", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_messages_conversation_id_conversations"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sender_id"], ["users.id"], name=op.f("fk_messages_sender_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    op.create_index("ix_messages_conversation_id", "messages", ["conversation_id", "id"], unique=False)
    op.create_index("uq_messages_sender_client", "messages", ["sender_id", "client_id"], unique=True)
    op.execute(GROUP_CHAT_MEMBERS)


def downgrade() -> None:
    op.execute(DROP_GROUP_CHAT_MEMBERS)
    op.drop_index("uq_messages_sender_client", table_name="messages")
    op.drop_index("ix_messages_conversation_id", table_name="messages")
    op.drop_table("messages")
    op.drop_index("ix_conversation_members_user", table_name="conversation_members")
    op.drop_table("conversation_members")
    op.drop_index("ix_conversations_user_high_id", table_name="conversations")
    op.drop_index("uq_conversations_direct_pair", table_name="conversations")
    op.drop_table("conversations")
