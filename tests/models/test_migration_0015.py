"""Revision 0015 backfills the time zone and local start of activities stored before it."""

from __future__ import annotations

import importlib.util
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

VERSIONS = Path(__file__).resolve().parents[2] / "models" / "migrations" / "versions"


def _revision():
    path = next(VERSIONS.glob("*_0015_*.py"))
    spec = importlib.util.spec_from_file_location("revision_0015", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_backfill_from_the_start_position_else_the_profile(db_tx: sa.Connection) -> None:
    uid = db_tx.execute(sa.text("INSERT INTO users (firebase_uid) VALUES ('m15') RETURNING id")).scalar_one()
    db_tx.execute(sa.text("INSERT INTO user_preferences (user_id, timezone, notifications) "
                          "VALUES (:u, 'America/Chicago', '{}')"), {"u": uid})
    lone = db_tx.execute(sa.text("INSERT INTO users (firebase_uid) VALUES ('m15b') RETURNING id")).scalar_one()
    insert = sa.text(
        "INSERT INTO activities (user_id, name, sport_type, visibility, start_time, start_lat, start_lng, "
        "distance_m, elapsed_time_s, moving_time_s, details, has_gps, point_count) VALUES "
        "(:u, 'x', 'running', 'everyone', :t, :lat, :lng, 0, 0, 0, '{}', false, 0) RETURNING id")
    t = datetime.fromisoformat("2026-07-01T05:00:00+00:00")
    paris = db_tx.execute(insert, {"u": uid, "t": t, "lat": 48.8566, "lng": 2.3522}).scalar_one()
    indoor = db_tx.execute(insert, {"u": uid, "t": t, "lat": None, "lng": None}).scalar_one()
    nowhere = db_tx.execute(insert, {"u": lone, "t": t, "lat": None, "lng": None}).scalar_one()
    db_tx.execute(sa.text("UPDATE activities SET timezone = NULL, start_date_local = NULL WHERE id IN (:a, :b, :c)"),
                  {"a": paris, "b": indoor, "c": nowhere})
    with Operations.context(MigrationContext.configure(db_tx)):
        _revision()._backfill()
    rows = {r.id: r for r in db_tx.execute(sa.text(
        "SELECT id, timezone, start_date_local FROM activities WHERE id IN (:a, :b, :c)"),
        {"a": paris, "b": indoor, "c": nowhere})}
    assert (rows[paris].timezone, rows[paris].start_date_local) == ("Europe/Paris", datetime(2026, 7, 1, 7, 0))
    assert (rows[indoor].timezone, rows[indoor].start_date_local) == ("America/Chicago", datetime(2026, 7, 1, 0, 0))
    assert (rows[nowhere].timezone, rows[nowhere].start_date_local) == ("UTC", datetime(2026, 7, 1, 5, 0))
