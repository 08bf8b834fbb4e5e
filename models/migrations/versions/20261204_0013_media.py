"""media items (photos and videos)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Kept here (not imported from models.media): a migration must not change when the model module does.
PURGE_TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION media_items_purge_objects() RETURNS trigger AS $$
BEGIN
    INSERT INTO media_purges (prefix) VALUES (OLD.prefix);
    RETURN OLD;
END
$$ LANGUAGE plpgsql
"""
PURGE_TRIGGER = """
CREATE TRIGGER media_items_purge_objects AFTER DELETE ON media_items
FOR EACH ROW EXECUTE FUNCTION media_items_purge_objects()
"""


def upgrade() -> None:
    op.create_table(
        "media_items",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("user_id", sa.BigInteger(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("state", sa.String(12), server_default="pending", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("attach_type", sa.String(8), nullable=True),
        sa.Column("activity_id", sa.BigInteger(), sa.ForeignKey("activities.id", ondelete="CASCADE"), nullable=True),
        sa.Column("post_id", sa.BigInteger(), sa.ForeignKey("posts.id", ondelete="CASCADE"), nullable=True),
        sa.Column("message_id", sa.BigInteger(), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=True),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("prefix", sa.String(128), nullable=False, unique=True),
        sa.Column("original_key", sa.String(160), nullable=False),
        sa.Column("multipart_upload_id", sa.String(1024), nullable=True),
        sa.Column("etag", sa.String(128), nullable=True),
        sa.Column("renditions", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("blurhash", sa.String(64), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("capture_lat", sa.Float(), nullable=True),
        sa.Column("capture_lng", sa.Float(), nullable=True),
        sa.Column("transcode_job_id", sa.String(128), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('photo', 'video')", name="kind"),
        sa.CheckConstraint("state IN ('pending', 'uploaded', 'processing', 'ready', 'failed')", name="state"),
        sa.CheckConstraint("attach_type IS NULL OR attach_type IN ('activity', 'post', 'message', 'avatar')",
                           name="attach_type"),
        sa.CheckConstraint("(activity_id IS NOT NULL)::int + (post_id IS NOT NULL)::int "
                           "+ (message_id IS NOT NULL)::int <= 1", name="one_parent"),
        sa.CheckConstraint("size_bytes > 0", name="size_positive"),
    )
    op.create_index("ix_media_items_activity", "media_items", ["activity_id", "position", "id"],
                    postgresql_where=sa.text("activity_id IS NOT NULL"))
    op.create_index("ix_media_items_post", "media_items", ["post_id", "position", "id"],
                    postgresql_where=sa.text("post_id IS NOT NULL"))
    op.create_index("ix_media_items_message", "media_items", ["message_id", "position", "id"],
                    postgresql_where=sa.text("message_id IS NOT NULL"))
    op.create_index("ix_media_items_user_created", "media_items", ["user_id", "created_at"])
    op.create_index("ix_media_items_state_updated", "media_items", ["state", "updated_at"])
    op.create_table(
        "media_events",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("bucket", sa.String(255), nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("etag", sa.String(128), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("bucket", "key", "etag", name="uq_media_events_object"),
    )
    op.create_table(
        "media_purges",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("prefix", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_media_purges_created", "media_purges", ["created_at"])
    op.execute(PURGE_TRIGGER_FUNCTION)
    op.execute(PURGE_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS media_items_purge_objects ON media_items")
    op.execute("DROP FUNCTION IF EXISTS media_items_purge_objects()")
    op.drop_table("media_purges")
    op.drop_table("media_events")
    op.drop_table("media_items")
