"""live workout sessions and their points

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_sessions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("sport_type", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=255), server_default="", nullable=False),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=8), server_default="live", nullable=False),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_point_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_point_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_point_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("point_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("distance_m", sa.Float(), server_default="0", nullable=False),
        sa.Column("along_m", sa.Float(), server_default="0", nullable=False),
        sa.Column("public_distance_m", sa.Float(), server_default="0", nullable=False),
        sa.Column("last_lat", sa.Float(), nullable=True),
        sa.Column("last_lng", sa.Float(), nullable=True),
        sa.Column("last_hr", sa.SmallInteger(), nullable=True),
        sa.Column("last_visible", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("privacy_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("upload_id", sa.BigInteger(), nullable=True),
        sa.Column("activity_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('live', 'ended')", name=op.f("ck_live_sessions_status")),
        sa.CheckConstraint("visibility IN ('everyone', 'followers', 'only_me')",
                           name=op.f("ck_live_sessions_visibility")),
        sa.CheckConstraint(
            "sport_type IN ('running', 'cycling', 'swimming', 'walking', 'hiking', 'strength', 'other')",
            name=op.f("ck_live_sessions_sport_type")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_live_sessions_user_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["upload_id"], ["uploads.id"], name=op.f("fk_live_sessions_upload_id_uploads"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["activity_id"], ["activities.id"],
                                name=op.f("fk_live_sessions_activity_id_activities"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_sessions")),
    )
    op.create_index("uq_live_sessions_user_live", "live_sessions", ["user_id"], unique=True,
                    postgresql_where=sa.text("status = 'live'"))
    op.create_index("ix_live_sessions_user_started", "live_sessions", ["user_id", "started_at"], unique=False)
    op.create_index("ix_live_sessions_live_last", "live_sessions", ["last_point_at"], unique=False,
                    postgresql_where=sa.text("status = 'live'"))
    op.create_table(
        "live_points",
        sa.Column("session_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lng", sa.Float(), nullable=True),
        sa.Column("ele", sa.REAL(), nullable=True),
        sa.Column("hr", sa.SmallInteger(), nullable=True),
        sa.Column("cadence", sa.SmallInteger(), nullable=True),
        sa.Column("power", sa.SmallInteger(), nullable=True),
        sa.Column("distance_m", sa.REAL(), nullable=True),
        sa.Column("along_m", sa.Float(), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["live_sessions.id"],
                                name=op.f("fk_live_points_session_id_live_sessions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id", "seq", name=op.f("pk_live_points")),
    )


def downgrade() -> None:
    op.drop_table("live_points")
    op.drop_index("ix_live_sessions_live_last", table_name="live_sessions",
                  postgresql_where=sa.text("status = 'live'"))
    op.drop_index("ix_live_sessions_user_started", table_name="live_sessions")
    op.drop_index("uq_live_sessions_user_live", table_name="live_sessions",
                  postgresql_where=sa.text("status = 'live'"))
    op.drop_table("live_sessions")
