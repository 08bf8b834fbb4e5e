"""Every error is JSON in flask-smorest's shape: {code, status, message[, errors]}."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError


def assert_shape(resp, code: int) -> None:
    assert resp.status_code == code
    assert resp.is_json, resp.data[:200]
    body = resp.json
    assert body["code"] == code and isinstance(body["status"], str) and body["message"]


def test_404_405_on_unknown_routes(client, login):
    headers, _ = login("ann")
    assert_shape(client.get("/api/v1/does-not-exist", headers=headers), 404)
    assert_shape(client.get("/not-api", headers=headers), 404)
    resp = client.put("/api/v1/me", headers=headers, json={})
    assert_shape(resp, 405)
    assert "PATCH" in resp.headers["Allow"]


def test_400_on_malformed_json(client, login):
    headers, _ = login("ann")
    resp = client.patch("/api/v1/me", headers={**headers, "Content-Type": "application/json"}, data="{nope")
    assert resp.status_code in (400, 422)
    assert resp.is_json and resp.json["code"] == resp.status_code


def test_413_when_the_body_is_too_large(app, client, login):
    headers, _ = login("ann")
    old = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 1000
    try:
        resp = client.patch("/api/v1/me", headers=headers, json={"bio": "x" * 5000})
    finally:
        app.config["MAX_CONTENT_LENGTH"] = old
    assert_shape(resp, 413)


def test_429_with_retry_after(app, client, login):
    headers, _ = login("ann")
    old = app.config["RATE_LIMIT_WRITES_PER_MIN"]
    app.config["RATE_LIMIT_WRITES_PER_MIN"] = 3
    try:
        codes = [client.patch("/api/v1/me", headers=headers, json={"bio": str(i)}).status_code for i in range(5)]
        resp = client.patch("/api/v1/me", headers=headers, json={"bio": "again"})
    finally:
        app.config["RATE_LIMIT_WRITES_PER_MIN"] = old
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
    assert_shape(resp, 429)
    assert 0 < int(resp.headers["Retry-After"]) <= 60
    # Reads are not limited.
    assert client.get("/api/v1/me", headers=headers).status_code == 200


@pytest.fixture
def boom_app(app, database_url, redis_url):
    """A separate app with routes that fail on purpose (routes can't be added to a used app)."""
    from webapp import create_app

    fresh = create_app("testing")

    @fresh.get("/api/v1/_boom")
    def boom():
        raise RuntimeError("kaboom: internal detail")

    @fresh.get("/api/v1/_conflict")
    def conflict():
        raise IntegrityError("INSERT …", {}, Exception("duplicate key"))

    return fresh


def test_500_is_json_without_internals(boom_app, db_tx, redis_clean, make_token):
    client = boom_app.test_client()
    headers = {"Authorization": f"Bearer {make_token('ann@example.com')}"}
    resp = client.get("/api/v1/_boom", headers=headers)
    assert_shape(resp, 500)
    assert "kaboom" not in resp.get_data(as_text=True)
    assert resp.json["request_id"] == resp.headers["X-Request-ID"]


def test_409_on_a_constraint_race(boom_app, db_tx, redis_clean, make_token):
    client = boom_app.test_client()
    headers = {"Authorization": f"Bearer {make_token('ann@example.com')}"}
    assert_shape(client.get("/api/v1/_conflict", headers=headers), 409)


def test_403_and_401_shapes(client, login):
    _ann, ann_id = login("ann", is_private=True)
    bob, _ = login("bob")
    assert_shape(client.get(f"/api/v1/users/{ann_id}/following", headers=bob), 403)
    assert_shape(client.get("/api/v1/me"), 401)


def test_request_id_is_echoed(client):
    resp = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"
    resp = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert resp.headers["X-Request-ID"] != "bad id with spaces" and len(resp.headers["X-Request-ID"]) == 32
