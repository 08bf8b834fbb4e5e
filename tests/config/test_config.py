from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from config import DEFAULT_SECRET_KEY, ConfigError, load_config, normalize_database_url
from tests.support.processes import exit_of

EMULATOR = {"FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099"}
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


def test_emulator_mode_is_an_explicit_opt_in_in_every_environment():
    # Unsigned tokens are accepted only where someone asked for it (make run does, for itself).
    for name in ("development", "testing"):
        assert load_config(name, {}).FIREBASE_AUTH_EMULATOR_HOST == ""
    assert load_config("development", EMULATOR).FIREBASE_AUTH_EMULATOR_HOST == "127.0.0.1:9099"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.20", "api.example.com"])
def test_emulator_mode_is_refused_unless_the_server_listens_on_loopback_only(host):
    with pytest.raises(ConfigError, match="loopback"):
        load_config("development", {**EMULATOR, "WEB_BIND_HOST": host})


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_emulator_mode_on_a_loopback_bind_is_accepted(host):
    assert host == load_config("development", {**EMULATOR, "WEB_BIND_HOST": host}).WEB_BIND_HOST


def test_a_container_published_on_loopback_only_may_say_so():
    # docker-compose's development setup: the container listens on all its interfaces, the host publishes the
    # port on 127.0.0.1 only, which the app cannot see for itself.
    env = {**EMULATOR, "WEB_BIND_HOST": "0.0.0.0"}
    with pytest.raises(ConfigError, match="WEB_PUBLISHED_ON_LOOPBACK"):
        load_config("development", env)
    assert load_config("development", {**env, "WEB_PUBLISHED_ON_LOOPBACK": "1"}).FIREBASE_AUTH_EMULATOR_HOST


def test_development_listens_on_loopback_production_on_every_interface():
    assert load_config("development", {}).WEB_BIND_HOST == "127.0.0.1"
    assert load_config("production", SAFE_PROD).WEB_BIND_HOST == "0.0.0.0"


def test_gunicorn_listeners_are_checked_too():
    # `gunicorn -b 0.0.0.0:8000` overrides WEB_BIND_HOST on the command line: the hook checks what will listen.
    cfg = load_config("development", EMULATOR)
    cfg.check_listeners([("127.0.0.1", 8000), "/run/app.sock"])
    for address in (("0.0.0.0", 8000), ("", 8000), 3):
        with pytest.raises(ConfigError, match="loopback"):
            cfg.check_listeners([("127.0.0.1", 8000), address])
    load_config("development", {}).check_listeners([("0.0.0.0", 8000)])  # no emulator mode: any bind


def test_gunicorn_stops_before_listening_when_emulator_mode_meets_a_public_bind(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k not in {"WEB_BIND_HOST", "WEB_PUBLISHED_ON_LOOPBACK"}}
    env.update(APP_ENV="development", FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:9099", STACK_DATA_DIR=str(tmp_path))
    cmd = [str(Path(sys.executable).parent / "gunicorn"), "--config", "python:config.gunicorn", "--bind",
           "0.0.0.0:0", "--workers", "1", "webapp:create_app()"]
    code, err = exit_of(cmd, env, 30, "gunicorn started serving with emulator auth on 0.0.0.0")
    assert code == 1
    assert "Error: refusing to start in development" in err and "loopback" in err


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
    # Even on loopback and even when the deployment says it is published on loopback only.
    ({**EMULATOR, "WEB_BIND_HOST": "127.0.0.1", "WEB_PUBLISHED_ON_LOOPBACK": "1"}, "EMULATOR"),
    ({"SECRET_KEY": ""}, "SECRET_KEY"),
    ({"PRIVACY_SECRET": ""}, "PRIVACY_SECRET"),
    ({"FLOWER_BASIC_AUTH": ""}, "FLOWER"),
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


# The variable of a setting whose name differs from the attribute (Flask's own name; the one operators know).
ENV_NAMES = {"DEBUG": "FLASK_DEBUG", "MAX_CONTENT_LENGTH": "MAX_UPLOAD_BYTES"}
# Decided by APP_ENV itself (which picks the class): Flask's testing mode is never switched on by another variable.
BY_APP_ENV = {"APP_ENV", "TESTING"}


def _another(value: Any) -> tuple[Any, str]:
    """A value of the setting's type that differs from ``value``, and how the environment spells it."""
    if isinstance(value, bool):
        return not value, "1" if not value else "0"
    if isinstance(value, int):
        return value + 7, str(value + 7)
    if isinstance(value, float):
        return value + 0.5, str(value + 0.5)
    if isinstance(value, str) or value is None:
        other = (value or "") + "-overridden"
        return other, other
    if isinstance(value, dict):
        other_dict = {"overridden": [1, 2.5, "x"]}
        return other_dict, json.dumps(other_dict)
    if isinstance(value, list):
        other_list = [*value, "overridden"]
        return other_list, json.dumps(other_list)
    raise AssertionError(f"no environment form for {type(value).__name__}")


def test_every_setting_is_loadable_from_the_environment():
    defaults = load_config("development", {})
    checked = 0
    for attr, default in defaults.as_dict().items():
        if attr in BY_APP_ENV:
            continue
        if attr == "CELERY":  # one variable per Celery setting: CELERY_<NAME>
            for key, celery_default in default.items():
                want, raw = _another(celery_default)
                got = load_config("development", {f"CELERY_{key.upper()}": raw}).CELERY[key]
                assert got == want, f"CELERY_{key.upper()} does not set CELERY[{key!r}]"
                checked += 1
            continue
        name = ENV_NAMES.get(attr, attr)
        want, raw = _another(default)
        got = getattr(load_config("development", {name: raw}), attr)
        assert got == want, f"{name} does not set {attr} ({got!r} instead of {want!r})"
        checked += 1
    assert checked > 60


@pytest.mark.parametrize("name, raw", [
    ("API_SPEC_OPTIONS", "[1, 2]"), ("API_SPEC_OPTIONS", "{not json"), ("CELERY_TASK_TIME_LIMIT", "soon"),
    ("CELERY_TASK_ACKS_LATE", "maybe"), ("WEB_PUBLISHED_ON_LOOPBACK", "perhaps"),
])
def test_a_malformed_value_names_its_variable(name, raw):
    with pytest.raises(ConfigError, match=name):
        load_config("development", {name: raw})


# --- the running stack's settings (.data/stack.env, written by make run) ------------------------------------


def _write_stack_env(directory: Path, pid: int, **values: str) -> None:
    from devstack.stack import write_stack_env

    write_stack_env(directory / "stack.env", values, pid=pid)


@pytest.fixture
def process_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """This process's environment as a developer's second terminal has it: no settings, and a stack directory."""
    for key in ("APP_ENV", "DATABASE_URL", "REDIS_URL", "FIREBASE_AUTH_EMULATOR_HOST", "FCM_ENDPOINT",
                "STORAGE_LOCAL_DIR", "FIREBASE_PROJECT_ID", "FIREBASE_CERTS_URL", "WEB_BIND_HOST"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("STACK_DATA_DIR", str(tmp_path))
    return tmp_path


def test_development_commands_use_the_running_stack(process_env: Path, monkeypatch: pytest.MonkeyPatch):
    url = "postgresql+psycopg2://postgres:@/strava?host=/tmp/a dir"
    _write_stack_env(process_env, os.getpid(), DATABASE_URL=url, REDIS_URL="redis://127.0.0.1:6391/0",
                     FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:9099")
    cfg = load_config()
    assert url == cfg.DATABASE_URL and cfg.REDIS_URL == "redis://127.0.0.1:6391/0"
    assert cfg.FIREBASE_AUTH_EMULATOR_HOST == "127.0.0.1:9099"
    monkeypatch.setenv("REDIS_URL", "redis://mine:6379/2")  # what the terminal sets wins
    assert load_config().REDIS_URL == "redis://mine:6379/2"


def test_the_stack_file_is_for_development_only(process_env: Path, monkeypatch: pytest.MonkeyPatch):
    _write_stack_env(process_env, os.getpid(), DATABASE_URL="postgresql+psycopg2://x@/y",
                     FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:9099")
    for key, value in SAFE_PROD.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("APP_ENV", "production")
    assert load_config().DATABASE_URL != "postgresql+psycopg2://x@/y"  # and no emulator mode to refuse
    monkeypatch.setenv("APP_ENV", "testing")
    assert load_config().DATABASE_URL != "postgresql+psycopg2://x@/y"
    # An explicit mapping (tests, benchmarks) is all a config is built from.
    assert load_config("development", {}).DATABASE_URL != "postgresql+psycopg2://x@/y"


def test_a_stopped_stack_is_ignored(process_env: Path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    _write_stack_env(process_env, int(gone.stdout), DATABASE_URL="postgresql+psycopg2://x@/y",
                     FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:9099")
    cfg = load_config()
    assert cfg.DATABASE_URL != "postgresql+psycopg2://x@/y" and cfg.FIREBASE_AUTH_EMULATOR_HOST == ""
