"""Posts through the API: defaults, validation, the visibility rules, shared activities and group posts.

The feed hooks in tasks.feed are replaced by recorders here: these tests check that posts call them (and
with what), not what the feed does with the calls (tests/tasks covers that).
"""

from __future__ import annotations

import pytest

from tests.support.social import make_activity, make_post, record_feed_calls


@pytest.fixture(autouse=True)
def feed_calls(monkeypatch):
    return record_feed_calls(monkeypatch)


def make_group(app, owner_id: int, join_policy: str, members: dict[int, str] | None = None) -> int:
    """A group straight in the database: the groups API is not what these tests are about."""
    from models import Group, GroupMember, db

    with app.app_context():
        group = Group(owner_id=owner_id, name="Club", join_policy=join_policy)
        db.session.add(group)
        db.session.flush()
        db.session.add(GroupMember(group_id=group.id, user_id=owner_id, role="owner", status="active"))
        for user_id, status in (members or {}).items():
            db.session.add(GroupMember(group_id=group.id, user_id=user_id, status=status))
        db.session.commit()
        return group.id


def status(client, headers, post_id: int) -> int:
    return client.get(f"/api/v1/posts/{post_id}", headers=headers).status_code


def test_create_uses_default_visibility_and_calls_the_feed(client, login, feed_calls):
    ann, ann_id = login("ann", display_name="Ann")
    post = make_post(client, ann, text="  First run of the year!  ")
    assert post["text"] == "First run of the year!"
    assert post["visibility"] == "everyone"
    assert post["athlete"] == {"id": ann_id, "display_name": "Ann", "avatar_url": None}
    assert post["kudos_count"] == 0 and post["comment_count"] == 0 and post["has_kudoed"] is False
    assert post["activity"] is None and post["group_id"] is None
    assert ("enqueue_item_changed", "post", post["id"]) in feed_calls

    client.patch("/api/v1/me/preferences", headers=ann, json={"default_visibility": "followers"})
    assert make_post(client, ann)["visibility"] == "followers"
    assert make_post(client, ann, visibility="only_me")["visibility"] == "only_me"


@pytest.mark.parametrize("body", [
    {"text": ""}, {"text": "   "}, {"text": "x" * 5001}, {}, {"text": "hi", "visibility": "friends"},
    {"text": "hi", "unknown": 1}, {"text": 12},
])
def test_invalid_posts_are_422(client, login, body):
    ann, _ = login("ann")
    assert client.post("/api/v1/posts", json=body, headers=ann).status_code == 422


def test_longest_text_is_accepted(client, login):
    ann, _ = login("ann")
    assert len(make_post(client, ann, text="x" * 5000)["text"]) == 5000


def test_visibility_rules_match_activities(client, login):
    ann, ann_id = login("ann")
    fan, _ = login("fan")
    stranger, _ = login("stranger")
    client.post(f"/api/v1/users/{ann_id}/follow", headers=fan)
    public = make_post(client, ann, visibility="everyone")["id"]
    followers = make_post(client, ann, visibility="followers")["id"]
    only_me = make_post(client, ann, visibility="only_me")["id"]

    assert [status(client, ann, p) for p in (public, followers, only_me)] == [200, 200, 200]
    assert [status(client, fan, p) for p in (public, followers, only_me)] == [200, 200, 404]
    assert [status(client, stranger, p) for p in (public, followers, only_me)] == [200, 404, 404]
    assert client.get("/api/v1/posts/999999", headers=ann).status_code == 404

    # A private account's posts need an accepted follow, whatever their own visibility says.
    client.patch("/api/v1/me", headers=ann, json={"is_private": True})
    assert status(client, stranger, public) == 404
    assert status(client, fan, public) == 200


def test_a_block_hides_posts_both_ways(client, login):
    ann, _ = login("ann")
    bob, bob_id = login("bob")
    ann_post = make_post(client, ann)["id"]
    bob_post = make_post(client, bob)["id"]
    assert client.post(f"/api/v1/users/{bob_id}/block", headers=ann).status_code == 204
    assert status(client, bob, ann_post) == 404
    assert status(client, ann, bob_post) == 404


def test_sharing_an_activity_embeds_it_only_for_those_who_may_see_it(client, login):
    ann, ann_id = login("ann")
    fan, _ = login("fan")
    stranger, _ = login("stranger")
    client.post(f"/api/v1/users/{ann_id}/follow", headers=fan)
    activity_id = make_activity(client, ann, visibility="followers", name="Tempo")
    post = make_post(client, ann, text="Felt strong", activity_id=activity_id, visibility="everyone")
    assert post["activity"]["id"] == activity_id and post["activity"]["name"] == "Tempo"

    assert client.get(f"/api/v1/posts/{post['id']}", headers=fan).json["activity"]["id"] == activity_id
    seen = client.get(f"/api/v1/posts/{post['id']}", headers=stranger).json
    assert seen["text"] == "Felt strong"
    # Not even the id: it would tell the stranger that a hidden activity exists.
    assert seen["activity_id"] is None and seen["activity"] is None


def test_only_visible_activities_can_be_shared(client, login):
    ann, _ = login("ann")
    bob, _ = login("bob")
    public = make_activity(client, ann, visibility="everyone")
    hidden = make_activity(client, ann, visibility="only_me")
    # Someone else's public activity may be shared (a repost with a caption); a hidden one doesn't exist.
    assert make_post(client, bob, activity_id=public)["activity"]["id"] == public
    resp = client.post("/api/v1/posts", json={"text": "look", "activity_id": hidden}, headers=bob)
    assert resp.status_code == 404
    assert client.post("/api/v1/posts", json={"text": "x", "activity_id": 999999}, headers=bob).status_code == 404


def test_author_edits_and_deletes(client, login, feed_calls):
    ann, ann_id = login("ann")
    bob, _ = login("bob")
    post_id = make_post(client, ann, text="Draft")["id"]
    feed_calls.clear()

    resp = client.patch(f"/api/v1/posts/{post_id}", json={"text": "Final", "visibility": "followers"}, headers=ann)
    assert resp.status_code == 200 and resp.json["text"] == "Final" and resp.json["visibility"] == "followers"
    assert feed_calls == [("enqueue_item_changed", "post", post_id)]
    assert client.patch(f"/api/v1/posts/{post_id}", json={"text": ""}, headers=ann).status_code == 422
    assert client.patch(f"/api/v1/posts/{post_id}", json={"group_id": 1}, headers=ann).status_code == 422

    client.patch(f"/api/v1/posts/{post_id}", json={"visibility": "everyone"}, headers=ann)
    # Someone else may read it but neither edit nor delete it.
    assert client.patch(f"/api/v1/posts/{post_id}", json={"text": "mine"}, headers=bob).status_code == 404
    assert client.delete(f"/api/v1/posts/{post_id}", headers=bob).status_code == 404
    assert client.get(f"/api/v1/posts/{post_id}", headers=bob).json["text"] == "Final"

    feed_calls.clear()
    assert client.delete(f"/api/v1/posts/{post_id}", headers=ann).status_code == 204
    assert feed_calls == [("enqueue_item_removed", "post", post_id, ann_id)]
    assert status(client, ann, post_id) == 404
    assert client.delete(f"/api/v1/posts/{post_id}", headers=ann).status_code == 404


def test_deleting_a_post_removes_its_kudos_comments_and_notifications(client, login):
    ann, _ = login("ann")
    bob, _ = login("bob")
    post_id = make_post(client, ann)["id"]
    assert client.post(f"/api/v1/posts/{post_id}/kudos", headers=bob).status_code == 201
    comment_id = client.post(f"/api/v1/posts/{post_id}/comments", json={"text": "nice"}, headers=bob).json["id"]
    assert client.get("/api/v1/notifications/unread-count", headers=ann).json["unread_count"] == 2
    assert client.delete(f"/api/v1/posts/{post_id}", headers=ann).status_code == 204
    assert client.delete(f"/api/v1/comments/{comment_id}", headers=bob).status_code == 404
    assert client.get("/api/v1/notifications/unread-count", headers=ann).json["unread_count"] == 0


def test_group_posts_need_an_active_membership(client, app, login):
    _ann, ann_id = login("ann")
    member, member_id = login("member")
    waiting, waiting_id = login("waiting")
    outsider, _ = login("outsider")
    group_id = make_group(app, ann_id, "approval", {member_id: "active", waiting_id: "pending"})

    post = make_post(client, member, text="Saturday long run?", group_id=group_id)
    assert post["group_id"] == group_id and post["visibility"] == "everyone"
    for headers in (waiting, outsider):
        assert client.post("/api/v1/posts", json={"text": "hi", "group_id": group_id},
                           headers=headers).status_code == 403
    assert client.post("/api/v1/posts", json={"text": "hi", "group_id": 999999}, headers=member).status_code == 404
    # The group's audience decides who reads; a per-post visibility would be misleading.
    resp = client.post("/api/v1/posts", json={"text": "hi", "group_id": group_id, "visibility": "only_me"},
                       headers=member)
    assert resp.status_code == 422
    resp = client.patch(f"/api/v1/posts/{post['id']}", json={"visibility": "followers"}, headers=member)
    assert resp.status_code == 422


def test_group_post_readers_are_the_groups_audience(client, app, login):
    owner, owner_id = login("owner")
    member, member_id = login("member")
    waiting, waiting_id = login("waiting")
    outsider, outsider_id = login("outsider")
    members = {member_id: "active", waiting_id: "pending"}
    closed = make_post(client, member, group_id=make_group(app, owner_id, "approval", members))["id"]
    open_ = make_post(client, member, group_id=make_group(app, owner_id, "open", {member_id: "active"}))["id"]

    assert [status(client, h, closed) for h in (owner, member, waiting, outsider)] == [200, 200, 404, 404]
    assert [status(client, h, open_) for h in (owner, member, waiting, outsider)] == [200, 200, 200, 200]
    # For an athlete in a block with the group's owner the group doesn't exist, nor do its posts.
    client.post(f"/api/v1/users/{outsider_id}/block", headers=owner)
    assert status(client, outsider, open_) == 404
