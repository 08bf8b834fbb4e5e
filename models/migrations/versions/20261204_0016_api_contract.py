"""the fuller sport list (trail run, virtual ride, e-bike, rowing, kayaking, skiing, yoga, …)

Every ``sport_type`` column's CHECK constraint takes the new sports. The lists are written out here (a migration
must not change when the models do later).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 12:30:00
"""

from __future__ import annotations

from alembic import op

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


def downgrade() -> None:
    # Rows of the new sports cannot stay under the old constraint: they become "other", as an unknown file
    # label does.
    for table in TABLES:
        op.execute(f"UPDATE {table} SET sport_type = 'other' WHERE NOT ({_check(OLD)})")
    _replace(OLD)
