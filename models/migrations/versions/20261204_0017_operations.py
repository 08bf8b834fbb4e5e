"""operations: the ledger of periodic job runs (models.beat)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "beat_runs",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("job", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_beat_runs_job_started", "beat_runs", ["job", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_beat_runs_job_started", table_name="beat_runs")
    op.drop_table("beat_runs")
