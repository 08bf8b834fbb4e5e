"""Errors a person can act on: the top-level message names the first problem, in one shape everywhere."""

from __future__ import annotations

from typing import Any

SHAPE = {"code", "status", "message", "request_id"}


def test_a_missing_upload_file_is_named_with_how_to_send_it(client: Any, login: Any) -> None:
    headers, _ = login("ann")
    resp = client.post("/api/v1/uploads", headers=headers, data={"name": "x"}, content_type="multipart/form-data")
    assert resp.status_code == 422
    assert resp.json["message"] == "file: missing — send it as a file in the multipart field 'file'."
    assert resp.json["errors"] == {"files": {"file": ["Missing data for required field."]}}


def test_an_invalid_nested_field_is_named_by_its_path(client: Any, login: Any) -> None:
    headers, _ = login("ann")
    resp = client.patch("/api/v1/me", headers=headers, json={"preferences": {"timezone": "Mars/Olympus"}})
    assert resp.status_code == 422
    assert resp.json["message"].startswith("preferences.timezone: Unknown IANA time zone")
    resp = client.post("/api/v1/activities", headers=headers, json={"sport_type": "running", "bogus": 1,
                                                                      "start_date": "2026-01-01T00:00:00Z",
                                                                      "elapsed_time_s": 60})
    assert resp.status_code == 422 and resp.json["message"].startswith("bogus: unknown field")


def test_malformed_json_speaks_of_the_body_not_of_browsers(client: Any, login: Any) -> None:
    headers, _ = login("ann")
    for content_type in ("application/json", "application/json; charset=utf-8"):
        resp = client.post("/api/v1/activities", headers=headers, data="{not json", content_type=content_type)
        assert resp.status_code == 400 and "browser" not in resp.json["message"], resp.json
        assert set(resp.json) >= SHAPE


def test_unknown_query_parameters_are_refused_like_unknown_body_fields(client: Any, login: Any) -> None:
    headers, user_id = login("ann")
    resp = client.get(f"/api/v1/users/{user_id}/activities?sport=running", headers=headers)
    assert resp.status_code == 422
    assert resp.json["message"].startswith("sport: unknown query parameter") and "sport_type" in resp.json["message"]
    assert resp.json["errors"] == {"query": {"sport": ["Unknown field."]}}
    assert client.get("/api/v1/me?x=1", headers=headers).status_code == 422  # no query parameters at all
    assert client.get(f"/api/v1/users/{user_id}/activities?sport_type=running", headers=headers).status_code == 200


def test_werkzeugs_own_errors_have_the_same_shape_and_a_useful_message(client: Any, login: Any) -> None:
    headers, _ = login("ann")
    missing = client.get("/api/v1/no-such-thing", headers=headers)
    assert missing.status_code == 404 and set(missing.json) >= SHAPE
    assert missing.json["message"].startswith("No such endpoint: GET /api/v1/no-such-thing")
    outside = client.get("/nowhere")
    assert outside.status_code == 404 and set(outside.json) >= SHAPE
    wrong = client.put("/api/v1/feed", headers=headers)
    assert wrong.status_code == 405 and set(wrong.json) >= SHAPE
    assert "PUT is not allowed on /api/v1/feed; use" in wrong.json["message"] and "GET" in wrong.headers["Allow"]
