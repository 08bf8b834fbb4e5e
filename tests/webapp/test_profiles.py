from __future__ import annotations


def test_patch_profile_and_preferences(client, login):
    headers, _ = login("ann")
    resp = client.patch("/api/v1/me", headers=headers, json={
        "display_name": "Ann R.", "bio": "Trail runner", "sex": "F", "birth_year": 1990, "weight_kg": 58.5,
        "avatar_url": "https://cdn.example.com/a.png",
        "preferences": {"units": "imperial", "timezone": "Europe/Ljubljana", "default_visibility": "followers",
                        "notifications": {"kudos": False}},
    })
    assert resp.status_code == 200, resp.json
    me = client.get("/api/v1/me", headers=headers).json
    assert me["display_name"] == "Ann R." and me["weight_kg"] == 58.5 and me["sex"] == "F"
    prefs = me["preferences"]
    assert prefs["units"] == "imperial" and prefs["timezone"] == "Europe/Ljubljana"
    assert prefs["default_visibility"] == "followers"
    # One category changed, the others kept.
    assert prefs["notifications"]["kudos"] is False and prefs["notifications"]["comments"] is True


def test_preferences_endpoint(client, login):
    headers, _ = login("ann")
    resp = client.patch("/api/v1/me/preferences", headers=headers,
                        json={"language": "sl", "quiet_hours_start": "22:00", "quiet_hours_end": "07:00"})
    assert resp.status_code == 200
    assert client.get("/api/v1/me/preferences", headers=headers).json["quiet_hours_start"] == "22:00"


def test_invalid_profile_fields_are_422_with_field_errors(client, login):
    headers, _ = login("ann")
    resp = client.patch("/api/v1/me", headers=headers, json={
        "sex": "Q", "birth_year": 1200, "weight_kg": -1, "preferences": {"timezone": "Mars/Base", "units": "cubits"},
    })
    assert resp.status_code == 422
    errors = resp.json["errors"]["json"]
    assert {"sex", "birth_year", "weight_kg", "preferences"} <= set(errors)
    assert set(errors["preferences"]) == {"timezone", "units"}
    # Nothing was half-applied.
    assert client.get("/api/v1/me", headers=headers).json["sex"] is None


def test_unknown_and_read_only_fields_are_rejected(client, login):
    headers, _ = login("ann")
    assert client.patch("/api/v1/me", headers=headers, json={"id": 5}).status_code == 422
    assert client.patch("/api/v1/me", headers=headers, json={"is_admin": True}).status_code == 422


def test_public_profile_of_public_account(client, login):
    _ann, ann_id = login("ann", bio="hello")
    bob, _ = login("bob")
    resp = client.get(f"/api/v1/users/{ann_id}", headers=bob)
    assert resp.status_code == 200
    assert resp.json["bio"] == "hello" and resp.json["details_visible"] is True
    assert "email" not in resp.json


def test_private_account_hides_details_from_non_followers(client, login):
    _ann, ann_id = login("ann", bio="secret plans", is_private=True, sex="F")
    bob, _ = login("bob")
    resp = client.get(f"/api/v1/users/{ann_id}", headers=bob).json
    assert resp["is_private"] is True and resp["details_visible"] is False
    assert resp["bio"] is None and resp["sex"] is None
    assert client.get(f"/api/v1/users/{ann_id}/followers", headers=bob).status_code == 403


def test_unknown_user_is_404(client, login):
    headers, _ = login("ann")
    resp = client.get("/api/v1/users/999999999", headers=headers)
    assert resp.status_code == 404 and resp.json["message"] == "Athlete not found."


def test_delete_account_removes_the_athlete_and_their_graph(client, login, db_tx):
    from sqlalchemy import text

    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    assert client.post(f"/api/v1/users/{bob_id}/follow", headers=ann).status_code == 200
    assert client.delete("/api/v1/me", headers=ann).status_code == 204
    assert db_tx.execute(text("SELECT count(*) FROM users WHERE id = :i"), {"i": ann_id}).scalar() == 0
    assert db_tx.execute(text("SELECT count(*) FROM follows WHERE follower_id = :i"), {"i": ann_id}).scalar() == 0
    assert db_tx.execute(text("SELECT count(*) FROM user_preferences WHERE user_id = :i"), {"i": ann_id}).scalar() == 0
    assert client.get(f"/api/v1/users/{ann_id}", headers=bob).status_code == 404
    # Signing in again starts a fresh account.
    assert client.get("/api/v1/me", headers=ann).json["id"] != ann_id
