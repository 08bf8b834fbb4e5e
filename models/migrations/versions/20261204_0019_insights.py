"""insights: training settings, per-activity loads, the daily fitness series, planned workouts, weekly summaries
and insight cards

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _user() -> sa.Column:
    return sa.Column("user_id", sa.BigInteger(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "training_settings",
        sa.Column("user_id", sa.BigInteger(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("max_hr", sa.SmallInteger()), sa.Column("resting_hr", sa.SmallInteger()),
        sa.Column("threshold_hr", sa.SmallInteger()), sa.Column("ftp_w", sa.SmallInteger()),
        sa.Column("summary_weekday", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("summary_time", sa.String(5), nullable=False, server_default="08:00"),
        sa.Column("next_summary_at", TZ), sa.Column("series_stale_from", sa.Date()), sa.Column("stale_since", TZ),
        sa.CheckConstraint("max_hr IS NULL OR max_hr BETWEEN 100 AND 240", name="max_hr"),
        sa.CheckConstraint("resting_hr IS NULL OR resting_hr BETWEEN 25 AND 120", name="resting_hr"),
        sa.CheckConstraint("threshold_hr IS NULL OR threshold_hr BETWEEN 80 AND 230", name="threshold_hr"),
        sa.CheckConstraint("ftp_w IS NULL OR ftp_w BETWEEN 30 AND 700", name="ftp_w"),
        sa.CheckConstraint("summary_weekday BETWEEN 0 AND 6", name="summary_weekday"),
    )
    op.create_index("ix_training_settings_next_summary", "training_settings", ["next_summary_at"])
    op.create_index("ix_training_settings_stale", "training_settings", ["stale_since"],
                    postgresql_where=sa.text("stale_since IS NOT NULL"))
    op.create_table(
        "activity_loads",
        sa.Column("activity_id", sa.BigInteger(), sa.ForeignKey("activities.id", ondelete="CASCADE"),
                  primary_key=True),
        _user(), sa.Column("day", sa.Date(), nullable=False), sa.Column("load", sa.Float(), nullable=False),
        sa.Column("method", sa.String(16), nullable=False), sa.Column("trimp", sa.Float()),
        sa.Column("hrss", sa.Float()), sa.Column("power_tss", sa.Float()), sa.Column("srpe", sa.Float()),
        sa.Column("hr_zones", postgresql.JSONB()), sa.Column("zone_bounds", postgresql.JSONB()),
        sa.Column("energy_kcal", sa.Float()), sa.Column("energy_method", sa.String(32)),
        sa.Column("computed_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_activity_loads_user_day", "activity_loads", ["user_id", "day"])
    op.create_table(
        "training_days",
        sa.Column("user_id", sa.BigInteger(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        *[sa.Column(c, sa.Float(), nullable=False) for c in ("load", "fitness", "fatigue", "form")],
        *[sa.Column(c, sa.Float()) for c in ("ramp", "acwr", "monotony", "strain")],
    )
    op.create_table(
        "planned_workouts",
        sa.Column("id", sa.BigInteger(), primary_key=True), _user(),
        sa.Column("sport_type", sa.String(16), nullable=False), sa.Column("planned_at", TZ, nullable=False),
        sa.Column("duration_s", sa.Integer()), sa.Column("distance_m", sa.Float()),
        sa.Column("notes", sa.Text(), nullable=False, server_default=""),
        sa.Column("remind_before_min", sa.Integer()), sa.Column("remind_at", TZ), sa.Column("reminded_at", TZ),
        sa.Column("completed_activity_id", sa.BigInteger(), sa.ForeignKey("activities.id", ondelete="SET NULL")),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("remind_before_min IS NULL OR remind_before_min BETWEEN 0 AND 10080",
                           name="remind_before"),
        sa.CheckConstraint("duration_s IS NULL OR duration_s > 0", name="duration"),
        sa.CheckConstraint("distance_m IS NULL OR distance_m > 0", name="distance"),
    )
    op.create_index("ix_planned_workouts_user_planned", "planned_workouts", ["user_id", "planned_at", "id"])
    op.create_index("ix_planned_workouts_due", "planned_workouts", ["remind_at"],
                    postgresql_where=sa.text("reminded_at IS NULL"))
    op.create_table(
        "weekly_summaries",
        sa.Column("id", sa.BigInteger(), primary_key=True), _user(),
        sa.Column("week_start", sa.Date(), nullable=False), sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("totals", postgresql.JSONB(), nullable=False), sa.Column("body", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("user_id", "week_start", name="uq_weekly_summaries_user_week"),
    )
    op.create_table(
        "insights",
        sa.Column("id", sa.BigInteger(), primary_key=True), _user(),
        sa.Column("kind", sa.String(32), nullable=False), sa.Column("key", sa.String(160), nullable=False),
        sa.Column("title", sa.String(200), nullable=False), sa.Column("body", sa.Text(), nullable=False),
        sa.Column("evidence", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("dismissed_at", TZ),
        sa.UniqueConstraint("user_id", "key", name="uq_insights_user_key"),
    )
    op.create_index("ix_insights_user_created", "insights", ["user_id", "created_at", "id"])


def downgrade() -> None:
    for table in ("insights", "weekly_summaries", "planned_workouts", "training_days", "activity_loads",
                  "training_settings"):
        op.drop_table(table)
