"""segment effort and athlete counts kept by a trigger

Recounting a segment's efforts on every upload costs seconds on a popular segment (a million efforts);
a row trigger keeps both counts incrementally, on every path (uploads, re-matching, cascading deletes).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 01:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE FUNCTION segment_effort_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE segments SET effort_count = effort_count + 1,
      athlete_count = athlete_count + CASE WHEN EXISTS (
        SELECT 1 FROM segment_efforts WHERE user_id = NEW.user_id AND segment_id = NEW.segment_id AND id <> NEW.id)
        THEN 0 ELSE 1 END
    WHERE id = NEW.segment_id;
  ELSE
    UPDATE segments SET effort_count = effort_count - 1,
      athlete_count = athlete_count - CASE WHEN EXISTS (
        SELECT 1 FROM segment_efforts WHERE user_id = OLD.user_id AND segment_id = OLD.segment_id)
        THEN 0 ELSE 1 END
    WHERE id = OLD.segment_id;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER segment_effort_counts AFTER INSERT OR DELETE ON segment_efforts
  FOR EACH ROW EXECUTE FUNCTION segment_effort_counts();
"""


def upgrade() -> None:
    op.execute(FUNCTION)
    op.execute("""
        UPDATE segments s SET effort_count = c.efforts, athlete_count = c.athletes
        FROM (SELECT segment_id, count(*) AS efforts, count(DISTINCT user_id) AS athletes
              FROM segment_efforts GROUP BY segment_id) c
        WHERE s.id = c.segment_id
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS segment_effort_counts ON segment_efforts")
    op.execute("DROP FUNCTION IF EXISTS segment_effort_counts()")
