from __future__ import annotations

import pytest

from config import DEFAULT_SECRET_KEY, ConfigError, load_config, normalize_database_url

SAFE_PROD = {
    "SECRET_KEY": "s3cret-from-vault", "PRIVACY_SECRET": "another-secret", "FLOWER_BASIC_AUTH": "ops:long-pass",
    "FIREBASE_PROJECT_ID": "strava-plus-one-prod",
}


def test_everything_comes_from_the_environment():
    cfg = load_config("development", {
        "DATABASE_URL": "postgres://u:p@db:5432/x", "REDIS_URL": "redis://r:6379/3", "PORT": "9000",
        "CELERY_BROKER_URL": "redis://broker:6379/0", "STORAGE_BACKEND": "s3", "S3_BUCKET": "b",
        "FIREBASE_PROJECT_ID": "p", "FIREBASE_AUTH_EMULATOR_HOST": "localhost:9099",
    })
    assert cfg.DATABASE_URL == "postgresql+psycopg2://u:p@db:5432/x"
    assert cfg.REDIS_URL == "redis://r:6379/3" and cfg.PUBSUB_REDIS_URL == "redis://r:6379/3"
    assert cfg.CELERY["broker_url"] == "redis://broker:6379/0"
    assert cfg.CELERY["result_backend"] == "redis://r:6379/3"
    assert cfg.PORT == 9000 and cfg.STORAGE_BACKEND == "s3" and cfg.S3_BUCKET == "b"
    assert cfg.FIREBASE_AUTH_EMULATOR_HOST == "localhost:9099"


def test_development_defaults_to_emulator_mode_testing_does_not():
    assert load_config("development", {}).FIREBASE_AUTH_EMULATOR_HOST
    assert load_config("testing", {}).FIREBASE_AUTH_EMULATOR_HOST == ""


def test_celery_settings_are_deliberate():
    celery = load_config("development", {}).CELERY
    assert celery["task_acks_late"] and celery["task_reject_on_worker_lost"]
    assert celery["task_serializer"] == "json" and celery["accept_content"] == ["json"]
    assert celery["broker_transport_options"]["visibility_timeout"] > celery["task_time_limit"]
    assert celery["task_routes"]["pipeline.*"] == {"queue": "pipeline"}
    assert {"heartbeat", "sweep-stuck-uploads"} <= set(celery["beat_schedule"])


def test_production_accepts_safe_settings():
    assert load_config("production", SAFE_PROD).APP_ENV == "production"


@pytest.mark.parametrize("unsafe, needle", [
    ({"FIREBASE_AUTH_EMULATOR_HOST": "localhost:9099"}, "EMULATOR"),
    ({"FLASK_DEBUG": "1"}, "debug"),
    ({"SECRET_KEY": DEFAULT_SECRET_KEY}, "SECRET_KEY"),
    ({"PRIVACY_SECRET": "dev-privacy-secret-change-me"}, "PRIVACY_SECRET"),
    ({"FLOWER_BASIC_AUTH": "admin:admin"}, "FLOWER"),
    ({"FIREBASE_CERTS_URL": "http://127.0.0.1/certs"}, "CERTS"),
    ({"FCM_ENDPOINT": "http://127.0.0.1:9/"}, "FCM_ENDPOINT"),
])
def test_production_refuses_unsafe_settings(unsafe, needle):
    with pytest.raises(ConfigError, match=needle):
        load_config("production", {**SAFE_PROD, **unsafe})


def test_production_refuses_missing_secrets():
    with pytest.raises(ConfigError):
        load_config("production", {})


def test_unknown_environment():
    with pytest.raises(ConfigError):
        load_config("staging", {})


def test_normalize_database_url():
    assert normalize_database_url("postgresql://a/b") == "postgresql+psycopg2://a/b"
    assert normalize_database_url("postgresql+psycopg2://a/b") == "postgresql+psycopg2://a/b"
