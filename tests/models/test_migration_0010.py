"""Revision 0010 redraws privacy zones stored under the old, small displacement (docs/privacy.md)."""

from __future__ import annotations

import importlib.util
import secrets
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from domain.algorithms.geo import haversine_m
from domain.algorithms.privacy import PERSISTENT_OFFSET_MAX, PERSISTENT_OFFSET_MIN

VERSIONS = Path(__file__).resolve().parents[2] / "models" / "migrations" / "versions"


def _revision() -> ModuleType:
    path = next(VERSIONS.glob("*_0010_*.py"))
    spec = importlib.util.spec_from_file_location("revision_0010", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _upgrade(connection: sa.Connection, module: ModuleType) -> None:
    with Operations.context(MigrationContext.configure(connection)):
        module.upgrade()


def test_legacy_zones_are_redrawn_and_their_owners_views_made_stale(db_tx: sa.Connection) -> None:
    module = _revision()
    assert (module.OFFSET_MIN, module.OFFSET_MAX) == (PERSISTENT_OFFSET_MIN, PERSISTENT_OFFSET_MAX)
    uid = db_tx.execute(sa.text("INSERT INTO users (firebase_uid, privacy_version) VALUES ('m10', 3) "
                                "RETURNING id")).scalar_one()
    # A zone stored by the old rule: displaced by 0.1 r.
    zid = db_tx.execute(sa.text(
        "INSERT INTO privacy_zones (user_id, lat, lng, radius_m, hidden_lat, hidden_lng, hidden_radius_m) "
        "VALUES (:u, 46.05, 14.5, 400, 46.05036, 14.5, 441) RETURNING id"), {"u": uid}).scalar_one()
    _upgrade(db_tx, module)
    z = db_tx.execute(sa.text("SELECT * FROM privacy_zones WHERE id = :id"), {"id": zid}).one()
    shift = float(haversine_m(46.05, 14.5, z.hidden_lat, z.hidden_lng))
    assert PERSISTENT_OFFSET_MIN * 400 - 1 <= shift <= PERSISTENT_OFFSET_MAX * 400 + 1
    assert z.hidden_radius_m >= 400 + shift  # still contains the athlete's disc
    version = "SELECT privacy_version FROM users WHERE id = :id"
    assert db_tx.execute(sa.text(version), {"id": uid}).scalar_one() == 4
    _upgrade(db_tx, module)  # running again changes nothing: the zone is already drawn under the new rule
    again = db_tx.execute(sa.text("SELECT * FROM privacy_zones WHERE id = :id"), {"id": zid}).one()
    assert (again.hidden_lat, again.hidden_lng, again.hidden_radius_m) == (z.hidden_lat, z.hidden_lng,
                                                                            z.hidden_radius_m)
    assert db_tx.execute(sa.text(version), {"id": uid}).scalar_one() == 4


def test_redraw_contains_the_athletes_disc_anywhere() -> None:
    module = _revision()
    rng = secrets.SystemRandom()
    for lat, lng in [(46.05, 14.5), (89.99, 10.0), (-89.5, -170.0), (0.0, 179.999), (10.0, -180.0)]:
        for _ in range(100):
            hlat, hlng, hradius = module.redraw(lat, lng, 1600.0, rng)
            assert hradius >= 1600.0 + float(haversine_m(lat, lng, hlat, hlng))
