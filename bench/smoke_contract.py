"""Smoke test of the client-facing contract (issue 16's "Done when", the parts seen through ``make run``).

    .venv/bin/python bench/smoke_contract.py [--base-url http://127.0.0.1:8000] [--fcm-url URL] [--project ID]

Without options it finds the stack ``make run`` started: the project id and FCM stand-in from
``<STACK_DATA_DIR>/stack.env`` (``.data``), the API on ``PORT`` (8000). Clauses, one PASS/FAIL line each:

1. **Lean lists**: 30 GPS activities (synthetic one-hour runs, uploaded as GPX) are listed in one page of
   ``GET /me/activities``; that page must be at least 5× smaller than 13 activities in their full representation
   (what a list item was before: the body of ``GET /activities/{id}``).
2. **Compression**: the same page with ``Accept-Encoding: br`` and ``gzip`` comes back encoded and smaller.
3. **304**: activity detail, streams and a profile answer ``304 Not Modified`` to their own ETag.
4. **Expired development token**: 401 on REST, and the socket closes at once with 4401.
5. **Push respects the socket**: a chat message the recipient reads on the socket and then disconnects (inside
   the grouping window) reaches the push stand-in never; a message sent while they are away does (the control).

Each run uses new athletes, so it can be rerun on the same ``.data``. Exits 1 if a clause failed, 2 if the
stack could not be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import websocket

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smoke_support import Api, Failed, Report, run_steps, until  # noqa: E402

from config import running_stack_env  # noqa: E402
from tests.support.synthetic import synthetic_track, to_gpx  # noqa: E402
from webapp.auth import dev_token  # noqa: E402

LIST_SIZE, BEFORE_COUNT, MIN_RATIO = 30, 13, 5.0
UPLOAD_WAIT_S, PUSH_SETTLE_S = 300.0, 8.0


def upload_runs(api: Api, token: str, count: int) -> list[int]:
    """``count`` one-hour GPS runs on different days; returns their activity ids once processed."""
    def one(i: int) -> int:
        start = datetime(2026, 9, 1, 7, tzinfo=UTC) + timedelta(days=i)
        track = synthetic_track(seed=1000 + i, n_points=3600, speed_mps=3.0, start_time=start.timestamp())
        resp = api.call("POST", "/uploads", token, fresh=True, files={"file": (f"run-{i}.gpx", to_gpx(track))},
                        data={"sport_type": "running"})
        upload_id = resp.json()["id"]
        deadline = time.monotonic() + UPLOAD_WAIT_S
        while time.monotonic() < deadline:
            body = api.call("GET", f"/uploads/{upload_id}", token, fresh=True).json()
            if body["status"] == "ready":
                return int(body["activity_id"])
            if body["status"] in ("failed", "duplicate"):
                raise Failed(f"upload {upload_id}: {body['status']} {body.get('error')}")
            time.sleep(0.5)
        raise Failed(f"upload {upload_id} not ready within {UPLOAD_WAIT_S:g} s")

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(count)))


def get(api: Api, path: str, token: str, **headers: str) -> requests.Response:
    """A GET with extra headers (``Api.call`` sets only the token), and the raw body kept as sent."""
    return requests.get(api.base + path, timeout=30, stream=True,
                        headers={"Authorization": f"Bearer {token}", **headers})


def lists_and_caching(api: Api, report: Report) -> None:
    token = api.token("lister")
    ids = upload_runs(api, token, LIST_SIZE)
    page = get(api, f"/me/activities?limit={LIST_SIZE}", token, **{"Accept-Encoding": "identity"})
    items = page.json()["items"]
    after = len(page.content)
    before = sum(len(get(api, f"/activities/{i}", token, **{"Accept-Encoding": "identity"}).content)
                 for i in ids[:BEFORE_COUNT])
    report.check(f"list page of {LIST_SIZE} activities ≥ {MIN_RATIO:g}× smaller than {BEFORE_COUNT} full ones",
                 len(items) == LIST_SIZE and before >= MIN_RATIO * after,
                 f"{LIST_SIZE} summaries: {after / 1024:.1f} KB; {BEFORE_COUNT} full: {before / 1024:.1f} KB "
                 f"({before / after:.1f}×); items keep id, name, sport, distance, times, summary polyline: "
                 f"{all(i['map'] and i['map']['summary_polyline'] for i in items)}")

    for encoding in ("br", "gzip"):
        resp = get(api, f"/me/activities?limit={LIST_SIZE}", token, **{"Accept-Encoding": encoding})
        raw = resp.raw.read(decode_content=False)
        report.check(f"{encoding} compression of the list page", resp.headers.get("Content-Encoding") == encoding
                     and len(raw) < after, f"{after} → {len(raw)} bytes ({after / max(len(raw), 1):.1f}×)")

    me = api.call("GET", "/me", token).json()
    for label, path in (("activity detail", f"/activities/{ids[0]}"), ("streams", f"/activities/{ids[0]}/streams"),
                        ("profile", f"/users/{me['id']}")):
        first = get(api, path, token, **{"Accept-Encoding": "br"})
        etag = first.headers.get("ETag", "")
        again = get(api, path, token, **{"If-None-Match": etag, "Accept-Encoding": "br"})
        report.check(f"304 Not Modified on {label}", bool(etag) and again.status_code == 304 and not again.content,
                     f"ETag {etag[:24]}…, then {again.status_code}")


def expired_token(api: Api, report: Report) -> None:
    expired = dev_token(f"expired-{api.run}@smoke.example.com", api.project, ttl_s=-120)
    resp = requests.get(api.base + "/me", headers={"Authorization": f"Bearer {expired}"}, timeout=10)
    report.check("expired development token → 401 on REST", resp.status_code == 401,
                 f"{resp.status_code} {resp.json().get('message')}")
    started = time.monotonic()
    ws = websocket.create_connection(api.ws_url, timeout=10, header=[f"Authorization: Bearer {expired}"])
    try:
        opcode, data = ws.recv_data(control_frame=True)
    except websocket.WebSocketConnectionClosedException:
        opcode, data = websocket.ABNF.OPCODE_CLOSE, b""
    code = int.from_bytes(data[:2], "big") if opcode == websocket.ABNF.OPCODE_CLOSE and len(data) >= 2 else None
    ws.close()
    report.check("expired development token → socket closed with 4401", code == 4401,
                 f"close {code} {data[2:].decode(errors='replace')!r} after {time.monotonic() - started:.2f} s")


class Socket:
    def __init__(self, api: Api, token: str) -> None:
        self.ws = websocket.create_connection(api.ws_url, timeout=10, header=[f"Authorization: Bearer {token}"])
        self.next_frame("hello")

    def next_frame(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            frame = json.loads(self.ws.recv())
            if frame.get("type") == kind:
                return frame
        raise Failed(f"no {kind} frame within {timeout:g} s")

    def send(self, frame: dict[str, Any]) -> None:
        self.ws.send(json.dumps(frame))


def push_respects_the_socket(api: Api, fcm_url: str, report: Report) -> None:
    ann, bob = api.token("ann"), api.token("bob")
    bob_id = api.call("GET", "/me", bob).json()["id"]
    api.call("GET", "/me", ann)
    device = f"smoke-contract-{api.run}"
    api.call("POST", "/me/devices", bob, json={"token": device, "platform": "android"})
    convo = api.call("POST", "/conversations", ann,
                     json={"kind": "group", "name": "Smoke", "member_ids": [bob_id]}).json()["id"]

    def pushed() -> list[str]:
        resp = requests.get(f"{fcm_url.rstrip('/')}/_sent", params={"token": device}, timeout=10)
        resp.raise_for_status()
        return [str(m["message"].get("data", {}).get("message_id")) for m in resp.json()["messages"]]

    socket = Socket(api, bob)
    def say(body: str, n: int) -> int:
        return int(api.call("POST", f"/conversations/{convo}/messages", ann,
                            json={"body": body, "client_id": f"{api.run}-{n}"}).json()["id"])

    read_id = say("seen live", 1)
    socket.next_frame("chat.message")
    socket.send({"type": "chat.read", "conversation_id": convo, "message_id": read_id, "ref": "r1"})
    socket.next_frame("chat.read")
    socket.ws.close()  # the app goes to the background right away, inside the grouping window
    time.sleep(PUSH_SETTLE_S)
    away_id = say("while away", 2)
    until(lambda: str(away_id) in pushed(), 30)
    got = pushed()
    report.check("no push for a chat message read on the socket before disconnecting",
                 str(read_id) not in got and str(away_id) in got,
                 f"pushed message ids {got} (read live: {read_id}; sent while away, the control: {away_id})")


def main() -> int:
    stack = running_stack_env()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=os.environ.get("BASE_URL")
                        or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}", help="the API (make run: PORT)")
    parser.add_argument("--fcm-url", default=os.environ.get("FCM_ENDPOINT") or stack.get("FCM_ENDPOINT"),
                        help="the FCM stand-in (default: what make run wrote in .data/stack.env)")
    parser.add_argument("--project", default=os.environ.get("FIREBASE_PROJECT_ID")
                        or stack.get("FIREBASE_PROJECT_ID", "demo-strava-plus-one"),
                        help="Firebase project id the development tokens are issued for")
    args = parser.parse_args()
    fcm_url = args.fcm_url or "http://127.0.0.1:9190"
    try:
        requests.get(args.base_url.rstrip("/") + "/readyz", timeout=5).raise_for_status()
        requests.get(fcm_url.rstrip("/") + "/_sent", params={"token": "-"}, timeout=5).raise_for_status()
    except requests.RequestException as exc:
        print(f"FAIL  stack reachable — {exc} (is `make run` going? API {args.base_url}, FCM stand-in {fcm_url})")
        return 2
    report = Report()
    api = Api(args.base_url, args.project, f"{int(time.time())}-{secrets.token_hex(3)}")
    return run_steps(report, lambda: lists_and_caching(api, report), lambda: expired_token(api, report),
                     lambda: push_respects_the_socket(api, fcm_url, report), label="clause completed")


if __name__ == "__main__":
    sys.exit(main())
