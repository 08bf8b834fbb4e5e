"""pending loads: an activity's load stored by ingest waits, flagged, for the refresh that puts it in the series

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("activity_loads", sa.Column("pending", sa.Boolean(), nullable=False, server_default=sa.false()))
    # The refresh takes an athlete's pending loads: a small partial index (rows are pending for seconds).
    op.create_index("ix_activity_loads_pending", "activity_loads", ["user_id"], postgresql_where=sa.text("pending"))


def downgrade() -> None:
    op.drop_index("ix_activity_loads_pending", table_name="activity_loads")
    op.drop_column("activity_loads", "pending")
