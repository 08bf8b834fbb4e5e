"""Emulator mode (development): `flask dev-token EMAIL` prints only a token that the dev stack accepts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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


def test_dev_token_cli_prints_only_the_token(database_url, redis_url):
    env = {k: v for k, v in os.environ.items() if k not in {"APP_ENV", "FIREBASE_CERTS_URL", "FIREBASE_PROJECT_ID"}}
    env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url})
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "dev-token", "a@example.com"],
                         env=env, capture_output=True, text=True, check=True)
    token = out.stdout.strip()
    assert out.stdout.count("\n") == 1 and token.count(".") == 2
    import base64
    import json
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert payload["email"] == "a@example.com"
    assert payload["aud"] == "demo-strava-plus-one"


def test_dev_token_cli_refuses_outside_emulator_mode(database_url, redis_url):
    env = dict(os.environ, APP_ENV="testing", DATABASE_URL=database_url, REDIS_URL=redis_url)
    env.pop("FIREBASE_AUTH_EMULATOR_HOST", None)
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "dev-token", "a@example.com"],
                         env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert out.stdout == ""
    assert "emulator" in out.stderr
