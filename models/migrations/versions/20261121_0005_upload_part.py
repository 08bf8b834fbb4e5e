"""uploads.part: which workout of a multi-workout file (an Apple Health export) an upload is

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 01:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("uploads", sa.Column("part", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("uploads", "part")
