"""Chat: conversations, messages, read receipts, members, limits; the socket frames over a real socket."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

CONVS = "/api/v1/conversations"


# --- helpers -------------------------------------------------------------------------------------------


def direct(client: Any, headers: dict[str, str], other_id: int, status: int = 201) -> dict[str, Any]:
    resp = client.post(CONVS, json={"kind": "direct", "user_id": other_id}, headers=headers)
    assert resp.status_code == status, resp.json
    return resp.json


def group(client: Any, headers: dict[str, str], member_ids: list[int], name: str = "Crew") -> dict[str, Any]:
    resp = client.post(CONVS, json={"kind": "group", "name": name, "member_ids": member_ids}, headers=headers)
    assert resp.status_code == 201, resp.json
    return resp.json


_seq = iter(range(1, 10**9))


def send(client: Any, headers: dict[str, str], conv_id: int, body: str = "hi", client_id: str | None = None,
         status: int = 201) -> dict[str, Any]:
    client_id = client_id or f"c-{next(_seq)}"
    resp = client.post(f"{CONVS}/{conv_id}/messages", json={"client_id": client_id, "body": body}, headers=headers)
    assert resp.status_code == status, resp.json
    return resp.json


def ids(items: list[dict[str, Any]]) -> list[int]:
    return [item["id"] for item in items]


def member_ids_of(conversation: dict[str, Any]) -> list[int]:
    return sorted(m["athlete"]["id"] for m in conversation["members"])


def block(client: Any, headers: dict[str, str], user_id: int) -> None:
    assert client.post(f"/api/v1/users/{user_id}/block", headers=headers).status_code == 204


# --- direct conversations ------------------------------------------------------------------------------


def test_one_direct_conversation_per_pair(client, login):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    first = direct(client, ann, bob_id)
    assert first["kind"] == "direct" and first["name"] is None and member_ids_of(first) == sorted([ann_id, bob_id])
    assert first["unread_count"] == 0 and first["last_message"] is None
    assert direct(client, ann, bob_id, status=200)["id"] == first["id"]
    assert direct(client, bob, ann_id, status=200)["id"] == first["id"]

    resp = client.post(CONVS, json={"kind": "direct", "user_id": ann_id}, headers=ann)
    assert resp.status_code == 422 and "another athlete" in resp.json["message"]
    assert client.post(CONVS, json={"kind": "direct", "user_id": 10**9}, headers=ann).status_code == 404
    resp = client.post(CONVS, json={"kind": "direct"}, headers=ann)
    assert resp.status_code == 422 and "user_id" in resp.json["errors"]["json"]
    resp = client.post(CONVS, json={"kind": "direct", "user_id": bob_id, "name": "x"}, headers=ann)
    assert resp.status_code == 422


def test_private_accounts_accept_messages_only_from_their_follow_graph(client, login):
    ann, ann_id = login("ann")
    carl, carl_id = login("carl", is_private=True)
    dave, dave_id = login("dave")
    eve, _ = login("eve")
    resp = client.post(CONVS, json={"kind": "direct", "user_id": carl_id}, headers=ann)
    assert resp.status_code == 403 and "private" in resp.json["message"]
    # An accepted follower may; so may someone the private athlete follows.
    client.post(f"/api/v1/users/{carl_id}/follow", headers=ann)
    assert client.post(CONVS, json={"kind": "direct", "user_id": carl_id}, headers=ann).status_code == 403
    assert client.post(f"/api/v1/me/follow-requests/{ann_id}/accept", headers=carl).status_code in (200, 204)
    direct(client, ann, carl_id)
    client.post(f"/api/v1/users/{dave_id}/follow", headers=carl)
    direct(client, dave, carl_id)
    # The same rule for being added to a group conversation.
    resp = client.post(CONVS, json={"kind": "group", "name": "g", "member_ids": [carl_id]}, headers=eve)
    assert resp.status_code == 403


def test_blocks_refuse_starting_and_sending_either_way(client, login):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    carl, carl_id = login("carl")
    conv = direct(client, ann, bob_id)
    crew = group(client, ann, [bob_id, carl_id])
    send(client, ann, conv["id"])
    block(client, bob, ann_id)
    for sender in (ann, bob):
        resp = client.post(f"{CONVS}/{conv['id']}/messages", json={"client_id": "x1", "body": "hey"}, headers=sender)
        assert resp.status_code == 403 and "blocked" in resp.json["message"]
        # Starting one: across a block the other athlete doesn't exist (404, as on every other path).
        resp = client.post(CONVS, json={"kind": "direct", "user_id": ann_id if sender is bob else bob_id},
                           headers=sender)
        assert resp.status_code == 404
    # A group conversation still works for both (the message goes to the group) ...
    send(client, ann, crew["id"])
    send(client, bob, crew["id"])
    # ... but neither can bring the other into one, nor start one with them.
    other = group(client, carl, [ann_id])
    resp = client.post(f"{CONVS}/{other['id']}/members", json={"user_id": bob_id}, headers=ann)
    assert resp.status_code == 403  # ann is no admin of carl's conversation
    mine = group(client, ann, [carl_id])
    resp = client.post(f"{CONVS}/{mine['id']}/members", json={"user_id": bob_id}, headers=ann)
    assert resp.status_code == 404  # as an admin: across the block bob doesn't exist for her
    resp = client.post(CONVS, json={"kind": "group", "name": "g", "member_ids": [ann_id]}, headers=bob)
    assert resp.status_code == 422 and resp.json["message"] == f"Unknown athletes: {ann_id}."
    # History stays readable for both members of the direct conversation.
    assert len(client.get(f"{CONVS}/{conv['id']}/messages", headers=bob).json["items"]) == 1


# --- messages ------------------------------------------------------------------------------------------


def test_resend_returns_the_same_message_and_a_changed_body_conflicts(client, login):
    ann, _ = login("ann")
    _, bob_id = login("bob")
    conv = direct(client, ann, bob_id)
    other = group(client, ann, [bob_id])
    first = send(client, ann, conv["id"], "on my way", client_id="dev-1")
    again = send(client, ann, conv["id"], "on my way", client_id="dev-1", status=200)
    assert again == first
    assert first["sender"]["id"] and first["client_id"] == "dev-1" and first["conversation_id"] == conv["id"]
    resp = client.post(f"{CONVS}/{conv['id']}/messages", json={"client_id": "dev-1", "body": "else"}, headers=ann)
    assert resp.status_code == 409 and "client_id" in resp.json["message"]
    resp = client.post(f"{CONVS}/{other['id']}/messages", json={"client_id": "dev-1", "body": "on my way"},
                       headers=ann)
    assert resp.status_code == 409
    assert len(client.get(f"{CONVS}/{conv['id']}/messages", headers=ann).json["items"]) == 1


def test_body_limits_and_validation(client, login):
    ann, _ = login("ann")
    _, bob_id = login("bob")
    conv = direct(client, ann, bob_id)
    url = f"{CONVS}/{conv['id']}/messages"
    for body in ("", "   \n"):
        resp = client.post(url, json={"client_id": "a", "body": body}, headers=ann)
        assert resp.status_code == 422 and resp.json["message"] == "The message is empty."
    resp = client.post(url, json={"client_id": "a", "body": "x" * 4001}, headers=ann)
    assert resp.status_code == 422 and "at most 4000" in resp.json["message"]
    assert resp.json["errors"]["json"]["body"]
    send(client, ann, conv["id"], "x" * 4000)
    assert client.post(url, json={"body": "hi"}, headers=ann).status_code == 422
    assert client.post(url, json={"client_id": "x" * 65, "body": "hi"}, headers=ann).status_code == 422


def test_per_sender_rate_limit_answers_429_with_retry_after(app, client, login, monkeypatch):
    monkeypatch.setitem(app.config, "CHAT_RATE_LIMIT_MESSAGES", 3)
    monkeypatch.setitem(app.config, "CHAT_RATE_LIMIT_WINDOW_S", 3600)  # a fixed window: don't straddle its edge
    ann, _ = login("ann")
    bob, bob_id = login("bob")
    conv = direct(client, ann, bob_id)
    sent = [send(client, ann, conv["id"], client_id=f"r{i}") for i in range(3)]
    resp = client.post(f"{CONVS}/{conv['id']}/messages", json={"client_id": "r3", "body": "hi"}, headers=ann)
    assert resp.status_code == 429 and 1 <= int(resp.headers["Retry-After"]) <= 3600
    assert "at most 3" in resp.json["message"]
    # A resend is not a new message: it is answered, not limited. Other senders have their own budget.
    assert send(client, ann, conv["id"], client_id="r0", status=200)["id"] == sent[0]["id"]
    send(client, bob, conv["id"])


def test_only_members_see_or_touch_a_conversation(client, login):
    ann, _ = login("ann")
    _, bob_id = login("bob")
    eve, eve_id = login("eve")
    conv = direct(client, ann, bob_id)
    message = send(client, ann, conv["id"])
    base = f"{CONVS}/{conv['id']}"
    assert client.get(base, headers=eve).status_code == 404
    assert client.patch(base, json={"muted": True}, headers=eve).status_code == 404
    assert client.get(f"{base}/messages", headers=eve).status_code == 404
    assert client.post(f"{base}/messages", json={"client_id": "e", "body": "x"}, headers=eve).status_code == 404
    assert client.post(f"{base}/read", json={"message_id": message["id"]}, headers=eve).status_code == 404
    assert client.post(f"{base}/members", json={"user_id": eve_id}, headers=eve).status_code == 404
    assert client.delete(f"{base}/members/{eve_id}", headers=eve).status_code == 404
    assert client.get(f"{CONVS}/999999999", headers=ann).status_code == 404
    assert client.get(CONVS, headers=eve).json["items"] == []


def test_history_pages_by_id_both_ways(client, login):
    ann, _ = login("ann")
    bob, bob_id = login("bob")
    conv = direct(client, ann, bob_id)
    sent = [send(client, ann if i % 2 else bob, conv["id"], f"m{i}")["id"] for i in range(7)]
    assert sent == sorted(sent)
    url = f"{CONVS}/{conv['id']}/messages"
    page = client.get(f"{url}?limit=3", headers=ann).json
    assert ids(page["items"]) == sent[:-4:-1] and page["has_more"]
    page = client.get(f"{url}?limit=3&before={sent[4]}", headers=ann).json
    assert ids(page["items"]) == [sent[3], sent[2], sent[1]] and page["has_more"]
    page = client.get(f"{url}?limit=3&before={sent[1]}", headers=ann).json
    assert ids(page["items"]) == [sent[0]] and not page["has_more"]
    page = client.get(f"{url}?after={sent[2]}&limit=3", headers=ann).json
    assert ids(page["items"]) == sent[3:6] and page["has_more"]
    page = client.get(f"{url}?after={sent[5]}", headers=ann).json
    assert ids(page["items"]) == sent[6:] and not page["has_more"]
    assert client.get(f"{url}?after={sent[6]}", headers=ann).json == {"items": [], "has_more": False}
    resp = client.get(f"{url}?after=1&before=5", headers=ann)
    assert resp.status_code == 422


def test_conversation_list_orders_by_activity_with_unread_counts(client, login):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    _, carl_id = login("carl")
    one = direct(client, ann, bob_id)
    crew = group(client, ann, [bob_id, carl_id])
    send(client, ann, one["id"], "first")
    send(client, bob, crew["id"], "mine")  # own messages never count as unread
    send(client, ann, crew["id"], "crew 1")
    last = send(client, ann, crew["id"], "crew 2")

    items = client.get(CONVS, headers=bob).json["items"]
    assert ids(items) == [crew["id"], one["id"]]
    assert [c["unread_count"] for c in items] == [2, 1]
    assert items[0]["last_message"]["body"] == "crew 2" and items[0]["member_count"] == 3
    assert items[0]["role"] == "member" and not items[0]["muted"]
    # Sending is reading: ann's receipt moved to her own latest message, past bob's.
    assert client.get(CONVS, headers=ann).json["items"][0]["unread_count"] == 0

    # Reading moves the count; the next message in the other conversation reorders the list.
    client.post(f"{CONVS}/{crew['id']}/read", json={"message_id": last["id"]}, headers=bob)
    send(client, ann, one["id"], "again")
    items = client.get(CONVS, headers=bob).json["items"]
    assert ids(items) == [one["id"], crew["id"]] and [c["unread_count"] for c in items] == [2, 0]

    page = client.get(f"{CONVS}?limit=1", headers=bob).json
    second = client.get(f"{CONVS}?limit=1&cursor={page['next_cursor']}", headers=bob).json
    assert ids(page["items"]) + ids(second["items"]) == [one["id"], crew["id"]] and second["next_cursor"] is None
    assert client.get(f"{CONVS}?cursor=garbage", headers=bob).status_code == 400
    assert ann_id in [m["athlete"]["id"] for m in items[0]["members"]]


def test_read_receipts_never_move_backwards(client, login):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    conv = direct(client, ann, bob_id)
    other = group(client, ann, [bob_id])
    m = [send(client, ann, conv["id"], f"m{i}")["id"] for i in range(3)]
    foreign = send(client, ann, other["id"])["id"]
    url = f"{CONVS}/{conv['id']}/read"
    assert client.post(url, json={"message_id": m[1]}, headers=bob).json == {
        "conversation_id": conv["id"], "last_read_message_id": m[1], "unread_count": 1}
    assert client.post(url, json={"message_id": m[0]}, headers=bob).json["last_read_message_id"] == m[1]
    assert client.post(url, json={"message_id": foreign}, headers=bob).status_code == 404
    assert client.post(url, json={"message_id": 0}, headers=bob).status_code == 422
    detail = client.get(f"{CONVS}/{conv['id']}", headers=ann).json
    receipts = {mem["athlete"]["id"]: mem["last_read_message_id"] for mem in detail["members"]}
    assert receipts == {ann_id: m[2], bob_id: m[1]}  # a sender has read their own messages


# --- group conversations -------------------------------------------------------------------------------


def test_group_admin_rules_leave_and_promotion(client, login):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    carl, carl_id = login("carl")
    _, dave_id = login("dave")
    crew = group(client, ann, [bob_id, bob_id, ann_id])
    assert crew["role"] == "admin" and member_ids_of(crew) == sorted([ann_id, bob_id])
    base = f"{CONVS}/{crew['id']}"

    assert client.post(f"{base}/members", json={"user_id": carl_id}, headers=bob).status_code == 403
    assert client.patch(base, json={"name": "Mine"}, headers=bob).status_code == 403
    assert client.patch(base, json={"muted": True}, headers=bob).json["muted"] is True
    added = client.post(f"{base}/members", json={"user_id": carl_id}, headers=ann)
    assert added.status_code == 201 and added.json["athlete"]["id"] == carl_id and added.json["role"] == "member"
    assert client.post(f"{base}/members", json={"user_id": carl_id}, headers=ann).status_code == 200
    assert client.post(f"{base}/members", json={"user_id": 10**9}, headers=ann).status_code == 404
    assert client.delete(f"{base}/members/{ann_id}", headers=bob).status_code == 403
    assert client.patch(base, json={"name": "Sunday long run"}, headers=ann).json["name"] == "Sunday long run"

    assert client.patch(f"{base}/members/{ann_id}", json={"role": "member"}, headers=ann).status_code == 422
    assert client.patch(f"{base}/members/{bob_id}", json={"role": "admin"}, headers=ann).json["role"] == "admin"
    assert client.delete(f"{base}/members/{carl_id}", headers=bob).status_code == 204  # an admin removes
    assert client.get(base, headers=carl).status_code == 404
    assert client.post(f"{base}/members", json={"user_id": dave_id}, headers=ann).status_code == 201
    assert client.delete(f"{base}/members/{ann_id}", headers=ann).status_code == 204  # leave
    assert client.delete(f"{base}/members/{bob_id}", headers=bob).status_code == 204  # last admin leaves ...
    detail = client.get(base, headers=login("dave")[0]).json
    assert [(m["athlete"]["id"], m["role"]) for m in detail["members"]] == [(dave_id, "admin")]  # ... promoted
    assert client.delete(f"{base}/members/{dave_id}", headers=login("dave")[0]).status_code == 204
    from models import Conversation, db

    assert db.session.get(Conversation, crew["id"]) is None  # the last one out deletes it

    conv = direct(client, ann, bob_id)
    assert client.delete(f"{CONVS}/{conv['id']}/members/{ann_id}", headers=ann).status_code == 422
    assert client.patch(f"{CONVS}/{conv['id']}", json={"name": "x"}, headers=ann).status_code == 422
    resp = client.post(CONVS, json={"kind": "group", "member_ids": [bob_id]}, headers=ann)
    assert resp.status_code == 422 and "name" in resp.json["errors"]["json"]
    resp = client.post(CONVS, json={"kind": "group", "name": "x", "member_ids": [10**9]}, headers=ann)
    assert resp.status_code == 422


def test_group_size_limit(app, client, login, monkeypatch):
    monkeypatch.setitem(app.config, "CHAT_MAX_GROUP_MEMBERS", 2)
    ann, _ = login("ann")
    _, bob_id = login("bob")
    _, carl_id = login("carl")
    resp = client.post(CONVS, json={"kind": "group", "name": "x", "member_ids": [bob_id, carl_id]}, headers=ann)
    assert resp.status_code == 422 and "at most 2" in resp.json["message"]
    crew = group(client, ann, [bob_id])
    assert client.post(f"{CONVS}/{crew['id']}/members", json={"user_id": carl_id}, headers=ann).status_code == 422


def test_a_groups_chat_mirrors_the_groups_members_and_admins(client, login):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    carl, carl_id = login("carl")
    group_id = client.post("/api/v1/groups", json={"name": "Harriers"}, headers=ann).json["id"]
    client.post(f"/api/v1/groups/{group_id}/join", headers=bob)
    resp = client.post(CONVS, json={"kind": "group", "group_id": group_id}, headers=bob)
    assert resp.status_code == 403  # a plain member can't create it
    chat = client.post(CONVS, json={"kind": "group", "group_id": group_id}, headers=ann)
    assert chat.status_code == 201, chat.json
    chat = chat.json
    assert chat["name"] == "Harriers" and chat["group_id"] == group_id
    assert {m["athlete"]["id"]: m["role"] for m in chat["members"]} == {ann_id: "admin", bob_id: "member"}
    assert client.post(CONVS, json={"kind": "group", "group_id": group_id}, headers=ann).status_code == 200
    assert client.post(CONVS, json={"kind": "group", "group_id": 10**9}, headers=ann).status_code == 404
    resp = client.post(CONVS, json={"kind": "group", "group_id": group_id, "member_ids": [carl_id]}, headers=ann)
    assert resp.status_code == 422
    base = f"{CONVS}/{chat['id']}"
    first = send(client, bob, chat["id"], "hello harriers")

    client.post(f"/api/v1/groups/{group_id}/join", headers=carl)  # joining the group joins its chat
    detail = client.get(base, headers=carl).json
    assert carl_id in member_ids_of(detail) and detail["unread_count"] == 0  # history is there, not unread
    assert ids(client.get(f"{base}/messages", headers=carl).json["items"]) == [first["id"]]
    client.patch(f"/api/v1/groups/{group_id}/members/{bob_id}", json={"role": "admin"}, headers=ann)
    assert client.get(base, headers=bob).json["role"] == "admin"
    assert client.post(f"/api/v1/groups/{group_id}/leave", headers=carl).status_code == 204
    assert client.get(base, headers=carl).status_code == 404
    # Membership is the group's to manage.
    assert client.post(f"{base}/members", json={"user_id": carl_id}, headers=ann).status_code == 409
    assert client.delete(f"{base}/members/{bob_id}", headers=bob).status_code == 409
    assert client.patch(f"{base}/members/{bob_id}", json={"role": "member"}, headers=ann).status_code == 409
    assert client.delete(f"/api/v1/groups/{group_id}", headers=ann).status_code == 204
    assert client.get(base, headers=ann).status_code == 404


# --- notifications and pub/sub -------------------------------------------------------------------------


def test_one_notification_per_message_for_unmuted_members(client, login):
    from models import Notification, db

    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    _, carl_id = login("carl")
    crew = group(client, ann, [bob_id, carl_id], name="Crew")
    client.patch(f"{CONVS}/{crew['id']}", json={"muted": True}, headers=bob)
    message = send(client, ann, crew["id"], "long run sunday?", client_id="n1")
    send(client, ann, crew["id"], "long run sunday?", client_id="n1", status=200)
    rows = db.session.scalars(select(Notification).where(Notification.kind == "message")).all()
    assert [(n.user_id, n.actor_id, n.dedupe_key) for n in rows] == [(carl_id, ann_id, f"message:{message['id']}")]
    assert rows[0].payload["conversation_id"] == crew["id"] and rows[0].payload["message_id"] == message["id"]
    assert rows[0].payload["preview"] == "long run sunday?" and rows[0].payload["conversation_name"] == "Crew"


@pytest.fixture
def sent_tasks(app, monkeypatch):
    """The Celery tasks published during a test, as (name, args); still published for real."""
    celery = app.extensions["celery"]
    real = celery.send_task
    sent: list[tuple[str, list[Any]]] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        task_args = args[1] if len(args) > 1 else kwargs.get("args")
        sent.append((args[0], list(task_args or [])))
        return real(*args, **kwargs)

    monkeypatch.setattr(celery, "send_task", spy)
    return sent


def test_group_message_notifies_in_one_write_with_preferences_blocks_and_mutes(client, login, sent_tasks):
    """One INSERT … SELECT writes the members' notifications: the muted member, the one whose chat category
    is off and the one who blocked the sender after joining get none; one push task covers the rest."""
    from domain.jobs import PUSH_DELIVER_USER as PUSH_TASK
    from domain.jobs import PUSH_DELIVER_USERS as PUSH_MANY_TASK
    from models import Notification, db

    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    carl, carl_id = login("carl")
    dave, dave_id = login("dave")
    _, erin_id = login("erin")
    _, finn_id = login("finn")
    crew = group(client, ann, [bob_id, carl_id, dave_id, erin_id, finn_id])
    client.patch(f"{CONVS}/{crew['id']}", json={"muted": True}, headers=bob)
    assert client.patch("/api/v1/me/preferences", json={"notifications": {"chat": False}},
                        headers=carl).status_code == 200
    block(client, dave, ann_id)
    sent_tasks.clear()
    message = send(client, ann, crew["id"], "intervals at 6", client_id="g1")
    rows = db.session.scalars(select(Notification).where(Notification.kind == "message")
                              .order_by(Notification.user_id)).all()
    assert [n.user_id for n in rows] == [erin_id, finn_id]
    assert all(n.actor_id == ann_id and n.dedupe_key == f"message:{message['id']}" for n in rows)
    assert rows[0].payload == {"conversation_id": crew["id"], "message_id": message["id"],
                               "conversation_kind": "group", "conversation_name": "Crew", "display_name": "ann",
                               "preview": "intervals at 6"}
    assert sent_tasks == [(PUSH_MANY_TASK, [[erin_id, finn_id]])]
    # The collapse window is open for both: the next message sends no task; a direct one sends deliver_user.
    send(client, ann, crew["id"], "or 7?", client_id="g2")
    assert sent_tasks == [(PUSH_MANY_TASK, [[erin_id, finn_id]])]
    send(client, ann, direct(client, ann, bob_id)["id"], "you in?", client_id="d1")
    assert sent_tasks[1:] == [(PUSH_TASK, [bob_id])]


def test_notify_many_keeps_notifys_rules_and_effects(client, app, login):
    """The bulk writer against the one-by-one writer: same rows (self, blocks, preferences, dedupe), the same
    live frames for in-app kinds, and pushes scheduled for the recipients written."""
    from domain.notifications.outbox import notify, notify_many
    from models import Notification, db
    from models.pubsub import pubsub

    ann, ann_id = login("ann")
    _, bob_id = login("bob")
    carl, carl_id = login("carl")
    _, dave_id = login("dave")
    block(client, carl, bob_id)
    client.patch("/api/v1/me/preferences", json={"notifications": {"follows": False}}, headers=ann)
    listener = pubsub.client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(*(pubsub.user_channel(u) for u in (ann_id, bob_id, carl_id, dave_id)))
    try:
        time.sleep(0.05)
        with app.app_context():
            everyone = [ann_id, bob_id, carl_id, dave_id, dave_id]
            assert notify_many(everyone, "follow", "follow:many", actor_id=bob_id) == {
                dave_id: db.session.scalar(select(Notification.id).where(Notification.dedupe_key == "follow:many"))}
            one_by_one = {u: notify(u, "follow", "follow:one", actor_id=bob_id) for u in dict.fromkeys(everyone)}
            assert [u for u, note in one_by_one.items() if note is not None] == [dave_id]
            assert notify_many(everyone, "follow", "follow:many", actor_id=bob_id) == {}  # deduplicated
            written = notify_many([ann_id, dave_id], "achievement", "achievement:many",
                                  payload={"kind": "pr"}, activity_id=None)
            assert sorted(written) == [ann_id, dave_id]
            assert db.session.info["staged:push"] == {ann_id, dave_id}  # delivery scheduled after the commit
            db.session.commit()
        frames = []
        deadline = time.monotonic() + 1.0
        while len(frames) < 4 and time.monotonic() < deadline:
            if got := listener.get_message(timeout=0.1):
                frames.append((got["channel"].decode(), json.loads(got["data"])))
        assert listener.get_message(timeout=0.2) is None
    finally:
        listener.close()
    by_kind = sorted((channel, frame["notification"]["kind"], frame["notification"]["refs"]["activity_id"])
                     for channel, frame in frames)
    assert by_kind == sorted([(pubsub.user_channel(dave_id), "follow", None)] * 2 + [
        (pubsub.user_channel(ann_id), "achievement", None), (pubsub.user_channel(dave_id), "achievement", None)])
    page = client.get("/api/v1/notifications", headers=ann).json
    ann_frame = next(f for c, f in frames if c == pubsub.user_channel(ann_id))
    assert ann_frame["notification"] == page["items"][0]
    with pytest.raises(TypeError):
        notify_many([ann_id], "kudos", "kudos:x", bogus_id=1)


def test_deliver_users_fans_out_one_run_per_user(app, monkeypatch):
    from tasks import push

    runs: list[list[Any]] = []
    monkeypatch.setattr(push.deliver_user, "apply_async", lambda args, **_: runs.append(args))
    assert push.deliver_users([3, 5, 8]) == 3
    assert runs == [[3], [5], [8]]


def test_message_json_is_what_the_rest_schema_dumps():
    from datetime import UTC, datetime

    from domain.chat.service import message_json
    from webapp.chat.schemas import MessageSchema

    for avatar in (None, "https://cdn.example.com/a.png"):
        message = {"id": 12, "conversation_id": 3, "client_id": "c-1", "body": "hi ✓",
                   "sender": {"id": 4, "display_name": "Ann", "avatar_url": avatar},
                   "created_at": datetime(2026, 11, 21, 7, 5, 3, 123456, tzinfo=UTC)}
        assert json.dumps(message_json(message)) == json.dumps(MessageSchema().dump(message))


def test_messages_reach_every_members_channel_after_commit(client, login):
    from models.pubsub import pubsub

    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    conv = direct(client, ann, bob_id)
    listener = pubsub.client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(pubsub.user_channel(bob_id), pubsub.user_channel(ann_id))
    try:
        time.sleep(0.05)
        message = send(client, ann, conv["id"], "ping")
        frames = []
        deadline = time.monotonic() + 2
        while len(frames) < 2 and time.monotonic() < deadline:
            got = listener.get_message(timeout=0.2)
            if got:
                frames.append((got["channel"].decode(), json.loads(got["data"])))
        assert {channel for channel, _ in frames} == {pubsub.user_channel(bob_id), pubsub.user_channel(ann_id)}
        assert all(frame == {"type": "chat.message", "message": message} for _, frame in frames)
        client.post(f"{CONVS}/{conv['id']}/read", json={"message_id": message["id"]}, headers=bob)
        for _ in range(2):  # to both members (the reader's other devices too)
            got = listener.get_message(timeout=1)
            assert json.loads(got["data"]) == {"type": "chat.read", "conversation_id": conv["id"],
                                               "user_id": bob_id, "message_id": message["id"]}
        # A refused send publishes nothing.
        client.post(f"{CONVS}/{conv['id']}/messages", json={"client_id": "z", "body": ""}, headers=ann)
        assert listener.get_message(timeout=0.3) is None
    finally:
        listener.close()


# --- concurrency (real commits) ------------------------------------------------------------------------


@pytest.fixture
def committed_login(app, committed, make_token):
    client = app.test_client()

    def do(name: str) -> tuple[dict[str, str], int]:
        headers = {"Authorization": f"Bearer {make_token(name + '@example.com')}"}
        resp = client.get("/api/v1/me", headers=headers)
        assert resp.status_code == 200, resp.json
        return headers, resp.json["id"]

    return do


def test_concurrent_resends_and_starts_make_one_of_each(app, committed_login):
    from models import Conversation, Message, db

    ann, ann_id = committed_login("ann")
    bob, bob_id = committed_login("bob")
    starts = [(ann, bob_id), (bob, ann_id)] * 4
    barrier = threading.Barrier(len(starts))

    def start(job: tuple[dict[str, str], int]) -> tuple[int, int]:
        headers, other = job
        barrier.wait()
        resp = app.test_client().post(CONVS, json={"kind": "direct", "user_id": other}, headers=headers)
        return resp.status_code, resp.json["id"]

    with ThreadPoolExecutor(len(starts)) as pool:
        results = list(pool.map(start, starts))
    assert len({cid for _, cid in results}) == 1 and sorted(code for code, _ in results).count(201) == 1
    conv_id = results[0][1]

    resends = 8
    barrier = threading.Barrier(resends)

    def post(_: int) -> tuple[int, int]:
        barrier.wait()
        resp = app.test_client().post(f"{CONVS}/{conv_id}/messages", json={"client_id": "same", "body": "once"},
                                      headers=ann)
        return resp.status_code, resp.json["id"]

    with ThreadPoolExecutor(resends) as pool:
        results = list(pool.map(post, range(resends)))
    assert sorted(code for code, _ in results) == [200] * (resends - 1) + [201]
    assert len({mid for _, mid in results}) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Message)) == 1
        assert db.session.scalar(select(func.count()).select_from(Conversation)) == 1
        db.session.remove()


def test_catch_up_after_an_id_misses_nothing_while_senders_race(app, committed_login, monkeypatch):
    """Several senders in several conversations at once, and a reader that repeatedly asks for "everything
    after the last id I saw": it must end with every message, each exactly once. Without numbering under the
    send lock a message numbered earlier but committed later would be skipped."""
    from domain.chat import service

    monkeypatch.setitem(app.config, "CHAT_RATE_LIMIT_MESSAGES", 0)
    _, reader_id = committed_login("reader")
    senders = [committed_login(f"s{i}") for i in range(6)]
    setup = app.test_client()
    convs = [direct(setup, headers, reader_id)["id"] for headers, _ in senders]
    per_sender = 20
    done = threading.Event()
    seen: list[int] = []

    def read_loop() -> None:
        last = 0
        with app.app_context():
            while True:
                finished = done.is_set()
                page = service.sync(reader_id, last, 1000)
                from models import db

                db.session.remove()
                seen.extend(m["id"] for m in page["messages"])
                if page["messages"]:
                    last = page["messages"][-1]["id"]
                elif finished:
                    return

    def write(i: int) -> list[int]:
        headers, _ = senders[i]
        c = app.test_client()
        return [send(c, headers, convs[i], f"{i}-{n}", client_id=f"{i}-{n}")["id"] for n in range(per_sender)]

    reader_thread = threading.Thread(target=read_loop)
    reader_thread.start()
    with ThreadPoolExecutor(len(senders)) as pool:
        written = [mid for ids_ in pool.map(write, range(len(senders))) for mid in ids_]
    done.set()
    reader_thread.join(30)
    assert sorted(seen) == sorted(written) and len(seen) == len(set(seen)) == len(senders) * per_sender
    assert seen == sorted(seen)


# --- socket frames (real sockets) ----------------------------------------------------------------------


def _token(make_token: Any, name: str) -> str:
    return make_token(name + "@example.com")


def test_socket_send_ack_delivery_resend_and_errors(app, ws_connect, committed_login, make_token):
    ann, ann_id = committed_login("ann")
    bob, bob_id = committed_login("bob")
    committed_login("eve")
    http = app.test_client()
    conv = direct(http, ann, bob_id)
    ann_ws = ws_connect(token=_token(make_token, "ann"))
    bob_ws = ws_connect(token=_token(make_token, "bob"))
    ann_phone = ws_connect(token=_token(make_token, "ann"))

    ann_ws.send({"type": "chat.send", "ref": "r1", "conversation_id": conv["id"], "client_id": "w1", "body": "yo"})
    ack = ann_ws.recv_type("chat.ack")
    assert ack["ref"] == "r1" and ack["client_id"] == "w1" and ack["created"] is True
    message = ack["message"]
    assert message["body"] == "yo" and message["sender"]["id"] == ann_id
    assert bob_ws.recv_type("chat.message") == {"type": "chat.message", "message": message}
    assert ann_phone.recv_type("chat.message")["message"]["id"] == message["id"]  # the sender's other device

    ann_ws.send({"type": "chat.send", "conversation_id": conv["id"], "client_id": "w1", "body": "yo"})
    again = ann_ws.recv_type("chat.ack")
    assert again["message"] == message and again["created"] is False
    assert [f for f in bob_ws.drain(0.3) if f["type"] == "chat.message"] == []  # a resend is not redelivered
    # REST sees the same message, the same JSON.
    assert http.get(f"{CONVS}/{conv['id']}/messages", headers=bob).json["items"] == [message]

    ann_ws.send({"type": "chat.send", "conversation_id": conv["id"], "client_id": "w2", "body": " "})
    err = ann_ws.recv_type("error")
    assert err["status"] == 422 and err["message"] == "The message is empty."
    ann_ws.send({"type": "chat.send", "conversation_id": conv["id"], "body": "no id"})
    assert ann_ws.recv_type("error")["status"] == 422
    eve_ws = ws_connect(token=_token(make_token, "eve"))
    eve_ws.send({"type": "chat.send", "conversation_id": conv["id"], "client_id": "e", "body": "hi"})
    assert eve_ws.recv_type("error")["status"] == 404
    block(http, bob, ann_id)
    ann_ws.send({"type": "chat.send", "conversation_id": conv["id"], "client_id": "w3", "body": "hello?"})
    err = ann_ws.recv_type("error")
    assert (err["status"], err["code"]) == (403, "blocked")


def test_socket_rate_limit_typing_and_read(app, ws_connect, committed_login, make_token, monkeypatch):
    monkeypatch.setitem(app.config, "CHAT_RATE_LIMIT_MESSAGES", 1)
    monkeypatch.setitem(app.config, "CHAT_RATE_LIMIT_WINDOW_S", 3600)
    ann, ann_id = committed_login("ann")
    _, bob_id = committed_login("bob")
    conv = direct(app.test_client(), ann, bob_id)
    ann_ws = ws_connect(token=_token(make_token, "ann"))
    bob_ws = ws_connect(token=_token(make_token, "bob"))

    ann_ws.send({"type": "chat.send", "conversation_id": conv["id"], "client_id": "a", "body": "one"})
    message = ann_ws.recv_type("chat.ack")["message"]
    ann_ws.send({"type": "chat.send", "conversation_id": conv["id"], "client_id": "b", "body": "two"})
    err = ann_ws.recv_type("error")
    assert err["status"] == 429 and err["code"] == "rate_limited" and 1 <= err["retry_after"] <= 3600

    ann_ws.send({"type": "chat.typing", "conversation_id": conv["id"]})
    ann_ws.send({"type": "chat.typing", "conversation_id": conv["id"]})  # within 2 s: dropped
    typing = bob_ws.recv_type("chat.typing")
    assert typing == {"type": "chat.typing", "conversation_id": conv["id"], "user_id": ann_id}
    assert [f for f in bob_ws.drain(0.3) if f["type"] == "chat.typing"] == []
    assert [f for f in ann_ws.drain(0.1) if f["type"] == "chat.typing"] == []  # not echoed to the typist

    bob_ws.send({"type": "chat.read", "ref": 7, "conversation_id": conv["id"], "message_id": message["id"]})
    reads = [bob_ws.recv_type("chat.read"), bob_ws.recv_type("chat.read")]  # the reply and the broadcast
    reply = next(f for f in reads if "ref" in f)
    assert reply == {"type": "chat.read", "ref": 7, "conversation_id": conv["id"], "user_id": bob_id,
                     "message_id": message["id"], "unread_count": 0}
    receipt = ann_ws.recv_type("chat.read")
    assert receipt == {"type": "chat.read", "conversation_id": conv["id"], "user_id": bob_id,
                       "message_id": message["id"]}


def test_reconnect_with_last_seen_id_gets_exactly_what_was_missed(app, ws_connect, committed_login, make_token):
    ann, _ = committed_login("ann")
    _, bob_id = committed_login("bob")
    _, carl_id = committed_login("carl")
    http = app.test_client()
    one = direct(http, ann, bob_id)
    crew = group(http, ann, [bob_id, carl_id])
    bob_ws = ws_connect(token=_token(make_token, "bob"))
    seen = send(http, ann, one["id"], "before the drop")
    assert bob_ws.recv_type("chat.message")["message"]["id"] == seen["id"]
    bob_ws.close()

    missed = [send(http, ann, crew["id"], "while away 1"), send(http, ann, one["id"], "while away 2")]
    other = group(http, ann, [carl_id])  # a conversation bob is not in: its messages are not his
    send(http, ann, other["id"], "not for bob")

    back = ws_connect(token=_token(make_token, "bob"), last_message_id=seen["id"])
    sync = back.recv_type("chat.sync")
    assert sync["messages"] == missed and sync["has_more"] is False
    after_sync = send(http, ann, one["id"], "live again")
    assert back.recv_type("chat.message")["message"]["id"] == after_sync["id"]

    back.send({"type": "chat.sync", "after_id": 0, "limit": 2})
    page = back.recv_type("chat.sync")
    assert ids(page["messages"]) == [seen["id"], missed[0]["id"]] and page["has_more"] is True
    back.send({"type": "chat.sync", "after_id": -1})
    assert back.recv_type("error")["status"] == 422
    bad = ws_connect(token=_token(make_token, "bob"), last_message_id="x")
    assert bad.recv_type("error")["status"] == 422

