"""prepared segment geometry and ingest speed

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Filled when a segment is created, and for older rows by `flask segments-prepare`; NULL is read as
    # "prepare from the path", so the column can arrive before its values.
    op.add_column("segments", sa.Column("prepared", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("segments", "prepared")
