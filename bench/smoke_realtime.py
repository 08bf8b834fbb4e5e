"""End-to-end smoke test of real time and push against a running stack (`make run` in another shell).

    .venv/bin/python bench/smoke_realtime.py [--base-url http://127.0.0.1:8000] [--fcm-url http://127.0.0.1:9190]

It proves issue 6's "Done when" through the real processes: two clients on *different* web processes (the
``hello`` frame names the server pid) chat in a direct and a group conversation; one drops (TCP cut, no close
frame), messages are sent while it is away, and it reconnects with ``?last_message_id=`` and gets exactly the
missed ones, with no duplicates (a resend of a client_id included); a blocked user is refused; a follower
subscribed to a live session gets ``live.update`` frames that move and never carry a point inside the
athlete's privacy zone; an offline group member's registered device gets exactly one push per message at the
FCM stand-in, and none while the member's quiet hours (set around now in their time zone) cover the time.

Every run uses new athletes (unique emails), so it can be rerun on the same ``.data``. Prints one PASS/FAIL
line per check and exits 1 if any failed (2 if the stack could not be reached).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests
import websocket

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smoke_support import Api, Failed, Report, run_steps, until  # noqa: E402

from domain.algorithms.geo import haversine_m  # noqa: E402

Frame = dict[str, Any]

#: The athlete's privacy zone and the track: it starts at the zone's centre and heads east for ~3 km, past the
#: furthest a 250 m zone may hide (~1.4 km, docs/privacy.md).
ZONE_LAT, ZONE_LNG, ZONE_RADIUS_M = 48.8566, 2.3522, 250.0
TRACK_POINTS, STEP_M, BATCH = 200, 15.0, 10
QUIET_TZ = "Asia/Kolkata"  # a half-hour offset: quiet hours are only right if the zone is really applied
PUSH_WAIT_S = 30.0


class Client:
    """One socket; a reader thread keeps every frame (and answers the server's pings while we do other things)."""

    def __init__(self, ws_url: str, token: str, label: str, **query: Any) -> None:
        self.label = label
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        self.ws = websocket.create_connection(ws_url + (f"?{qs}" if qs else ""), timeout=10,
                                              header=[f"Authorization: Bearer {token}"])
        self.frames: list[Frame] = []
        self.closed: tuple[int | None, str] | None = None
        self._cond = threading.Condition()
        self._refs = iter(range(1, 1 << 30))
        self._thread = threading.Thread(target=self._read, name=f"ws-{label}", daemon=True)
        self._thread.start()
        self.hello = self.wait(lambda f: f["type"] == "hello", 10, since=0, what="hello")
        self.pid = int(self.hello["server"]["pid"])
        self.user_id = int(self.hello["user_id"])

    def _read(self) -> None:
        self.ws.settimeout(None)
        try:
            while True:
                opcode, data = self.ws.recv_data(control_frame=False)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                    self.closed = (code, data[2:].decode(errors="replace"))
                    break
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    with self._cond:
                        self.frames.append(json.loads(data))
                        self._cond.notify_all()
        except (websocket.WebSocketException, OSError, ValueError):
            self.closed = self.closed or (None, "connection lost")
        with self._cond:
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.frames)

    def wait(self, pred: Callable[[Frame], bool], timeout: float, *, since: int = 0, what: str = "a frame") -> Frame:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for frame in self.frames[since:]:
                    if pred(frame):
                        return frame
                left = deadline - time.monotonic()
                if left <= 0 or (self.closed and not self._thread.is_alive()):
                    raise Failed(f"{self.label}: no {what} within {timeout:g} s (closed: {self.closed})")
                self._cond.wait(left)

    def collect(self, pred: Callable[[Frame], bool], since: int = 0) -> list[Frame]:
        with self._cond:
            return [f for f in self.frames[since:] if pred(f)]

    def request(self, frame: Frame, timeout: float = 10) -> Frame:
        """Send a frame with a fresh ref and wait for the reply carrying it."""
        ref = f"{self.label}-{next(self._refs)}"
        self.ws.send(json.dumps({**frame, "ref": ref}))
        return self.wait(lambda f: f.get("ref") == ref, timeout, what=f"reply to {frame['type']}")

    def drop(self) -> None:
        """Cut the TCP connection without a close frame, as a phone losing its network does."""
        with contextlib.suppress(OSError):
            self.ws.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self.ws.sock.close()
        self._thread.join(5)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()
        self._thread.join(5)


class Fcm:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def sent(self, token: str) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/_sent", params={"token": token}, timeout=10)
        response.raise_for_status()
        return [item["message"] for item in response.json()["messages"]]

    def message_ids(self, token: str) -> list[int]:
        return [int(m["data"]["message_id"]) for m in self.sent(token) if m.get("data", {}).get("kind") == "message"]


def open_on_other_process(api: Api, token: str, label: str, other_pid: int, tries: int = 30,
                          **query: Any) -> tuple[Client, int]:
    """Open sockets until one lands on a web process other than ``other_pid``; returns it and the attempts."""
    for attempt in range(1, tries + 1):
        client = Client(api.ws_url, token, label, **query)
        if client.pid != other_pid:
            return client, attempt
        client.close()
    raise Failed(f"{label}: {tries} sockets all landed on web process {other_pid} (is WEB_CONCURRENCY 1?)")


def send(client: Client, conversation_id: int, body: str, client_id: str | None = None) -> Frame:
    return client.request({"type": "chat.send", "conversation_id": conversation_id,
                           "client_id": client_id or secrets.token_hex(8), "body": body})


def acked(report: Report, what: str, reply: Frame) -> int:
    report.require(what, reply.get("type") == "chat.ack" and reply.get("created") is True,
                   f"message {reply.get('message', {}).get('id')}" if reply.get("type") == "chat.ack"
                   else f"got {reply}")
    return int(reply["message"]["id"])


def chat_message(message_id: int) -> Callable[[Frame], bool]:
    return lambda f: f["type"] == "chat.message" and f["message"]["id"] == message_id


def run(api: Api, fcm: Fcm, report: Report) -> None:
    tokens = {name: api.token(name) for name in ("ann", "bob", "cat", "dan", "eve")}
    ids = {name: int(api.call("GET", "/me", tok).json()["id"]) for name, tok in tokens.items()}
    print(f"run {api.run}: athletes {ids}", flush=True)

    # Cat never connects: she is the offline member whose phone gets the pushes. Ann is online with a phone too.
    cat_device = f"smoke-cat-{api.run}"
    ann_device = f"smoke-ann-{api.run}"
    api.call("POST", "/me/devices", tokens["cat"], json={"token": cat_device, "platform": "android"})
    api.call("POST", "/me/devices", tokens["ann"], json={"token": ann_device, "platform": "ios"})

    # --- two clients on different web processes ----------------------------------------------------------------
    ann = Client(api.ws_url, tokens["ann"], "ann")
    bob, attempts = open_on_other_process(api, tokens["bob"], "bob", ann.pid)
    report.check("two clients on different web processes", ann.pid != bob.pid,
                 f"ann on pid {ann.pid} ({ann.hello['server']['io']}), bob on pid {bob.pid} "
                 f"(socket {attempts} of bob's tries)")

    # --- direct chat across processes ----------------------------------------------------------------------------
    direct = int(api.call("POST", "/conversations", tokens["ann"],
                          json={"kind": "direct", "user_id": ids["bob"]}).json()["id"])
    m1 = acked(report, "direct: ann's chat.send acknowledged", send(ann, direct, "hi Bob, direct"))
    got = bob.wait(chat_message(m1), 10, what=f"chat.message {m1}")
    report.check("direct: bob (other process) receives ann's message", got["message"]["body"] == "hi Bob, direct",
                 f"message {m1} from user {got['message']['sender']['id']}")
    m2 = acked(report, "direct: bob's chat.send acknowledged", send(bob, direct, "hi Ann"))
    ann.wait(chat_message(m2), 10, what=f"chat.message {m2}")
    report.check("direct: ann receives bob's reply", True, f"message {m2}")

    # --- group chat across processes (cat is an offline member) --------------------------------------------------
    group = int(api.call("POST", "/conversations", tokens["ann"],
                         json={"kind": "group", "name": f"Smoke {api.run}",
                               "member_ids": [ids["bob"], ids["cat"]]}).json()["id"])
    group_messages: list[int] = []  # every group message cat should get exactly one push for
    g1 = acked(report, "group: ann's chat.send acknowledged", send(ann, group, "hello group"))
    group_messages.append(g1)
    bob.wait(chat_message(g1), 10, what=f"group chat.message {g1}")
    report.check("group: bob receives ann's group message", True, f"message {g1} in conversation {group}")
    bob_group_cid = secrets.token_hex(8)
    g2 = acked(report, "group: bob's chat.send acknowledged", send(bob, group, "hello from bob", bob_group_cid))
    group_messages.append(g2)
    ann.wait(chat_message(g2), 10, what=f"group chat.message {g2}")
    report.check("group: ann receives bob's group message", True, f"message {g2}")

    # --- bob drops, misses messages, reconnects --------------------------------------------------------------------
    # The newest id bob has: a client counts its own acknowledged sends too (their chat.message echo may still
    # be on the way when the connection drops).
    last_seen = max(f["message"]["id"] for f in bob.collect(lambda f: f["type"] in ("chat.message", "chat.ack")))
    bob.drop()
    time.sleep(0.5)  # the server notices the cut on its next read
    missed = []
    for n, conversation in enumerate((direct, group, direct, group), 1):
        missed.append(acked(report, f"while bob is away: ann's message {n} stored", send(ann, conversation,
                                                                                           f"missed {n}")))
    group_messages += [missed[1], missed[3]]
    resend_cid = secrets.token_hex(8)
    first = send(ann, direct, "sent once", resend_cid)
    again = send(ann, direct, "sent once", resend_cid)
    missed.append(acked(report, "while bob is away: a message sent with a client_id", first))
    report.check("a resend of the same client_id is not stored twice",
                 again.get("type") == "chat.ack" and again.get("created") is False
                 and again["message"]["id"] == first["message"]["id"],
                 f"resend answered created={again.get('created')} with message {again.get('message', {}).get('id')}")

    bob, attempts = open_on_other_process(api, tokens["bob"], "bob2", ann.pid, last_message_id=last_seen)
    sync = bob.wait(lambda f: f["type"] == "chat.sync", 10, what="chat.sync after reconnect")
    got_ids = [m["id"] for m in sync["messages"]]
    report.check("reconnect with last_message_id gets exactly the missed messages",
                 sorted(got_ids) == sorted(missed) and not sync["has_more"],
                 f"last seen {last_seen}; missed {missed}; chat.sync gave {got_ids} (pid {bob.pid})")
    report.check("no duplicates in the catch-up", len(got_ids) == len(set(got_ids)), f"{len(got_ids)} messages")
    # Bob resends his last group message as if its ack had been lost in the drop.
    mark_ann = ann.mark()
    resent = send(bob, group, "hello from bob", bob_group_cid)
    report.check("bob's resend after reconnecting returns the stored message",
                 resent.get("type") == "chat.ack" and resent.get("created") is False
                 and resent["message"]["id"] == g2, f"ack {resent.get('created')}, message "
                                                    f"{resent.get('message', {}).get('id')} (original {g2})")
    time.sleep(1.5)  # a duplicate chat.message would have arrived by now
    dup_frames = ann.collect(lambda f: f["type"] == "chat.message" and f["message"]["id"] == g2, mark_ann)
    live_dups = bob.collect(lambda f: f["type"] == "chat.message" and f["message"]["id"] in missed)
    report.check("no duplicate frames after reconnect and resend", not dup_frames and not live_dups,
                 f"{len(dup_frames)} repeated chat.message to ann, {len(live_dups)} live copies of synced messages")
    history = api.call("GET", f"/conversations/{direct}/messages", tokens["bob"],
                       params={"after": last_seen, "limit": 100}).json()["items"]
    history_ids = [m["id"] for m in history]
    report.check("REST history after the last seen id matches (stored once each)",
                 sorted(history_ids) == sorted(m for m in missed if m not in (missed[1], missed[3])),
                 f"direct conversation after {last_seen}: {history_ids}")

    # --- a blocked user is refused ---------------------------------------------------------------------------------
    with_dan = int(api.call("POST", "/conversations", tokens["ann"],
                            json={"kind": "direct", "user_id": ids["dan"]}).json()["id"])
    api.call("POST", f"/users/{ids['ann']}/block", tokens["dan"])
    refused = send(ann, with_dan, "are you there?")
    report.check("blocked: chat.send over the socket is refused",
                 refused.get("type") == "error" and refused.get("status") == 403,
                 f"{refused.get('code')} {refused.get('status')}: {refused.get('message')}")
    rest = api.call("POST", f"/conversations/{with_dan}/messages", tokens["ann"], expect=(200, 201, 403),
                    json={"client_id": secrets.token_hex(8), "body": "over REST?"})
    report.check("blocked: REST send is refused", rest.status_code == 403, rest.json().get("message", ""))
    # Across a block the other athlete is "not found", as on every other path (a 403 would confirm they exist).
    fresh = api.call("POST", "/conversations", tokens["dan"], expect=(200, 201, 403, 404),
                     json={"kind": "direct", "user_id": ids["ann"]})
    report.check("blocked: the blocker can't start a conversation either (404)", fresh.status_code == 404,
                 fresh.json().get("message", ""))

    # --- live session: a follower sees it move, never inside the zone ---------------------------------------------
    api.call("POST", "/me/privacy-zones", tokens["ann"],
             json={"lat": ZONE_LAT, "lng": ZONE_LNG, "radius_m": ZONE_RADIUS_M})
    api.call("POST", f"/users/{ids['ann']}/follow", tokens["bob"])
    session = api.call("POST", "/live-sessions", tokens["ann"],
                       json={"sport_type": "running", "title": "Smoke run", "visibility": "followers"}).json()
    session_id = int(session["id"])
    snapshot = bob.request({"type": "live.subscribe", "session_id": session_id})
    report.require("follower subscribes to the live session", snapshot.get("type") == "live.snapshot",
                   f"{snapshot.get('type')} for session {session_id} (bob on pid {bob.pid}, ann on {ann.pid})")
    eve = Client(api.ws_url, tokens["eve"], "eve")
    denied = eve.request({"type": "live.subscribe", "session_id": session_id})
    eve.close()
    report.check("a non-follower can't subscribe to a followers-only session",
                 denied.get("type") == "error" and denied.get("status") == 404, f"{denied.get('code')}")

    mark_bob = bob.mark()
    t0 = datetime.now(UTC) - timedelta(seconds=TRACK_POINTS + 5)
    deg_per_m = 1 / (111_320 * math.cos(math.radians(ZONE_LAT)))
    track = [{"time": (t0 + timedelta(seconds=i)).isoformat(), "lat": ZONE_LAT,
              "lng": ZONE_LNG + i * STEP_M * deg_per_m, "hr": 120 + i % 30} for i in range(TRACK_POINTS)]
    for start in range(0, TRACK_POINTS, BATCH):
        ack = ann.request({"type": "live.point", "session_id": session_id, "points": track[start:start + BATCH]})
        if ack.get("type") != "live.ack":
            raise Failed(f"live.point refused: {ack}")
        time.sleep(0.1)
    until(lambda: any(p["lng"] >= track[-1]["lng"] - 1e-9 for f in bob.collect(
        lambda f: f["type"] == "live.update", mark_bob) for p in f["points"]), 10)
    updates = bob.collect(lambda f: f["type"] == "live.update" and f["session_id"] == session_id, mark_bob)
    seen = [p for f in updates for p in f["points"]] + snapshot["session"].get("points", [])
    lngs = [p["lng"] for f in updates for p in f["points"]]
    moved_m = haversine_m(ZONE_LAT, min(lngs), ZONE_LAT, max(lngs)) if lngs else 0.0
    report.check("follower (other process) receives live.update frames that move",
                 len(updates) >= 2 and moved_m > 100 and lngs == sorted(lngs),
                 f"{len(updates)} updates, {len(lngs)} points, moved {moved_m:.0f} m east")
    nearest = min((haversine_m(ZONE_LAT, ZONE_LNG, p["lat"], p["lng"]) for p in seen), default=math.inf)
    owner_view = api.call("GET", f"/live-sessions/{session_id}", tokens["ann"]).json()
    hidden = [p for p in owner_view["points"] if p.get("hidden")]
    in_zone = [p for p in owner_view["points"] if haversine_m(ZONE_LAT, ZONE_LNG, p["lat"], p["lng"]) <= ZONE_RADIUS_M]
    report.check("no live point inside the privacy zone reaches the follower",
                 nearest > ZONE_RADIUS_M and len(in_zone) > 0 and all(p["hidden"] for p in in_zone),
                 f"nearest point shown {nearest:.0f} m from the zone centre (radius {ZONE_RADIUS_M:.0f} m); the owner "
                 f"sees {len(hidden)} of {len(owner_view['points'])} points hidden, all {len(in_zone)} in the zone")
    rest_view = api.call("GET", f"/live-sessions/{session_id}", tokens["bob"]).json()
    rest_nearest = min((haversine_m(ZONE_LAT, ZONE_LNG, p["lat"], p["lng"]) for p in rest_view["points"]),
                       default=math.inf)
    report.check("the follower's REST view hides the zone too", rest_nearest > ZONE_RADIUS_M,
                 f"{len(rest_view['points'])} points, nearest {rest_nearest:.0f} m")
    mark_bob = bob.mark()
    api.call("POST", f"/live-sessions/{session_id}/finish", tokens["ann"], json={"save": False})
    ended = bob.wait(lambda f: f["type"] == "live.ended" and f["session_id"] == session_id, 10, since=mark_bob,
                     what="live.ended")
    report.check("follower is told the session ended", True, f"reason {ended.get('reason')}")

    # --- push: one per message to the offline member, none to the online one --------------------------------------
    for n in range(3):
        group_messages.append(acked(report, f"push: group message {n + 1} stored", send(ann, group, f"push {n + 1}")))
    until(lambda: set(group_messages) <= set(fcm.message_ids(cat_device)), PUSH_WAIT_S)
    time.sleep(3)  # anything extra (a duplicate) would come within the collapse window
    pushed = fcm.message_ids(cat_device)
    report.check("offline member's device gets exactly one push per group message",
                 sorted(pushed) == sorted(group_messages),
                 f"{len(group_messages)} messages {sorted(group_messages)}; pushes for {sorted(pushed)}")
    pushes = fcm.sent(cat_device)
    sample = pushes[-1] if pushes else {}
    report.check("the push carries the conversation and message", bool(sample) and
                 sample["data"].get("conversation_id") == str(group) and sample["data"].get("kind") == "message",
                 f"title {sample.get('notification', {}).get('title')!r}, body "
                 f"{sample.get('notification', {}).get('body')!r}, APNs thread "
                 f"{sample.get('apns', {}).get('payload', {}).get('aps', {}).get('thread-id')!r}")
    online_pushes = fcm.message_ids(ann_device)
    report.check("the online member (socket open) gets no chat push", online_pushes == [],
                 f"ann's device got {len(online_pushes)} chat pushes")

    # --- quiet hours: none while they cover now in the member's time zone ---------------------------------------
    local = datetime.now(ZoneInfo(QUIET_TZ))
    start, end = (local - timedelta(minutes=30)).strftime("%H:%M"), (local + timedelta(minutes=30)).strftime("%H:%M")
    api.call("PATCH", "/me/preferences", tokens["cat"],
             json={"timezone": QUIET_TZ, "quiet_hours_start": start, "quiet_hours_end": end})
    quiet = [acked(report, f"quiet hours: group message {n + 1} stored", send(ann, group, f"shh {n + 1}"))
             for n in range(2)]
    # A push run sees the quiet rows within the collapse window; wait past it, then lift the quiet hours and
    # send one more: once that one arrives, every earlier row has been handled (runs take rows in id order).
    time.sleep(4)
    api.call("PATCH", "/me/preferences", tokens["cat"], json={"quiet_hours_start": None, "quiet_hours_end": None})
    sentinel = acked(report, "after quiet hours: group message stored", send(ann, group, "good morning"))
    until(lambda: sentinel in fcm.message_ids(cat_device), PUSH_WAIT_S)
    time.sleep(1)
    pushed = fcm.message_ids(cat_device)
    report.check("no push while quiet hours cover now in the member's time zone",
                 not set(quiet) & set(pushed),
                 f"quiet {start}–{end} {QUIET_TZ} (now {local:%H:%M} there); messages {quiet} pushed "
                 f"{[m for m in pushed if m in quiet]}")
    report.check("pushes resume after quiet hours (exactly one)", pushed.count(sentinel) == 1,
                 f"message {sentinel} pushed {pushed.count(sentinel)}×; {len(pushed)} pushes to cat in all")

    for client in (ann, bob):
        client.close()


def default_fcm_url() -> str:
    if os.environ.get("FCM_ENDPOINT"):
        return os.environ["FCM_ENDPOINT"]
    written = ROOT / os.environ.get("STACK_DATA_DIR", ".data") / "fcm-standin.url"
    if written.exists():
        return written.read_text().strip()
    return "http://127.0.0.1:9190"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="the API (make run: port 8000)")
    parser.add_argument("--fcm-url", default=None, help="the FCM stand-in (default: what make run wrote in .data)")
    parser.add_argument("--project", default=os.environ.get("FIREBASE_PROJECT_ID", "demo-strava-plus-one"),
                        help="Firebase project id the dev tokens are issued for")
    args = parser.parse_args()
    fcm_url = args.fcm_url or default_fcm_url()
    try:
        requests.get(args.base_url.rstrip("/") + "/readyz", timeout=5).raise_for_status()
        requests.get(fcm_url.rstrip("/") + "/_sent", params={"token": "-"}, timeout=5).raise_for_status()
    except requests.RequestException as exc:
        print(f"FAIL  stack reachable — {exc} (is `make run` going? API {args.base_url}, FCM stand-in {fcm_url})")
        return 2
    report = Report()
    api = Api(args.base_url, args.project, f"{int(time.time())}-{secrets.token_hex(3)}")
    return run_steps(report, lambda: run(api, Fcm(fcm_url), report))


if __name__ == "__main__":
    sys.exit(main())
