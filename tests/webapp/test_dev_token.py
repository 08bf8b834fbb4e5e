"""Emulator mode (an explicit opt-in that `make run` makes for itself): `flask dev-token EMAIL` prints only a token
that the dev stack accepts; without the opt-in, development checks real tokens like production."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.stack import write_stack_env
from tests.support.processes import exit_of
from webapp.auth import dev_token


@pytest.fixture
def emulator_app(database_url, redis_url, app):
    from webapp import create_app

    os.environ["FIREBASE_AUTH_EMULATOR_HOST"] = "127.0.0.1:9099"
    try:
        yield create_app("development", TESTING=True)
    finally:
        os.environ.pop("FIREBASE_AUTH_EMULATOR_HOST", None)
        create_app("testing")  # put the process back in signed-token mode for the other tests


def test_dev_token_is_accepted_in_emulator_mode(emulator_app, db_tx, redis_clean):
    client = emulator_app.test_client()
    token = dev_token("dev@example.com", emulator_app.config["FIREBASE_PROJECT_ID"])
    resp = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.json
    assert resp.json["email"] == "dev@example.com"
    wrong_project = dev_token("dev@example.com", "demo-other")
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {wrong_project}"}).status_code == 401


def test_emulator_mode_still_checks_expiry_audience_and_issuer(emulator_app, db_tx, redis_clean):
    """Only the signature is skipped: an expired development token gets the 401 a production client refreshes on."""
    client = emulator_app.test_client()
    project = emulator_app.config["FIREBASE_PROJECT_ID"]
    expired = dev_token("dev@example.com", project, ttl_s=-60)
    resp = client.get("/api/v1/me", headers={"Authorization": f"Bearer {expired}"})
    assert resp.status_code == 401 and resp.json["message"] == "The ID token has expired; refresh it and retry."
    assert "invalid_token" in resp.headers["WWW-Authenticate"]
    fresh = dev_token("dev@example.com", project, ttl_s=2)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_lifetime_check_allows_only_the_clock_skew():
    from firebase_admin import auth as fb_auth

    from webapp.auth import CLOCK_SKEW_S, check_lifetime

    check_lifetime({"exp": 1000, "iat": 900}, now=1000 + CLOCK_SKEW_S - 1)
    with pytest.raises(fb_auth.ExpiredIdTokenError):
        check_lifetime({"exp": 1000, "iat": 900}, now=1000 + CLOCK_SKEW_S + 1)
    with pytest.raises(fb_auth.InvalidIdTokenError):
        check_lifetime({"exp": 2000, "iat": 1100}, now=1000)  # issued in the future
    with pytest.raises(fb_auth.InvalidIdTokenError):
        check_lifetime({"iat": 900}, now=1000)


def test_an_expired_development_token_closes_the_socket_with_4401(emulator_app, committed):
    from tests.support.ws import WSServer, connect

    server = WSServer(emulator_app)
    try:
        project = emulator_app.config["FIREBASE_PROJECT_ID"]
        client = connect(server, token=dev_token("dev@example.com", project, ttl_s=-60))
        assert (client.close_code, client.close_reason) == (4401, "token expired")
        fresh = connect(server, token=dev_token("dev@example.com", project))
        assert fresh.hello is not None and fresh.close_code is None
        fresh.close()
    finally:
        server.stop()


@pytest.fixture
def development_app(database_url, redis_url, app):
    from webapp import create_app

    assert "FIREBASE_AUTH_EMULATOR_HOST" not in os.environ
    try:
        yield create_app("development", TESTING=True)
    finally:
        create_app("testing")


def test_development_without_the_opt_in_verifies_real_tokens(development_app, db_tx, redis_clean):
    assert development_app.config["FIREBASE_AUTH_EMULATOR_HOST"] == ""
    token = dev_token("dev@example.com", development_app.config["FIREBASE_PROJECT_ID"])
    resp = development_app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401


def _second_terminal(database_url: str, redis_url: str, stack_dir: Path) -> dict[str, str]:
    """A development shell beside `make run`: none of the stack's variables, its .data directory at hand."""
    drop = {"APP_ENV", "FIREBASE_CERTS_URL", "FIREBASE_PROJECT_ID", "FIREBASE_AUTH_EMULATOR_HOST"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "STACK_DATA_DIR": str(stack_dir)})
    return env


def test_dev_token_cli_prints_only_the_token(database_url, redis_url, tmp_path):
    # What `make run` leaves for the commands of another terminal (this test process stands in for the stack).
    write_stack_env(tmp_path / "stack.env", {"FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099"}, pid=os.getpid())
    env = _second_terminal(database_url, redis_url, tmp_path)
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "dev-token", "a@example.com"],
                         env=env, capture_output=True, text=True, check=True)
    token = out.stdout.strip()
    assert out.stdout.count("\n") == 1 and token.count(".") == 2
    import base64
    import json
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert payload["email"] == "a@example.com"
    assert payload["aud"] == "demo-strava-plus-one"


def test_dev_token_cli_refuses_in_development_without_a_running_stack(database_url, redis_url, tmp_path):
    env = _second_terminal(database_url, redis_url, tmp_path)
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "dev-token", "a@example.com"],
                         env=env, capture_output=True, text=True)
    assert out.returncode != 0 and out.stdout == ""
    assert "make run" in out.stderr


def test_flask_run_refuses_emulator_mode_on_a_public_host(database_url, redis_url, tmp_path):
    env = _second_terminal(database_url, redis_url, tmp_path)
    env["FIREBASE_AUTH_EMULATOR_HOST"] = "127.0.0.1:9099"
    cmd = [sys.executable, "-m", "flask", "--app", "webapp", "run", "--host", "0.0.0.0", "--port", "0"]
    code, err = exit_of(cmd, env, 60, "the development server started with emulator auth on 0.0.0.0")
    assert code == 1
    assert "Error: refusing to start in development" in err and "loopback" in err


def test_dev_token_cli_refuses_outside_emulator_mode(database_url, redis_url):
    env = dict(os.environ, APP_ENV="testing", DATABASE_URL=database_url, REDIS_URL=redis_url)
    env.pop("FIREBASE_AUTH_EMULATOR_HOST", None)
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "dev-token", "a@example.com"],
                         env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert out.stdout == ""
    assert "emulator" in out.stderr
