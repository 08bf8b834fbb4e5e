"""Push devices: register (upsert by token), move between accounts, list, delete by token or id."""

from __future__ import annotations

import pytest

from models.device import MAX_DEVICES_PER_USER

TOKEN = "fcm-token:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx"


def register(client, headers, token=TOKEN, platform="ios", app_version="1.0.0", expect=(200, 201)):
    resp = client.post("/api/v1/me/devices", json={"token": token, "platform": platform, "app_version": app_version},
                       headers=headers)
    assert resp.status_code in expect, resp.json
    return resp


def devices(client, headers) -> list[dict]:
    resp = client.get("/api/v1/me/devices", headers=headers)
    assert resp.status_code == 200, resp.json
    return resp.json["items"]


def test_register_is_an_upsert_by_token(client, login):
    ann, _ = login("ann")
    first = register(client, ann, expect=(201,))
    assert first.json["token"] == TOKEN and first.json["platform"] == "ios" and first.json["app_version"] == "1.0.0"
    again = register(client, ann, platform="android", app_version="1.1.0", expect=(200,))
    assert again.json["id"] == first.json["id"] and again.json["app_version"] == "1.1.0"
    (device,) = devices(client, ann)
    assert device["platform"] == "android" and device["app_version"] == "1.1.0"
    register(client, ann, token="another-token", platform="web", app_version=None, expect=(201,))
    assert [d["token"] for d in devices(client, ann)] == ["another-token", TOKEN]


def test_a_token_moves_to_the_account_that_registers_it(client, login):
    ann, _ = login("ann")
    bob, _ = login("bob")
    register(client, ann)
    moved = register(client, bob, expect=(201,))
    assert devices(client, ann) == []
    assert [d["id"] for d in devices(client, bob)] == [moved.json["id"]]


def test_delete_by_token_or_id_and_only_your_own(client, login):
    ann, _ = login("ann")
    bob, _ = login("bob")
    register(client, ann)
    second = register(client, ann, token="second-token").json
    bobs = register(client, bob, token="bobs-token").json
    assert client.delete("/api/v1/me/devices/bobs-token", headers=ann).status_code == 404
    assert client.delete(f"/api/v1/me/devices/{bobs['id']}", headers=ann).status_code == 404
    assert client.delete(f"/api/v1/me/devices/{TOKEN}", headers=ann).status_code == 204
    assert client.delete(f"/api/v1/me/devices/{second['id']}", headers=ann).status_code == 204
    assert devices(client, ann) == []
    assert client.delete(f"/api/v1/me/devices/{TOKEN}", headers=ann).status_code == 404
    assert [d["token"] for d in devices(client, bob)] == ["bobs-token"]


def test_the_oldest_devices_beyond_the_cap_are_dropped(client, login):
    ann, _ = login("ann")
    for i in range(MAX_DEVICES_PER_USER + 2):
        register(client, ann, token=f"token-{i}")
    tokens = {d["token"] for d in devices(client, ann)}
    assert len(tokens) == MAX_DEVICES_PER_USER and "token-0" not in tokens and "token-1" not in tokens


@pytest.mark.parametrize("body", [
    {}, {"token": TOKEN}, {"token": TOKEN, "platform": "blackberry"}, {"token": "", "platform": "ios"},
    {"token": "a/b", "platform": "ios"}, {"token": "x" * 1025, "platform": "ios"},
    {"token": TOKEN, "platform": "ios", "app_version": "9" * 33}, {"token": TOKEN, "platform": "ios", "extra": 1},
])
def test_bad_bodies_are_refused(client, login, body):
    ann, _ = login("ann")
    resp = client.post("/api/v1/me/devices", json=body, headers=ann)
    assert resp.status_code == 422 and resp.json["status"] == "Unprocessable Entity"


def test_devices_need_a_signed_in_athlete(client):
    assert client.get("/api/v1/me/devices").status_code == 401
    assert client.post("/api/v1/me/devices", json={"token": TOKEN, "platform": "ios"}).status_code == 401
