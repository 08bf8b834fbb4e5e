"""Compression, ETag / If-None-Match and CORS on the API."""

from __future__ import annotations

import gzip
from typing import Any

import brotli
import pytest

from webapp.httpcache import origin_allowed


def _activity(client: Any, headers: dict[str, str]) -> int:
    resp = client.post("/api/v1/activities", headers=headers, json={
        "sport_type": "running", "start_date": "2026-10-01T07:00:00+00:00", "elapsed_time_s": 1800,
        "distance_m": 5000, "description": "x" * 2000})
    assert resp.status_code == 201
    return int(resp.json["id"])


def test_json_is_compressed_as_the_client_asks(client: Any, login: Any) -> None:
    headers, _ = login("ann")
    activity_id = _activity(client, headers)
    plain = client.get(f"/api/v1/activities/{activity_id}", headers=headers)
    assert "Content-Encoding" not in plain.headers
    for encoding, decode in (("br", brotli.decompress), ("gzip", gzip.decompress)):
        resp = client.get(f"/api/v1/activities/{activity_id}", headers={**headers, "Accept-Encoding": encoding})
        assert resp.headers["Content-Encoding"] == encoding
        assert len(resp.data) < len(plain.data) and decode(resp.data) == plain.data
        assert "Accept-Encoding" in resp.headers["Vary"]


@pytest.mark.parametrize("encoding", ["identity", "gzip", "br"])
def test_etag_answers_304_until_the_resource_changes(client: Any, login: Any, encoding: str) -> None:
    headers, user_id = login("ann")
    activity_id = _activity(client, headers)
    headers = {**headers, "Accept-Encoding": encoding}
    for path in (f"/api/v1/activities/{activity_id}", f"/api/v1/activities/{activity_id}/streams",
                 f"/api/v1/users/{user_id}", "/api/v1/me"):
        first = client.get(path, headers=headers)
        etag = first.headers["ETag"]
        assert first.status_code == 200 and etag.startswith('W/"')
        again = client.get(path, headers={**headers, "If-None-Match": etag})
        assert again.status_code == 304 and again.data == b"", path
    client.patch(f"/api/v1/activities/{activity_id}", headers=headers, json={"name": "Renamed"})
    changed = client.get(f"/api/v1/activities/{activity_id}", headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_cors_preflight_for_configured_origins_only(app: Any, client: Any) -> None:
    from webapp import create_app

    web = create_app("testing", CORS_ORIGINS=["https://app.example.com"]).test_client()
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"}
    ok = web.options("/api/v1/ws/ticket", headers=preflight)
    assert ok.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "authorization" in ok.headers["Access-Control-Allow-Headers"].lower()
    other = web.options("/api/v1/ws/ticket", headers={**preflight, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Access-Control-Allow-Origin" not in client.options("/api/v1/ws/ticket", headers=preflight).headers


def test_socket_origins() -> None:
    assert origin_allowed(None, "api.example.com", [])  # a native app sends none
    assert origin_allowed("https://api.example.com", "api.example.com", [])  # the API's own pages
    assert origin_allowed("https://app.example.com", "api.example.com", ["https://app.example.com"])
    assert not origin_allowed("https://evil.example", "api.example.com", ["https://app.example.com"])


def test_a_socket_from_a_foreign_page_is_refused(ws_connect: Any, live_login: Any, make_token: Any) -> None:
    live_login("ann")
    client = ws_connect(token=make_token("ann@example.com"), headers={"Origin": "https://evil.example"})
    assert (client.close_code, client.close_reason) == (4401, "origin not allowed (CORS_ORIGINS)")
