"""GET /api/v1/athletes?q=: find friends by name, never across a block."""

from __future__ import annotations

from typing import Any


def test_search_finds_by_name_pages_and_respects_blocks_and_private_accounts(client: Any, login: Any) -> None:
    ann, _ = login("ann")
    _, bob_id = login("bob", display_name="Bob Runner")
    carl, carl_id = login("carl", display_name="Bobby Private", is_private=True)
    dave, dave_id = login("dave", display_name="bob_the_blocker")
    _, _ = login("erin", display_name="Erin")
    assert client.post(f"/api/v1/users/{carl_id}/follow", headers=ann).status_code == 200
    assert client.post(f"/api/v1/users/{dave_id}/block", headers=ann).status_code == 204

    found = client.get("/api/v1/athletes?q=BOB", headers=ann)
    assert found.status_code == 200
    items = found.json["items"]
    assert [i["display_name"] for i in items] == ["Bob Runner", "Bobby Private"]  # dave: blocked by ann
    private = items[1]
    assert private == {"id": carl_id, "display_name": "Bobby Private", "avatar_url": None, "is_private": True,
                       "follow_status": "pending"}
    assert "bio" not in private and "email" not in private
    # The block hides ann from dave too.
    assert [i["id"] for i in client.get("/api/v1/athletes?q=ann", headers=dave).json["items"]] == []
    # Paging by name, then id.
    first = client.get("/api/v1/athletes?q=bob&limit=1", headers=carl).json
    assert [i["id"] for i in first["items"]] == [bob_id] and first["next_cursor"]
    rest = client.get(f"/api/v1/athletes?q=bob&limit=1&cursor={first['next_cursor']}", headers=carl).json
    assert [i["id"] for i in rest["items"]] == [dave_id] and rest["next_cursor"] is None
    # LIKE wildcards are matched literally.
    assert [i["id"] for i in client.get("/api/v1/athletes?q=b_the", headers=carl).json["items"]] == [dave_id]
    assert client.get("/api/v1/athletes?q=%25%25", headers=carl).json["items"] == []
    assert client.get("/api/v1/athletes?q=b", headers=ann).status_code == 422
