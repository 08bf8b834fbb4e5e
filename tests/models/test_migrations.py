"""The schema is built only by migrations; this fails when the models and the migrations drift apart."""

from __future__ import annotations

import os

from devstack.embedded import create_database, drop_database
from models import migrate
from tests.support.services import ENV_DB, database_url_for


def test_models_match_migrations(database_url):
    assert migrate.drift(database_url) == []


def test_migrations_downgrade_and_upgrade_cleanly():
    name = f"strava_migrations_{os.environ.get('STRAVA_TEST_RUN', 'x')}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    create_database(os.environ[ENV_DB], name, drop=True)
    url = database_url_for(os.environ[ENV_DB], name)
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    migrate.upgrade(url)
    assert migrate.drift(url) == []
    drop_database(os.environ[ENV_DB], name)
