"""segment_efforts.on_boards: segment counts that leave out athletes nobody else may see

``segments.effort_count`` and ``athlete_count`` are shown to everyone, so they count only the efforts the public
boards hold (an activity visible to everyone, of a public account, of an athlete on the boards, not starting or
ending in a hidden part). ``on_boards`` records that per effort: set when the effort is stored, brought up to
date when the segment's boards are rebuilt after a change (which also recounts the segment exactly).

The counts stay incremental on the hot path: statement-level triggers with transition tables, so a multi-row
insert (re-matching a segment against thousands of activities) counts each athlete once; the row trigger of
0004 saw the whole statement's rows from every row and counted a new athlete once per effort.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Per (segment, athlete) pair touched by the statement: the efforts it adds or removes, and whether the athlete
# had any effort on the boards before it and has one after it.
FUNCTIONS = """
CREATE FUNCTION segment_counts_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE segments s SET effort_count = s.effort_count + d.efforts, athlete_count = s.athlete_count + d.athletes
  FROM (SELECT p.segment_id, sum(p.n) AS efforts, count(*) FILTER (WHERE NOT EXISTS (
          SELECT 1 FROM segment_efforts e WHERE e.segment_id = p.segment_id AND e.user_id = p.user_id
            AND e.on_boards AND NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = e.id))) AS athletes
        FROM (SELECT segment_id, user_id, count(*) AS n FROM new_rows WHERE on_boards
              GROUP BY segment_id, user_id) p
        GROUP BY p.segment_id) d
  WHERE s.id = d.segment_id;
  RETURN NULL;
END $$;

CREATE FUNCTION segment_counts_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE segments s SET effort_count = s.effort_count - d.efforts, athlete_count = s.athlete_count - d.athletes
  FROM (SELECT p.segment_id, sum(p.n) AS efforts, count(*) FILTER (WHERE NOT EXISTS (
          SELECT 1 FROM segment_efforts e WHERE e.segment_id = p.segment_id AND e.user_id = p.user_id
            AND e.on_boards)) AS athletes
        FROM (SELECT segment_id, user_id, count(*) AS n FROM old_rows WHERE on_boards
              GROUP BY segment_id, user_id) p
        GROUP BY p.segment_id) d
  WHERE s.id = d.segment_id;
  RETURN NULL;
END $$;

CREATE TRIGGER segment_counts_insert AFTER INSERT ON segment_efforts REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION segment_counts_after_insert();
CREATE TRIGGER segment_counts_delete AFTER DELETE ON segment_efforts REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION segment_counts_after_delete();
"""

OLD_FUNCTION = """
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


def _recount(where: str) -> None:
    op.execute(f"""
        UPDATE segments s SET effort_count = coalesce(c.efforts, 0), athlete_count = coalesce(c.athletes, 0)
        FROM segments s2 LEFT JOIN (SELECT segment_id, count(*) AS efforts, count(DISTINCT user_id) AS athletes
                                    FROM segment_efforts WHERE {where} GROUP BY segment_id) c
          ON c.segment_id = s2.id
        WHERE s.id = s2.id""")


def upgrade() -> None:
    op.add_column("segment_efforts", sa.Column("on_boards", sa.Boolean(), nullable=False,
                                               server_default=sa.false()))
    # The boards' rule (domain.segments.efforts.on_boards_sql) as it stands at this revision.
    op.execute("""
        UPDATE segment_efforts e SET on_boards = true
        FROM activities a, users u, user_preferences p
        WHERE a.id = e.activity_id AND u.id = e.user_id AND p.user_id = e.user_id
          AND NOT e.hidden_by_privacy AND NOT p.hide_from_leaderboards
          AND a.visibility = 'everyone' AND NOT u.is_private""")
    op.create_index("ix_segment_efforts_on_boards", "segment_efforts", ["segment_id", "user_id"],
                    postgresql_where=sa.text("on_boards"))
    op.execute("DROP TRIGGER IF EXISTS segment_effort_counts ON segment_efforts")
    op.execute("DROP FUNCTION IF EXISTS segment_effort_counts()")
    op.execute(FUNCTIONS)
    _recount("on_boards")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS segment_counts_insert ON segment_efforts")
    op.execute("DROP TRIGGER IF EXISTS segment_counts_delete ON segment_efforts")
    op.execute("DROP FUNCTION IF EXISTS segment_counts_after_insert()")
    op.execute("DROP FUNCTION IF EXISTS segment_counts_after_delete()")
    op.execute(OLD_FUNCTION)
    op.drop_index("ix_segment_efforts_on_boards", table_name="segment_efforts")
    op.drop_column("segment_efforts", "on_boards")
    _recount("true")
