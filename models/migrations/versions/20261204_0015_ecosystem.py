"""activity time zones, share links and account exports

Activities get ``timezone`` (IANA) and ``start_date_local``; rows stored before are backfilled here from their
start position (the same offline lookup ingest uses), else their athlete's profile zone. Uploads and activities
get Strava's ``trainer``/``commute`` flags; ``activity_shares`` holds public links and ``account_exports`` the
whole-account exports.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 12:30:00
"""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from alembic import op
from tzfpy import get_tz

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BATCH = 2000


def _zone(lat: float | None, lng: float | None, profile: str | None) -> str:
    # The rule of domain.algorithms.timezones.resolve_timezone, restated: a migration must not import the product
    # (it has to keep meaning what it meant when it was written).
    for name in ((get_tz(lng, lat) if lat is not None and lng is not None else None), profile, "UTC"):
        if name:
            try:
                ZoneInfo(name)
                return name
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return "UTC"


def _backfill() -> None:
    bind = op.get_bind()
    after = 0
    while True:
        rows = bind.execute(sa.text(
            "SELECT a.id, a.start_lat, a.start_lng, a.start_time, p.timezone FROM activities a "
            "LEFT JOIN user_preferences p ON p.user_id = a.user_id "
            "WHERE a.id > :after AND a.timezone IS NULL ORDER BY a.id LIMIT :n"), {"after": after, "n": BATCH}).all()
        if not rows:
            return
        values = []
        for row in rows:
            tz = _zone(row.start_lat, row.start_lng, row.timezone)
            start = row.start_time if row.start_time.tzinfo else row.start_time.replace(tzinfo=UTC)
            values.append({"id": row.id, "tz": tz, "local": start.astimezone(ZoneInfo(tz)).replace(tzinfo=None)})
        bind.execute(sa.text("UPDATE activities SET timezone = :tz, start_date_local = :local WHERE id = :id"),
                     values)
        after = rows[-1].id


def upgrade() -> None:
    op.add_column("activities", sa.Column("timezone", sa.String(length=64), nullable=True))
    op.add_column("activities", sa.Column("start_date_local", sa.DateTime(timezone=False), nullable=True))
    op.add_column("activities", sa.Column("trainer", sa.Boolean(), server_default="false", nullable=False))
    op.add_column("activities", sa.Column("commute", sa.Boolean(), server_default="false", nullable=False))
    op.add_column("uploads", sa.Column("trainer", sa.Boolean(), nullable=True))
    op.add_column("uploads", sa.Column("commute", sa.Boolean(), nullable=True))
    _backfill()

    op.create_table(
        "activity_shares",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("activity_id", sa.BigInteger(), nullable=False),
        sa.Column("share_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["activity_id"], ["activities.id"],
                                name=op.f("fk_activity_shares_activity_id_activities"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_shares")),
        sa.UniqueConstraint("share_token", name=op.f("uq_activity_shares_share_token")),
    )
    op.create_index("ix_activity_shares_activity_id", "activity_shares", ["activity_id"])
    op.create_index("uq_activity_shares_live", "activity_shares", ["activity_id"], unique=True,
                    postgresql_where=sa.text("revoked_at IS NULL"))

    op.create_table(
        "account_exports",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("storage_key", sa.String(length=255), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'ready', 'failed')", name=op.f("ck_account_exports_status")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_account_exports_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_exports")),
    )
    op.create_index("uq_account_exports_running", "account_exports", ["user_id"], unique=True,
                    postgresql_where=sa.text("status IN ('queued', 'running')"))


def downgrade() -> None:
    op.drop_table("account_exports")
    op.drop_table("activity_shares")
    for column in ("trainer", "commute"):
        op.drop_column("uploads", column)
    for column in ("commute", "trainer", "start_date_local", "timezone"):
        op.drop_column("activities", column)
