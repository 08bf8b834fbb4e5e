"""segments: boards_stale_since, the durable record that a segment's leaderboards need rebuilding

A change that affects a board (an activity's visibility, a deletion, privacy or leaderboard preferences) marks
the segments it touches in the same transaction; the rebuild clears the mark. A rebuild message lost on the way
(broker down at send time) leaves the mark, and the beat sweeper sends the rebuild again.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 11:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("segments", sa.Column("boards_stale_since", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_segments_boards_stale", "segments", ["boards_stale_since"],
                    postgresql_where=sa.text("boards_stale_since IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_segments_boards_stale", table_name="segments")
    op.drop_column("segments", "boards_stale_since")
