"""gear and the fuller sport list (trail run, virtual ride, e-bike, rowing, kayaking, skiing, yoga, …)

Gear: shoes and bikes per athlete (``gear``), and the gear an activity used (``activities.gear_id``). Every
``sport_type`` column's CHECK constraint takes the new sports. The lists are written out here (a migration
must not change when the models do later).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

OLD = ("running", "cycling", "swimming", "walking", "hiking", "strength", "other")
NEW = ("running", "trail_running", "virtual_run", "cycling", "mountain_biking", "gravel_ride", "e_bike_ride",
       "virtual_ride", "swimming", "walking", "hiking", "rowing", "kayaking", "canoeing", "paddleboarding",
       "alpine_skiing", "nordic_skiing", "backcountry_ski", "snowboarding", "snowshoeing", "strength", "yoga",
       "workout", "elliptical", "other")
TABLES = ("activities", "segments", "live_sessions")


def _check(sports: tuple[str, ...]) -> str:
    return "sport_type IN (" + ", ".join(f"'{sport}'" for sport in sports) + ")"


def _replace(sports: tuple[str, ...]) -> None:
    for table in TABLES:
        op.drop_constraint(op.f(f"ck_{table}_sport_type"), table, type_="check")
        op.create_check_constraint(op.f(f"ck_{table}_sport_type"), table, _check(sports))


def upgrade() -> None:
    _replace(NEW)
    op.create_table(
        "gear",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("brand", sa.String(length=80), nullable=True),
        sa.Column("model", sa.String(length=80), nullable=True),
        sa.Column("retired", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("default_sport_types", postgresql.JSONB(astext_type=sa.Text()), server_default="[]",
                  nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('shoes', 'bike')", name=op.f("ck_gear_kind")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_gear_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gear")),
    )
    op.create_index("ix_gear_user_id", "gear", ["user_id"])
    op.add_column("activities", sa.Column("gear_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(op.f("fk_activities_gear_id_gear"), "activities", "gear", ["gear_id"], ["id"],
                          ondelete="SET NULL")
    op.create_index("ix_activities_gear_id", "activities", ["gear_id"], postgresql_where=sa.text("gear_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_activities_gear_id", table_name="activities")
    op.drop_constraint(op.f("fk_activities_gear_id_gear"), "activities", type_="foreignkey")
    op.drop_column("activities", "gear_id")
    op.drop_index("ix_gear_user_id", table_name="gear")
    op.drop_table("gear")
    # Rows of the new sports cannot stay under the old constraint: they become "other", as an unknown file
    # label does.
    for table in TABLES:
        op.execute(f"UPDATE {table} SET sport_type = 'other' WHERE NOT ({_check(OLD)})")
    _replace(OLD)
