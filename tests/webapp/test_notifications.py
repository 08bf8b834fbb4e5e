"""In-app notifications: written with kudos and comments, honouring preferences, blocks and dedupe keys;
listed newest first with the unread count; marked read by id or all at once.

The feed hooks in tasks.feed are replaced by recorders (follows and blocks call them).
"""

from __future__ import annotations

import pytest

from tests.support.social import make_activity, record_feed_calls


@pytest.fixture(autouse=True)
def feed_calls(monkeypatch):
    return record_feed_calls(monkeypatch)


def notifications(client, headers, query: str = "") -> dict:
    resp = client.get(f"/api/v1/notifications{query}", headers=headers)
    assert resp.status_code == 200, resp.json
    return resp.json


def unread(client, headers) -> int:
    return client.get("/api/v1/notifications/unread-count", headers=headers).json["unread_count"]


def test_kudos_notifies_the_owner(client, login):
    ann, _ = login("ann")
    bob, bob_id = login("bob", display_name="Bob")
    activity_id = make_activity(client, ann, name="Hill repeats")
    assert unread(client, ann) == 0
    client.post(f"/api/v1/activities/{activity_id}/kudos", headers=bob)

    page = notifications(client, ann)
    assert page["unread_count"] == 1 and unread(client, ann) == 1
    (note,) = page["items"]
    assert note["kind"] == "kudos" and note["read"] is False and note["created_at"]
    assert note["actor"] == {"id": bob_id, "display_name": "Bob", "avatar_url": None}
    assert note["refs"] == {"activity_id": activity_id, "post_id": None, "comment_id": None, "group_id": None,
                            "achievement_id": None}
    assert note["payload"] == {"display_name": "Bob", "title": "Hill repeats"}
    # Nothing for the athlete who acted.
    assert notifications(client, bob)["items"] == []


def test_comment_notifies_the_owner_and_goes_with_the_comment(client, login):
    ann, _ = login("ann")
    bob, bob_id = login("bob")
    post_id = client.post("/api/v1/posts", json={"text": "Who's in for Sunday?"}, headers=ann).json["id"]
    comment = client.post(f"/api/v1/posts/{post_id}/comments", json={"text": "Me!"}, headers=bob).json
    (note,) = notifications(client, ann)["items"]
    assert note["kind"] == "comment" and note["actor"]["id"] == bob_id
    assert note["refs"]["post_id"] == post_id and note["refs"]["comment_id"] == comment["id"]
    assert note["payload"]["text"] == "Me!" and note["payload"]["title"] == "Who's in for Sunday?"
    # Commenting on your own post notifies nobody.
    client.post(f"/api/v1/posts/{post_id}/comments", json={"text": "Meet at 8"}, headers=ann)
    assert unread(client, ann) == 1
    client.delete(f"/api/v1/comments/{comment['id']}", headers=bob)
    assert notifications(client, ann)["items"] == [] and unread(client, ann) == 0


def test_preferences_are_honoured(client, login):
    ann, _ = login("ann")
    bob, _ = login("bob")
    activity_id = make_activity(client, ann)
    resp = client.patch("/api/v1/me/preferences", json={"notifications": {"kudos": False}}, headers=ann)
    assert resp.status_code == 200 and resp.json["notifications"]["comments"] is True
    assert client.post(f"/api/v1/activities/{activity_id}/kudos", headers=bob).status_code == 201
    client.post(f"/api/v1/activities/{activity_id}/comments", json={"text": "Strong"}, headers=bob)
    assert [n["kind"] for n in notifications(client, ann)["items"]] == ["comment"]

    client.patch("/api/v1/me/preferences", json={"notifications": {"comments": False}}, headers=ann)
    client.post(f"/api/v1/activities/{activity_id}/comments", json={"text": "again"}, headers=bob)
    assert unread(client, ann) == 1


def test_repeats_notify_once(client, app, login):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    activity_id = make_activity(client, ann)
    for _ in range(3):
        client.post(f"/api/v1/activities/{activity_id}/kudos", headers=bob)
    assert unread(client, ann) == 1
    # A stage that runs twice writes the same key twice: the second write is a no-op.
    from domain.notifications.outbox import notify
    from models import db

    with app.app_context():
        key = f"kudos:activity:{activity_id}:{bob_id}"
        assert notify(ann_id, "kudos", key, actor_id=bob_id, activity_id=activity_id) is None
        first = notify(ann_id, "achievement", "achievement:test:1")
        assert first is not None and notify(ann_id, "achievement", "achievement:test:1") is None
        db.session.commit()
    page = notifications(client, ann)
    assert [n["kind"] for n in page["items"]] == ["achievement", "kudos"] and page["unread_count"] == 2
    assert page["items"][0]["actor"] is None


def test_unkudos_removes_its_notification_and_kudos_again_notifies_again(client, login):
    ann, _ = login("ann")
    bob, _ = login("bob")
    url = f"/api/v1/activities/{make_activity(client, ann)}/kudos"
    client.post(url, headers=bob)
    assert unread(client, ann) == 1
    client.delete(url, headers=bob)
    assert notifications(client, ann)["items"] == [] and unread(client, ann) == 0
    client.post(url, headers=bob)
    assert [n["kind"] for n in notifications(client, ann)["items"]] == ["kudos"]


def test_no_notification_across_a_block(client, app, login):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    cat, _ = login("cat")
    activity_id = make_activity(client, ann)
    client.post(f"/api/v1/activities/{activity_id}/kudos", headers=bob)
    client.post(f"/api/v1/activities/{activity_id}/kudos", headers=cat)
    assert unread(client, ann) == 2

    client.post(f"/api/v1/users/{bob_id}/block", headers=ann)
    # Earlier notifications from the blocked athlete disappear from the list and the badge...
    assert [n["actor"]["display_name"] for n in notifications(client, ann)["items"]] == ["cat"]
    assert unread(client, ann) == 1
    # ...and nothing new can come from them: the activity is hidden from them, and notify refuses anyway.
    assert client.post(f"/api/v1/activities/{activity_id}/comments", json={"text": "hi"},
                       headers=bob).status_code == 404
    from domain.notifications.outbox import notify

    with app.app_context():
        assert notify(ann_id, "comment", "comment:test", actor_id=bob_id) is None
    client.delete(f"/api/v1/users/{bob_id}/block", headers=ann)
    assert unread(client, ann) == 2


def test_follow_notifications_are_listed(client, login):
    ann, ann_id = login("ann", is_private=True)
    bob, bob_id = login("bob")
    client.post(f"/api/v1/users/{ann_id}/follow", headers=bob)
    (note,) = notifications(client, ann)["items"]
    assert note["kind"] == "follow_request" and note["actor"]["id"] == bob_id
    client.post(f"/api/v1/me/follow-requests/{bob_id}/accept", headers=ann)
    assert [n["kind"] for n in notifications(client, bob)["items"]] == ["follow_accepted"]


def test_newest_first_with_cursor(client, login):
    ann, _ = login("ann")
    activity_ids = [make_activity(client, ann) for _ in range(3)]
    givers = [login(f"fan{i}")[0] for i in range(3)]
    for activity_id in activity_ids:
        for headers in givers:
            client.post(f"/api/v1/activities/{activity_id}/kudos", headers=headers)
    seen: list[int] = []
    page = notifications(client, ann, "?limit=4")
    assert page["unread_count"] == 9
    seen += [n["id"] for n in page["items"]]
    while page["next_cursor"]:
        page = notifications(client, ann, f"?limit=4&cursor={page['next_cursor']}")
        seen += [n["id"] for n in page["items"]]
    assert len(seen) == 9 and seen == sorted(seen, reverse=True)
    assert client.get("/api/v1/notifications?cursor=%%%", headers=ann).status_code == 400
    assert client.get("/api/v1/notifications?limit=0", headers=ann).status_code == 422


def test_mark_read_by_ids_and_all(client, login):
    ann, _ = login("ann")
    bob, _ = login("bob")
    activity_id = make_activity(client, ann)
    bob_activity = make_activity(client, bob)
    for i in range(3):
        client.post(f"/api/v1/activities/{activity_id}/comments", json={"text": f"c{i}"}, headers=bob)
    client.post(f"/api/v1/activities/{bob_activity}/kudos", headers=ann)
    bobs_note = notifications(client, bob)["items"][0]["id"]
    items = notifications(client, ann)["items"]

    resp = client.post("/api/v1/notifications/read", json={"ids": [items[0]["id"], bobs_note]}, headers=ann)
    assert resp.status_code == 200 and resp.json == {"unread_count": 2}
    assert [n["read"] for n in notifications(client, ann)["items"]] == [True, False, False]
    assert unread(client, bob) == 1, "someone else's id is ignored"
    assert client.post("/api/v1/notifications/read", json={"all": True}, headers=ann).json == {"unread_count": 0}
    assert all(n["read"] for n in notifications(client, ann)["items"])
    assert unread(client, bob) == 1


@pytest.mark.parametrize("body", [{}, {"all": False}, {"ids": []}, {"ids": [1], "all": True}, {"ids": ["x"]},
                                  {"everything": True}])
def test_mark_read_rejects_ambiguous_bodies(client, login, body):
    ann, _ = login("ann")
    assert client.post("/api/v1/notifications/read", json=body, headers=ann).status_code == 422


# --- live notification frames and push-only kinds -----------------------------------------------------------

class FrameListener:
    """A Redis pub/sub subscriber on one user's channel, as a web process holding their socket would be."""

    def __init__(self, user_id: int) -> None:
        from models.pubsub import pubsub

        self.sub = pubsub.client.pubsub(ignore_subscribe_messages=True)
        self.sub.subscribe(pubsub.user_channel(user_id))
        self.sub.get_message(timeout=1.0)  # the subscribe confirmation

    def frames(self, wait_s: float = 0.3) -> list[dict]:
        import json
        import time

        out, deadline = [], time.monotonic() + wait_s
        while time.monotonic() < deadline:
            message = self.sub.get_message(timeout=0.05)
            if message is not None:
                out.append(json.loads(message["data"]))
        return out

    def close(self) -> None:
        self.sub.close()


@pytest.fixture
def listen():
    listeners: list[FrameListener] = []

    def make(user_id: int) -> FrameListener:
        listeners.append(FrameListener(user_id))
        return listeners[-1]

    yield make
    for listener in listeners:
        listener.close()


def test_a_notification_goes_out_live_as_the_same_json_as_the_list(client, login, listen):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob", display_name="Bob")
    activity_id = make_activity(client, ann, name="Morning Run")
    frames = listen(ann_id)
    client.post(f"/api/v1/activities/{activity_id}/kudos", headers=bob)
    (frame,) = frames.frames()
    (item,) = notifications(client, ann)["items"]
    assert frame == {"type": "notification", "notification": item}
    assert item["kind"] == "kudos" and item["actor"]["id"] == bob_id and item["refs"]["activity_id"] == activity_id


def test_the_frame_waits_for_the_commit_and_a_rollback_sends_nothing(client, app, login, listen):
    from domain.notifications.outbox import notify
    from models import db

    _, ann_id = login("ann")
    frames = listen(ann_id)
    with app.app_context():
        assert notify(ann_id, "achievement", "achievement:rolled-back") is not None
        assert frames.frames() == [], "nothing before the commit"
        db.session.rollback()
    assert frames.frames() == []
    with app.app_context():
        note_id = notify(ann_id, "achievement", "achievement:kept", payload={"kind": "pr"})
        assert frames.frames(0.15) == []
        db.session.commit()
    (frame,) = frames.frames()
    assert frame["notification"]["id"] == note_id and frame["notification"]["payload"] == {"kind": "pr"}
    assert frame["notification"]["read"] is False and frame["notification"]["actor"] is None


def test_chat_messages_are_push_only(client, app, login, listen):
    from domain.notifications.outbox import notify
    from models import db

    ann, ann_id = login("ann")
    _, bob_id = login("bob")
    frames = listen(ann_id)
    with app.app_context():
        assert notify(ann_id, "message", "message:1", actor_id=bob_id,
                      payload={"conversation_id": 7, "message_id": 1, "preview": "hi"}) is not None
        notify(ann_id, "achievement", "achievement:x")
        db.session.commit()
    assert [f["notification"]["kind"] for f in frames.frames()] == ["achievement"]
    page = notifications(client, ann)
    assert [n["kind"] for n in page["items"]] == ["achievement"] and page["unread_count"] == 1
    assert unread(client, ann) == 1
    assert client.post("/api/v1/notifications/read", json={"all": True}, headers=ann).json == {"unread_count": 0}
