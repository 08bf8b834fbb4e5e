from __future__ import annotations


def ids(page: dict) -> list[int]:
    return [item["id"] for item in page["items"]]


def test_follow_public_account_and_unfollow(client, login):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    resp = client.post(f"/api/v1/users/{ann_id}/follow", headers=bob)
    assert resp.status_code == 200 and resp.json == {"status": "accepted"}
    assert ids(client.get(f"/api/v1/users/{ann_id}/followers", headers=bob).json) == [bob_id]
    assert ids(client.get(f"/api/v1/users/{bob_id}/following", headers=ann).json) == [ann_id]
    assert client.get(f"/api/v1/users/{ann_id}", headers=bob).json["follow_status"] == "accepted"
    assert client.get("/api/v1/me", headers=ann).json["follower_count"] == 1
    # Idempotent.
    assert client.post(f"/api/v1/users/{ann_id}/follow", headers=bob).json == {"status": "accepted"}
    assert client.delete(f"/api/v1/users/{ann_id}/follow", headers=bob).status_code == 204
    assert ids(client.get(f"/api/v1/users/{ann_id}/followers", headers=bob).json) == []


def test_cannot_follow_self(client, login):
    ann, ann_id = login("ann")
    resp = client.post(f"/api/v1/users/{ann_id}/follow", headers=ann)
    assert resp.status_code == 422


def test_private_account_requests_accept_and_decline(client, login):
    ann, ann_id = login("ann", is_private=True)
    bob, bob_id = login("bob")
    cat, cat_id = login("cat")
    assert client.post(f"/api/v1/users/{ann_id}/follow", headers=bob).json == {"status": "pending"}
    assert client.post(f"/api/v1/users/{ann_id}/follow", headers=cat).json == {"status": "pending"}
    # Pending followers are not followers.
    assert client.get("/api/v1/me", headers=ann).json["follower_count"] == 0
    assert client.get(f"/api/v1/users/{ann_id}", headers=bob).json["details_visible"] is False
    assert set(ids(client.get("/api/v1/me/follow-requests", headers=ann).json)) == {bob_id, cat_id}
    assert client.post(f"/api/v1/me/follow-requests/{bob_id}/accept", headers=ann).status_code == 204
    assert client.post(f"/api/v1/me/follow-requests/{cat_id}/decline", headers=ann).status_code == 204
    assert client.post(f"/api/v1/me/follow-requests/{cat_id}/accept", headers=ann).status_code == 404
    assert ids(client.get(f"/api/v1/users/{ann_id}/followers", headers=ann).json) == [bob_id]
    assert client.get(f"/api/v1/users/{ann_id}", headers=bob).json["details_visible"] is True
    assert client.get(f"/api/v1/users/{ann_id}", headers=cat).json["follow_status"] is None


def test_going_public_accepts_waiting_requests(client, login):
    ann, ann_id = login("ann", is_private=True)
    bob, bob_id = login("bob")
    client.post(f"/api/v1/users/{ann_id}/follow", headers=bob)
    client.patch("/api/v1/me", headers=ann, json={"is_private": False})
    assert ids(client.get(f"/api/v1/users/{ann_id}/followers", headers=bob).json) == [bob_id]


def test_block_ends_follows_and_hides_the_account(client, login):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    client.post(f"/api/v1/users/{ann_id}/follow", headers=bob)
    client.post(f"/api/v1/users/{bob_id}/follow", headers=ann)
    assert client.post(f"/api/v1/users/{bob_id}/block", headers=ann).status_code == 204
    assert ids(client.get(f"/api/v1/users/{ann_id}/followers", headers=ann).json) == []
    assert ids(client.get(f"/api/v1/users/{ann_id}/following", headers=ann).json) == []
    # The blocked athlete can neither see nor follow; the blocker doesn't see them either.
    assert client.get(f"/api/v1/users/{ann_id}", headers=bob).status_code == 404
    assert client.post(f"/api/v1/users/{ann_id}/follow", headers=bob).status_code == 404
    assert client.get(f"/api/v1/users/{bob_id}", headers=ann).status_code == 404
    assert ids(client.get("/api/v1/me/blocks", headers=ann).json) == [bob_id]
    assert client.delete(f"/api/v1/users/{bob_id}/block", headers=ann).status_code == 204
    assert client.post(f"/api/v1/users/{ann_id}/follow", headers=bob).json == {"status": "accepted"}


def test_follower_pages_with_cursor_never_skip_or_repeat(client, login):
    ann, ann_id = login("ann")
    followers = []
    for i in range(7):
        h, uid = login(f"fan{i}")
        client.post(f"/api/v1/users/{ann_id}/follow", headers=h)
        followers.append(uid)
    seen: list[int] = []
    page = client.get(f"/api/v1/users/{ann_id}/followers?limit=3", headers=ann).json
    seen += ids(page)
    # A new follower arriving between pages must not shift the next page.
    late, _late_id = login("late")
    client.post(f"/api/v1/users/{ann_id}/follow", headers=late)
    while page["next_cursor"]:
        page = client.get(f"/api/v1/users/{ann_id}/followers?limit=3&cursor={page['next_cursor']}", headers=ann).json
        seen += ids(page)
    assert sorted(seen) == sorted(followers)
    assert len(seen) == len(set(seen))


def test_bad_cursor_and_limit(client, login):
    ann, ann_id = login("ann")
    assert client.get(f"/api/v1/users/{ann_id}/followers?cursor=!!!", headers=ann).status_code == 400
    assert client.get(f"/api/v1/users/{ann_id}/followers?limit=0", headers=ann).status_code == 422
