"""The socket at /api/v1/ws over real sockets: handshake, frames, pub/sub fan-out, slow clients, presence, and
the production server model (gunicorn gevent, 2 processes) end to end."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from flask import Flask
from flask_smorest import abort

from models.pubsub import pubsub
from tests.support.processes import gunicorn
from tests.support.ws import WSClient, WSClosed, connect
from webapp.realtime import frames
from webapp.realtime.hub import TokenBucket, get_hub


# -- handlers and a connect hook registered by this test module (the way feature packages register theirs) -------
@frames.handler("test.echo")
def _echo(conn: frames.Connection, frame: frames.Frame) -> frames.Frame:
    return {"type": "test.echoed", "user_id": conn.user_id, "n": frame.get("n")}


@frames.handler("test.fail")
def _fail(conn: frames.Connection, frame: frames.Frame) -> frames.Frame | None:
    how = frame.get("how")
    if how == "frame_error":
        raise frames.FrameError("not_member", "You are not a member of this conversation.", status=403)
    if how == "abort":
        abort(404, message="No such conversation.")
    raise RuntimeError("boom")


@frames.handler("test.sub")
def _sub(conn: frames.Connection, frame: frames.Frame) -> frames.Frame:
    channel = pubsub.prefix + "test:" + str(frame["name"])
    if frame.get("off"):
        conn.unsubscribe(channel)
    else:
        conn.subscribe(channel)
    return {"type": "test.subscribed", "channel": channel}


@frames.handler("test.quiet")
def _quiet(conn: frames.Connection, frame: frames.Frame) -> None:
    conn.send({"type": "test.pushed", "n": frame.get("n")})


@frames.on_connect
def _hook(conn: frames.Connection, query: dict[str, str]) -> None:
    if "test_hook" in query:
        conn.send({"type": "test.connected", "query": query, "user_id": conn.user_id})


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def token_for(make_token: Any) -> Callable[[str], str]:
    return lambda name: make_token(f"{name}@example.com")


# -- handshake ------------------------------------------------------------------------------------------------
def test_hello_with_header_token(ws_connect: Any, live_login: Any, token_for: Any) -> None:
    _headers, ann = live_login("ann")
    client: WSClient = ws_connect(token=token_for("ann"))
    assert client.hello is not None, (client.close_code, client.close_reason)
    assert client.hello["user_id"] == ann
    assert client.hello["heartbeat_s"] == 25
    assert client.hello["server"]["pid"] == os.getpid()
    assert len(client.hello["connection_id"]) >= 8
    client.send({"type": "ping", "ref": 7})
    assert client.recv() == {"type": "pong", "ref": 7}
    client.send({"type": "ping"})
    assert client.recv() == {"type": "pong"}


def test_handshake_provisions_a_new_athlete(ws_connect: Any, live_client: Any, token_for: Any) -> None:
    client = ws_connect(token=token_for("newcomer"))
    assert client.hello is not None
    me = live_client.get("/api/v1/me", headers={"Authorization": f"Bearer {token_for('newcomer')}"}).json
    assert me["id"] == client.hello["user_id"]


def test_ticket_opens_once(ws_connect: Any, live_client: Any, live_login: Any) -> None:
    headers, ann = live_login("ann")
    resp = live_client.post("/api/v1/ws/ticket", headers=headers)
    assert resp.status_code == 201, resp.json
    assert resp.json["expires_in"] == 30
    ticket = resp.json["ticket"]
    assert len(ticket) >= 32

    client = ws_connect(ticket=ticket)
    assert client.hello is not None and client.hello["user_id"] == ann

    reused = ws_connect(ticket=ticket)
    assert reused.hello is None
    assert (reused.close_code, reused.close_reason) == (4401, "invalid or expired ticket")


def test_ticket_needs_authentication(live_client: Any) -> None:
    resp = live_client.post("/api/v1/ws/ticket")
    assert resp.status_code == 401
    assert "message" in resp.json


def test_expired_ticket_refused(ws_connect: Any, live_client: Any, live_login: Any, app: Flask,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    headers, _ann = live_login("ann")
    monkeypatch.setitem(app.config, "WS_TICKET_TTL_S", 1)
    resp = live_client.post("/api/v1/ws/ticket", headers=headers)
    assert resp.json["expires_in"] == 1
    time.sleep(1.3)
    client = ws_connect(ticket=resp.json["ticket"])
    assert (client.close_code, client.close_reason) == (4401, "invalid or expired ticket")


@pytest.mark.parametrize("case", ["missing", "garbage", "wrong_scheme", "expired", "bad_ticket"])
def test_unauthenticated_handshakes_closed_with_4401(ws_connect: Any, make_token: Any, case: str) -> None:
    now = int(time.time())
    kwargs: dict[str, Any] = {
        "missing": {},
        "garbage": {"token": "not.a.token"},
        "wrong_scheme": {"headers": {"Authorization": "Basic " + make_token("ann@example.com")}},
        "expired": {"token": make_token("ann@example.com", iat=now - 7200, auth_time=now - 7200, exp=now - 3600)},
        "bad_ticket": {"ticket": "never-issued"},
    }[case]
    expected = {"missing": "unauthenticated", "garbage": "invalid token", "wrong_scheme": "unauthenticated",
                "expired": "token expired", "bad_ticket": "invalid or expired ticket"}[case]
    client = ws_connect(**kwargs)
    assert client.hello is None
    assert (client.close_code, client.close_reason) == (4401, expected)


# -- frames ---------------------------------------------------------------------------------------------------
def test_bad_frames_answered_with_errors_socket_stays_open(ws_connect: Any, token_for: Any) -> None:
    client = ws_connect(token=token_for("ann"))
    client.send("{not json")
    assert client.recv()["code"] == "bad_json"
    client.send("[1, 2]")
    assert client.recv()["code"] == "bad_frame"
    client.send({"no": "type"})
    assert client.recv()["code"] == "bad_frame"
    client.send(b"\x00\x01")
    assert client.recv()["code"] == "bad_frame"
    client.send({"type": "nope.nope", "ref": "r1"})
    err = client.recv()
    assert err == {"type": "error", "code": "unknown_type", "message": "Unknown frame type 'nope.nope'.",
                   "status": 400, "ref": "r1"}
    client.send({"type": "ping", "ref": "big", "pad": "x" * 40_000})
    err = client.recv()
    assert (err["code"], err["status"]) == ("frame_too_large", 413)
    client.send({"type": "ping", "ref": "still-open"})
    assert client.recv() == {"type": "pong", "ref": "still-open"}


def test_frame_above_hard_max_closes_with_1009(ws_connect: Any, token_for: Any) -> None:
    client = ws_connect(token=token_for("ann"))
    client.send({"type": "ping", "pad": "x" * 300_000})
    code, _reason = client.wait_closed()
    assert code == 1009


def test_registered_handlers_get_called_with_ref_echoed(ws_connect: Any, token_for: Any) -> None:
    client = ws_connect(token=token_for("ann"))
    user_id = client.hello["user_id"]
    client.send({"type": "test.echo", "n": 5, "ref": "a"})
    assert client.recv() == {"type": "test.echoed", "user_id": user_id, "n": 5, "ref": "a"}

    client.send({"type": "test.fail", "how": "frame_error", "ref": "b"})
    assert client.recv() == {"type": "error", "code": "not_member",
                             "message": "You are not a member of this conversation.", "status": 403, "ref": "b"}
    client.send({"type": "test.fail", "how": "abort", "ref": "c"})
    assert client.recv() == {"type": "error", "code": "not_found", "message": "No such conversation.",
                             "status": 404, "ref": "c"}
    client.send({"type": "test.fail", "how": "crash", "ref": "d"})
    err = client.recv()
    assert (err["code"], err["status"], err["ref"]) == ("internal", 500, "d")
    client.send({"type": "test.quiet", "n": 1, "ref": "e"})
    assert client.recv() == {"type": "test.pushed", "n": 1}  # no reply frame: nothing else comes
    client.send({"type": "ping", "ref": "alive"})
    assert client.recv() == {"type": "pong", "ref": "alive"}


def test_on_connect_hooks_run_after_hello_with_query(ws_connect: Any, token_for: Any) -> None:
    client = ws_connect(token=token_for("ann"), test_hook="1", last_message_id="42")
    assert client.hello is not None
    frame = client.recv()
    assert frame == {"type": "test.connected", "query": {"test_hook": "1", "last_message_id": "42"},
                     "user_id": client.hello["user_id"]}


def test_rate_limit_answers_rate_limited(ws_connect: Any, token_for: Any, app: Flask,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "WS_RATE_BURST", 5)
    monkeypatch.setitem(app.config, "WS_RATE_PER_S", 0.5)
    client = ws_connect(token=token_for("ann"))
    for i in range(8):
        client.send({"type": "ping", "ref": i})
    replies = [client.recv() for _ in range(8)]
    assert [r["type"] for r in replies] == ["pong"] * 5 + ["error"] * 3
    assert {(r["code"], r["status"]) for r in replies[5:]} == {("rate_limited", 429)}
    assert [r["ref"] for r in replies] == list(range(8))


def test_token_bucket_refills() -> None:
    bucket = TokenBucket(rate=2.0, burst=2, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.take(0.4) is False  # 0.8 of a token
    assert bucket.take(0.5) is True
    assert [bucket.take(100.0) for _ in range(3)] == [True, True, False]  # never above the burst


# -- fan-out --------------------------------------------------------------------------------------------------
def test_publish_reaches_every_socket_of_the_user_only(ws_connect: Any, token_for: Any) -> None:
    ann1 = ws_connect(token=token_for("ann"))
    ann2 = ws_connect(token=token_for("ann"))
    bob = ws_connect(token=token_for("bob"))
    ann = ann1.hello["user_id"]
    assert ann2.hello["user_id"] == ann and bob.hello["user_id"] != ann

    pubsub.publish_users([ann], {"type": "notification", "notification": {"id": 1, "kind": "kudos"}})
    for client in (ann1, ann2):
        assert client.recv() == {"type": "notification", "notification": {"id": 1, "kind": "kudos"}}
    assert bob.drain(0.3) == []


def test_handler_subscriptions_deliver_until_unsubscribed(ws_connect: Any, token_for: Any) -> None:
    watcher = ws_connect(token=token_for("ann"))
    other = ws_connect(token=token_for("bob"))
    watcher.send({"type": "test.sub", "name": "s1", "ref": 1})
    channel = watcher.recv_type("test.subscribed")["channel"]
    assert pubsub.publish(channel, {"type": "live.update", "n": 1}) >= 1
    assert watcher.recv() == {"type": "live.update", "n": 1}
    assert other.drain(0.2) == []

    watcher.send({"type": "test.sub", "name": "s1", "off": True})
    watcher.recv_type("test.subscribed")
    assert wait_until(lambda: channel not in get_hub().local_channels())
    pubsub.publish(channel, {"type": "live.update", "n": 2})
    assert watcher.drain(0.3) == []


def test_user_channel_refcounted_per_process(ws_connect: Any, token_for: Any) -> None:
    first = ws_connect(token=token_for("ann"))
    second = ws_connect(token=token_for("ann"))
    channel = pubsub.user_channel(first.hello["user_id"])
    hub = get_hub()
    assert channel in hub.local_channels()
    first.close()
    time.sleep(0.3)
    assert channel in hub.local_channels()  # the other socket still needs it
    pubsub.publish_users([second.hello["user_id"]], {"type": "notification", "n": 1})
    assert second.recv()["n"] == 1
    second.close()
    assert wait_until(lambda: channel not in hub.local_channels())
    assert wait_until(lambda: dict(pubsub.client.pubsub_numsub(channel))[channel.encode()] == 0)


def test_pubsub_loss_reconnects_and_tells_sockets_to_resync(ws_connect: Any, token_for: Any) -> None:
    client = ws_connect(token=token_for("ann"))
    hub = get_hub()
    before = hub.reconnects
    ids = [c["id"] for c in pubsub.client.client_list() if c.get("name") == hub.client_name]
    assert len(ids) == 1
    pubsub.client.client_kill_filter(_id=ids[0])
    assert client.recv_type("resync", timeout=10) == {"type": "resync", "reason": "pubsub_reconnected"}
    assert hub.reconnects == before + 1
    pubsub.publish_users([client.hello["user_id"]], {"type": "notification", "n": 2})
    assert client.recv_type("notification")["n"] == 2


# -- slow and dead clients ------------------------------------------------------------------------------------
def test_slow_client_does_not_delay_others_and_is_closed(ws_server: Any, ws_connect: Any, token_for: Any,
                                                         app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "WS_SEND_QUEUE", 32)
    # Long enough that the slow client, once it reads again, still gets the close frame (not just a reset).
    monkeypatch.setitem(app.config, "WS_WRITE_TIMEOUT_S", 30)
    slow = ws_connect(token=token_for("slow"), rcvbuf=4096)  # and it never reads until the end
    fast = ws_connect(token=token_for("fast"))
    slow_id, fast_id = slow.hello["user_id"], fast.hello["user_id"]
    pad = "x" * 64_000
    worst = 0.0
    for batch in range(25):  # 250 frames of 64 KB: far beyond the slow socket's buffers plus its 32-frame queue
        started = time.monotonic()
        for i in range(10):
            pubsub.publish_users([slow_id, fast_id], {"type": "notification", "n": batch * 10 + i, "pad": pad})
        got = [fast.recv(timeout=5)["n"] for _ in range(10)]
        assert got == [batch * 10 + i for i in range(10)]
        worst = max(worst, time.monotonic() - started)
    assert worst < 5.0, f"a batch to the fast socket took {worst:.2f} s"

    # The slow socket is now closed on the server; a fresh frame to the fast one still arrives at once.
    hub = get_hub()
    assert wait_until(lambda: all(c.user_id != slow_id for c in hub.connections.values()), timeout=10)
    t0 = time.monotonic()
    pubsub.publish_users([fast_id], {"type": "notification", "n": "after"})
    assert fast.recv()["n"] == "after"
    assert time.monotonic() - t0 < 0.5
    code, reason = slow.wait_closed(timeout=10)
    assert (code, reason) == (4008, "too slow; reconnect and resync")


def test_presence_online_then_offline(ws_connect: Any, token_for: Any) -> None:
    client = ws_connect(token=token_for("ann"))
    ann = client.hello["user_id"]
    assert pubsub.is_online(ann)
    client.close()
    assert wait_until(lambda: not pubsub.is_online(ann))


def test_dead_client_detected_by_heartbeat(ws_connect: Any, token_for: Any, app: Flask,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "SOCK_SERVER_OPTIONS", {"ping_interval": 0.3, "max_message_size": 262144})
    client = ws_connect(token=token_for("ann"))
    ann = client.hello["user_id"]
    assert pubsub.is_online(ann)
    time.sleep(1.2)  # we read nothing, so the server's pings go unanswered
    assert wait_until(lambda: not pubsub.is_online(ann))
    with pytest.raises(WSClosed) as closed:
        client.recv(timeout=2)
    assert closed.value.code == 1008


# -- the production server model ------------------------------------------------------------------------------
@pytest.fixture
def gunicorn_gevent(app: Flask, committed: None) -> Iterator[SimpleNamespace]:
    with gunicorn("webapp:create_app()", os.environ, workers=2) as port:
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}", ws_url=f"ws://127.0.0.1:{port}/api/v1/ws")


def test_gunicorn_gevent_two_processes_fan_out(gunicorn_gevent: SimpleNamespace, token_for: Any) -> None:
    # REST works under gevent (psycopg2 made cooperative) on the same port as the sockets.
    me = requests.get(gunicorn_gevent.url + "/api/v1/me", headers={"Authorization": f"Bearer {token_for('ann')}"},
                      timeout=10)
    assert me.status_code == 200, me.text
    requests.get(gunicorn_gevent.url + "/api/v1/me", headers={"Authorization": f"Bearer {token_for('bob')}"},
                 timeout=10).raise_for_status()

    clients: list[WSClient] = []
    try:
        ann = connect(gunicorn_gevent, token=token_for("ann"))
        clients.append(ann)
        assert ann.hello is not None and ann.hello["server"]["io"] == "gevent"
        bob = None
        # Both processes accept on one port, and an idle one wins a lone connection (the second may also still
        # be loading the app on a busy machine): open bob's sockets in concurrent bursts until one lands on the
        # other process.
        deadline = time.monotonic() + 45
        with ThreadPoolExecutor(16) as pool:
            while bob is None and time.monotonic() < deadline:
                burst = list(pool.map(lambda _i: connect(gunicorn_gevent, token=token_for("bob")), range(16)))
                others = [c for c in burst if c.hello["server"]["pid"] != ann.hello["server"]["pid"]]
                if others:
                    bob = others[0]
                for c in burst:
                    if c is not bob:
                        c.close()
                if bob is None:
                    time.sleep(0.5)
        if bob is not None:
            clients.append(bob)
        assert bob is not None, "every socket landed on one process"
        pids = {ann.hello["server"]["pid"], bob.hello["server"]["pid"]}
        assert len(pids) == 2 and os.getpid() not in pids

        pubsub.publish_users([ann.hello["user_id"], bob.hello["user_id"]], {"type": "notification", "n": 1})
        assert ann.recv_type("notification")["n"] == 1
        assert bob.recv_type("notification")["n"] == 1
        # A ticket issued through one process opens a socket on whichever process takes it.
        ticket = requests.post(gunicorn_gevent.url + "/api/v1/ws/ticket",
                               headers={"Authorization": f"Bearer {token_for('ann')}"}, timeout=10).json()["ticket"]
        by_ticket = connect(gunicorn_gevent, ticket=ticket)
        clients.append(by_ticket)
        assert by_ticket.hello["user_id"] == ann.hello["user_id"]
        bob.send({"type": "ping", "ref": "x"})
        assert bob.recv_type("pong") == {"type": "pong", "ref": "x"}
    finally:
        for client in clients:
            client.close()


# -- token expiry -------------------------------------------------------------------------------------------------

def test_socket_closes_when_its_token_expires(ws_connect: Any, make_token: Any, app: Flask,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "WS_PRESENCE_S", 0.5)  # the loop wakes at least this often
    client = ws_connect(token=make_token("short@example.com", ttl_s=3))
    warning = client.recv_type("auth.expiring", timeout=3)
    assert time.time() < warning["expires_at"] <= time.time() + 3
    with pytest.raises(WSClosed) as closed:
        client.recv_type("never", timeout=10)
    assert (closed.value.code, closed.value.reason) == (4401, "token expired")


def test_auth_refresh_keeps_the_socket_open(ws_connect: Any, make_token: Any, app: Flask,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "WS_PRESENCE_S", 0.5)
    client = ws_connect(token=make_token("keep@example.com", ttl_s=3))
    client.recv_type("auth.expiring", timeout=3)
    ws_connect(token=make_token("other@example.com"))  # provisions another athlete

    client.send({"type": "auth.refresh", "token": make_token("other@example.com"), "ref": 1})
    assert client.recv_type("error", timeout=3)["status"] == 403
    client.send({"type": "auth.refresh", "token": "garbage", "ref": 2})
    assert client.recv_type("error", timeout=3)["status"] == 401
    client.send({"type": "auth.refresh", "token": make_token("keep@example.com"), "ref": 3})
    refreshed = client.recv_type("auth.refreshed", timeout=3)
    assert refreshed["ref"] == 3 and refreshed["expires_at"] > time.time() + 3000

    time.sleep(4)  # past the first token's expiry
    client.send({"type": "ping", "ref": "alive"})
    assert client.recv_type("pong", timeout=3)["ref"] == "alive"


def test_ticket_socket_expires_with_the_token_that_asked_for_it(ws_connect: Any, make_token: Any, app: Flask,
                                                                live_client: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "WS_PRESENCE_S", 0.5)
    token = make_token("ticket-exp@example.com", ttl_s=4)
    resp = live_client.post("/api/v1/ws/ticket", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 201
    client = ws_connect(ticket=resp.json["ticket"])
    assert client.hello is not None
    with pytest.raises(WSClosed) as closed:
        client.recv_type("never", timeout=10)
    assert (closed.value.code, closed.value.reason) == (4401, "token expired")
