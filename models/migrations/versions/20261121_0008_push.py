"""devices and push deliveries

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("token", sa.String(length=1024), nullable=False),
        sa.Column("platform", sa.String(length=8), nullable=False),
        sa.Column("app_version", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("platform IN ('ios', 'android', 'web')", name=op.f("ck_devices_platform")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_devices_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
    )
    op.create_index("uq_devices_token", "devices", ["token"], unique=True)
    op.create_index("ix_devices_user_id", "devices", ["user_id"])

    op.create_table(
        "push_deliveries",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("notification_id", sa.BigInteger(), nullable=False),
        sa.Column("device_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("content", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("fcm_message_id", sa.String(length=200), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed', 'skipped')",
                           name=op.f("ck_push_deliveries_status")),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name=op.f("fk_push_deliveries_device_id_devices"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"],
                                name=op.f("fk_push_deliveries_notification_id_notifications"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_push_deliveries_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_deliveries")),
    )
    op.create_index("uq_push_deliveries_notification_device", "push_deliveries", ["notification_id", "device_id"],
                    unique=True)
    op.create_index("ix_push_deliveries_device_id", "push_deliveries", ["device_id"])
    op.create_index("ix_push_deliveries_open", "push_deliveries", ["user_id"],
                    postgresql_where=sa.text("status IN ('pending', 'sending')"))
    op.create_index("ix_push_deliveries_created_at", "push_deliveries", ["created_at"])
    # The sweeper looks for rows the push stage has not handled yet, oldest first.
    op.create_index("ix_notifications_undelivered_created_at", "notifications", ["created_at"],
                    postgresql_where=sa.text("delivered_at IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_notifications_undelivered_created_at", table_name="notifications")
    op.drop_table("push_deliveries")
    op.drop_table("devices")
