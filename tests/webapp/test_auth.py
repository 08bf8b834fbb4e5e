"""Offline verification of real RS256 tokens: valid passes; forged, expired, wrong audience/issuer and
unsigned (alg none) tokens get 401 — with firebase-admin doing the checking, as in production."""

from __future__ import annotations

import base64
import json
import time

import pytest

from tests.conftest import PROJECT_ID
from tests.support.tokens import SigningKey, id_token_claims


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_valid_token_provisions_the_athlete_once(client, test_key):
    token = test_key.sign(id_token_claims("uid-ann", PROJECT_ID, email="ann@example.com", name="Ann Runner"))
    first = client.get("/api/v1/me", headers=bearer(token))
    assert first.status_code == 200
    assert first.json["email"] == "ann@example.com"
    assert first.json["display_name"] == "Ann Runner"
    assert first.json["preferences"]["units"] == "metric"
    again = client.get("/api/v1/me", headers=bearer(token))
    assert again.json["id"] == first.json["id"]


def test_missing_or_malformed_header_is_401(client):
    for headers in ({}, {"Authorization": "Token abc"}, {"Authorization": "Bearer "}):
        resp = client.get("/api/v1/me", headers=headers)
        assert resp.status_code == 401
        assert resp.json["code"] == 401 and resp.json["status"] == "Unauthorized"
        assert "Bearer" in resp.headers["WWW-Authenticate"]


def test_token_signed_by_another_key_is_rejected(client):
    forger = SigningKey(kid="test-key-1")  # same key id, different private key
    token = forger.sign(id_token_claims("uid-eve", PROJECT_ID))
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401


def test_unknown_key_id_is_rejected(client, test_key):
    token = test_key.sign(id_token_claims("uid-eve", PROJECT_ID), kid="other-kid")
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401


def test_expired_token_is_rejected_with_a_clear_message(client, test_key):
    now = int(time.time())
    token = test_key.sign(id_token_claims("uid-ann", PROJECT_ID, iat=now - 7200, exp=now - 3600, auth_time=now - 7200))
    resp = client.get("/api/v1/me", headers=bearer(token))
    assert resp.status_code == 401
    assert "expired" in resp.json["message"]


@pytest.mark.parametrize("claim", ["aud", "iss"])
def test_wrong_audience_or_issuer_is_rejected(client, test_key, claim):
    value = "someone-else" if claim == "aud" else "https://securetoken.google.com/someone-else"
    token = test_key.sign(id_token_claims("uid-ann", PROJECT_ID, **{claim: value}))
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401


def test_unsigned_alg_none_token_is_rejected_outside_emulator_mode(client):
    def enc(part: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")

    claims = id_token_claims("uid-ann", PROJECT_ID)
    for header in ({"alg": "none", "typ": "JWT"}, {"alg": "none", "kid": "test-key-1"}):
        token = f"{enc(header)}.{enc(claims)}."
        assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401


def test_hs256_token_with_the_public_cert_as_secret_is_rejected(client, test_key):
    import jwt

    claims = id_token_claims("uid-ann", PROJECT_ID)
    secret = "not-the-key-but-long-enough-for-hs256-0123456789"
    token = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": test_key.kid})
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401


def test_garbage_token_is_401_not_500(client):
    for token in ("abc", "a.b.c", "x" * 5000, "..."):
        assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401


def test_docs_and_spec_need_no_token(client):
    spec = client.get("/api/v1/openapi.json")
    assert spec.status_code == 200
    assert spec.json["openapi"].startswith("3.")
    assert "/api/v1/me" in spec.json["paths"]
    assert spec.json["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert client.get("/api/v1/docs").status_code == 200
    assert client.get("/api/v1/redoc").status_code == 200
