"""Live tracking over REST and the socket: sessions, points, visibility, privacy zones on every path."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from domain.algorithms.geo import haversine_m
from domain.algorithms.privacy import (
    CENTRE_OFFSET_FRACTION,
    EXTRA_RADIUS_FRACTION,
    PERSISTENT_OFFSET_MAX,
    SAFETY_MARGIN_M,
)

HOME = (52.5200, 13.4050)
ZONE_R = 200.0
_STORED_R = ZONE_R * (1 + PERSISTENT_OFFSET_MAX) + SAFETY_MARGIN_M
#: Beyond this every point of a walk from home must be visible: the stored zone's centre is at most
#: PERSISTENT_OFFSET_MAX × r from home, and the per-session disc reaches at most its centre offset plus its
#: radius (R + 2 × offset + extra + 1 m) from that centre; 5 m of sampling slack.
FAR_M = (PERSISTENT_OFFSET_MAX * ZONE_R + _STORED_R * (1 + 2 * CENTRE_OFFSET_FRACTION + EXTRA_RADIUS_FRACTION)
         + SAFETY_MARGIN_M + 5)
M_PER_DEG = 111_195.0


def track(n: int, *, start: tuple[float, float] = HOME, step_m: float = 10.0, t0: datetime | None = None,
          dt_s: float = 0.5, hr: int | None = 140, first: int = 0) -> list[dict[str, Any]]:
    """``n`` points walking due north from ``start``: point i is ``i × step_m`` metres away (i from ``first``)."""
    t0 = t0 or T0
    return [{"time": (t0 + timedelta(seconds=i * dt_s)).isoformat(), "lat": start[0] + i * step_m / M_PER_DEG,
             "lng": start[1], "ele": 34.0, "hr": None if hr is None else hr + i % 7}
            for i in range(first, first + n)]


T0 = datetime.now(UTC) - timedelta(seconds=120)


@pytest.fixture(autouse=True)
def _fresh_t0() -> None:
    """Point times near the session's start, whenever the test runs (they must not predate it by 10 min)."""
    global T0
    T0 = datetime.now(UTC) - timedelta(seconds=120)


def start(client: Any, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = client.post("/api/v1/live-sessions", json={"sport_type": "running", **body}, headers=headers)
    assert resp.status_code == 201, resp.json
    return resp.json


def send(client: Any, headers: dict[str, str], sid: int, points: list[dict[str, Any]], status: int = 200) -> Any:
    resp = client.post(f"/api/v1/live-sessions/{sid}/points", json={"points": points}, headers=headers)
    assert resp.status_code == status, resp.json
    return resp.json


def follow(client: Any, follower: dict[str, str], followee_id: int) -> None:
    assert client.post(f"/api/v1/users/{followee_id}/follow", headers=follower).status_code == 200


def add_zone(client: Any, headers: dict[str, str], at: tuple[float, float] = HOME, radius: float = ZONE_R) -> None:
    resp = client.post("/api/v1/me/privacy-zones", json={"lat": at[0], "lng": at[1], "radius_m": radius},
                       headers=headers)
    assert resp.status_code == 201, resp.json


def dist_home(p: dict[str, Any], home: tuple[float, float] = HOME) -> float:
    return float(haversine_m(p["lat"], p["lng"], home[0], home[1]))


def assert_outside_zone(points: list[dict[str, Any]]) -> None:
    for p in points:
        assert p["lat"] is not None and dist_home(p) > ZONE_R, p


class ChannelListener:
    """Subscribes to a live session's pub/sub channel like a web process would."""

    def __init__(self, session_id: int) -> None:
        from models.pubsub import pubsub

        self.ps = pubsub.client.pubsub(ignore_subscribe_messages=True)
        self.ps.subscribe(pubsub.live_channel(session_id))
        self.ps.get_message(timeout=1.0)  # the subscribe confirmation

    def frames(self, timeout: float = 0.3) -> list[dict[str, Any]]:
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.ps.get_message(timeout=0.05)
            if msg and msg["type"] == "message":
                out.append(json.loads(msg["data"]))
        return out

    def close(self) -> None:
        self.ps.close()


class RecordingConnection:
    """A Connection double for calling frame handlers directly."""

    def __init__(self, user_id: int) -> None:
        self.id = f"test-{user_id}"
        self.user_id = user_id
        self.sent: list[dict[str, Any]] = []
        self.channels: set[str] = set()

    def send(self, frame: dict[str, Any]) -> bool:
        self.sent.append(frame)
        return True

    def subscribe(self, channel: str) -> None:
        self.channels.add(channel)

    def unsubscribe(self, channel: str) -> None:
        self.channels.discard(channel)


def call_frame(app: Any, conn: RecordingConnection, frame: dict[str, Any]) -> dict[str, Any]:
    """Dispatch like the socket does: the handler's reply, or its FrameError as an error frame."""
    from models import db
    from webapp.realtime.frames import HANDLERS, FrameError

    with app.app_context():
        try:
            return HANDLERS[frame["type"]](conn, frame) or {}
        except FrameError as exc:
            db.session.rollback()
            return exc.frame()
        finally:
            db.session.remove()


# -- sessions ---------------------------------------------------------------------------------------------------------

def test_start_uses_default_visibility_and_one_live_session_at_a_time(client, login):
    ann, ann_id = login("ann")
    assert client.patch("/api/v1/me/preferences", json={"default_visibility": "followers"},
                        headers=ann).status_code == 200
    body = start(client, ann, title="Morning tempo")
    assert body["visibility"] == "followers" and body["status"] == "live" and body["athlete"]["id"] == ann_id
    assert body["points"] == [] and body["point_count"] == 0
    again = client.post("/api/v1/live-sessions", json={}, headers=ann)
    assert again.status_code == 409 and "already" in again.json["message"]
    bad = client.post("/api/v1/live-sessions", json={"sport_type": "jousting"}, headers=ann)
    assert bad.status_code == 422
    # Finished, a new one may start; it can pick its own visibility.
    assert client.post(f"/api/v1/live-sessions/{body['id']}/finish", json={}, headers=ann).status_code == 200
    assert start(client, ann, visibility="everyone")["visibility"] == "everyone"


def test_points_resent_batch_is_not_duplicated(client, login):
    ann, _ = login("ann")
    sid = start(client, ann)["id"]
    pts = track(20, start=(48.0, 2.0))
    first = send(client, ann, sid, pts[:10])
    assert (first["accepted"], first["duplicates"], first["point_count"]) == (10, 0, 10)
    assert send(client, ann, sid, pts[:10]) | {} == {**first, "accepted": 0, "duplicates": 10}
    overlap = send(client, ann, sid, pts[5:20])
    assert (overlap["accepted"], overlap["duplicates"], overlap["point_count"]) == (10, 5, 20)
    body = client.get(f"/api/v1/live-sessions/{sid}", headers=ann).json
    assert [p["seq"] for p in body["points"]] == list(range(1, 21))
    assert [p["time"] for p in body["points"]] == [datetime.fromisoformat(p["time"]).isoformat() for p in pts]
    # 19 steps of 10 m.
    assert body["distance_m"] == pytest.approx(190.0, abs=0.5)
    assert body["hr"] == pts[-1]["hr"] and body["elapsed_s"] > 0


def test_device_distance_is_used_when_sent(client, login):
    ann, _ = login("ann")
    sid = start(client, ann, sport_type="running")
    t = T0
    indoor = [{"time": (t + timedelta(seconds=i)).isoformat(), "hr": 120, "distance_m": 3.0 * i} for i in range(5)]
    assert send(client, ann, sid["id"], indoor)["distance_m"] == pytest.approx(12.0)


@pytest.mark.parametrize("points, needle", [
    ([{"time": "2026-01-01T00:00:00Z", "lat": 91, "lng": 0}], "lat"),
    ([{"time": "2026-01-01T00:00:00Z", "lat": 10, "lng": 181}], "lng"),
    ([{"time": "2026-01-01T00:00:00Z", "lat": 10}], "lat and lng"),
    ([{"lat": 10, "lng": 10}], "time"),
    ([{"time": "yesterday", "lat": 10, "lng": 10}], "time"),
    ([{"time": "2026-01-01T00:00:00Z", "hr": 900}], "hr"),
    ([{"time": "2026-01-01T00:00:00Z", "lat": "NaN", "lng": 1}], "lat"),
    ([{"time": "2026-01-01T00:00:00Z", "speed": 3}], "speed"),
    ([], "points"),
])
def test_bad_points_are_422(client, login, points, needle):
    ann, _ = login("ann")
    sid = start(client, ann)["id"]
    resp = client.post(f"/api/v1/live-sessions/{sid}/points", json={"points": points}, headers=ann)
    assert resp.status_code == 422
    assert needle in json.dumps(resp.json["errors"])


def test_batch_limits_and_clock_checks(client, login):
    ann, _ = login("ann")
    sid = start(client, ann)["id"]
    too_many = track(601, start=(48.0, 2.0), dt_s=0.1)
    assert client.post(f"/api/v1/live-sessions/{sid}/points", json={"points": too_many},
                       headers=ann).status_code == 422
    backwards = track(3, start=(48.0, 2.0))
    backwards[1], backwards[2] = backwards[2], backwards[1]
    assert "increasing" in send(client, ann, sid, backwards, 422)["message"]
    future = track(1, start=(48.0, 2.0), t0=datetime.now(UTC) + timedelta(hours=1))
    assert "future" in send(client, ann, sid, future, 422)["message"]
    ancient = track(1, start=(48.0, 2.0), t0=datetime.now(UTC) - timedelta(days=2))
    assert "before the session started" in send(client, ann, sid, ancient, 422)["message"]
    assert client.get(f"/api/v1/live-sessions/{sid}", headers=ann).json["point_count"] == 0


def test_batch_rate_limit(app, client, login, monkeypatch):
    ann, _ = login("ann")
    sid = start(client, ann)["id"]
    monkeypatch.setitem(app.config, "LIVE_BATCHES_PER_MIN", 2)
    send(client, ann, sid, track(1, start=(48.0, 2.0)))
    send(client, ann, sid, track(1, start=(48.0, 2.0), first=1))
    resp = client.post(f"/api/v1/live-sessions/{sid}/points", json={"points": track(1, first=2)}, headers=ann)
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0


def test_only_the_owner_writes_and_ended_sessions_refuse_points(client, login):
    ann, _ = login("ann")
    bob, _ = login("bob")
    sid = start(client, ann)["id"]
    send(client, bob, sid, track(2), 404)
    assert client.post(f"/api/v1/live-sessions/{sid}/finish", json={}, headers=bob).status_code == 404
    assert client.delete(f"/api/v1/live-sessions/{sid}", headers=bob).status_code == 404
    send(client, ann, 999_999, track(2), 404)
    ended = client.post(f"/api/v1/live-sessions/{sid}/finish", json={"save": False}, headers=ann).json
    assert ended["status"] == "ended" and ended["end_reason"] == "finished" and ended["upload_id"] is None
    send(client, ann, sid, track(2), 409)


def test_save_needs_two_gps_points(client, login):
    ann, _ = login("ann")
    sid = start(client, ann)["id"]
    send(client, ann, sid, [{"time": T0.isoformat(), "hr": 100}])
    resp = client.post(f"/api/v1/live-sessions/{sid}/finish", json={"save": True}, headers=ann)
    assert resp.status_code == 422 and "two GPS points" in resp.json["message"]
    assert client.get(f"/api/v1/live-sessions/{sid}", headers=ann).json["status"] == "live"


def test_discard_deletes_and_announces(client, login):
    ann, _ = login("ann")
    bob, _ = login("bob")
    sid = start(client, ann)["id"]
    send(client, ann, sid, track(5))
    listener = ChannelListener(sid)
    try:
        assert client.delete(f"/api/v1/live-sessions/{sid}", headers=ann).status_code == 204
        assert listener.frames() == [{"type": "live.ended", "session_id": sid, "reason": "discarded"}]
    finally:
        listener.close()
    assert client.get(f"/api/v1/live-sessions/{sid}", headers=ann).status_code == 404
    assert client.get(f"/api/v1/live-sessions/{sid}", headers=bob).status_code == 404


# -- visibility -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("visibility, private, follower_sees, stranger_sees", [
    ("everyone", False, True, True),
    ("followers", False, True, False),
    ("only_me", False, False, False),
    ("everyone", True, True, False),  # a private account's sessions need an accepted follow
])
def test_visibility_rule(client, login, visibility, private, follower_sees, stranger_sees):
    ann, ann_id = login("ann")
    fol, _ = login("fol")
    stranger, _ = login("stranger")
    follow(client, fol, ann_id)  # before going private: accepted
    if private:
        assert client.patch("/api/v1/me", json={"is_private": True}, headers=ann).status_code == 200
    sid = start(client, ann, visibility=visibility)["id"]
    send(client, ann, sid, track(3, start=(48.0, 2.0)))
    for headers, sees in ((fol, follower_sees), (stranger, stranger_sees)):
        resp = client.get(f"/api/v1/live-sessions/{sid}", headers=headers)
        assert resp.status_code == (200 if sees else 404)
        if sees:
            assert len(resp.json["points"]) == 3 and "point_count" not in resp.json
    listed = client.get("/api/v1/live-sessions?scope=following", headers=fol).json["items"]
    assert [s["id"] for s in listed] == ([sid] if follower_sees else [])
    assert client.get("/api/v1/live-sessions", headers=stranger).json["items"] == []
    assert client.get(f"/api/v1/live-sessions/{sid}", headers=ann).status_code == 200


def test_blocked_users_never_see_the_session(client, login):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    follow(client, bob, ann_id)
    sid = start(client, ann, visibility="everyone")["id"]
    assert client.get(f"/api/v1/live-sessions/{sid}", headers=bob).status_code == 200
    assert client.post(f"/api/v1/users/{bob_id}/block", headers=ann).status_code == 204
    assert client.get(f"/api/v1/live-sessions/{sid}", headers=bob).status_code == 404
    assert client.get("/api/v1/live-sessions", headers=bob).json["items"] == []


def test_following_list_has_only_live_sessions_and_mine_lists_my_own(client, login):
    ann, ann_id = login("ann")
    cat, cat_id = login("cat")
    bob, _ = login("bob")
    follow(client, bob, ann_id)
    follow(client, bob, cat_id)
    a = start(client, ann)["id"]
    c = start(client, cat)["id"]
    assert {s["id"] for s in client.get("/api/v1/live-sessions", headers=bob).json["items"]} == {a, c}
    client.post(f"/api/v1/live-sessions/{c}/finish", json={}, headers=cat)
    assert [s["id"] for s in client.get("/api/v1/live-sessions", headers=bob).json["items"]] == [a]
    mine = client.get("/api/v1/live-sessions?scope=mine", headers=cat).json["items"]
    assert [(s["id"], s["status"]) for s in mine] == [(c, "ended")]
    assert client.get("/api/v1/live-sessions?scope=everyone", headers=bob).status_code == 422


# -- privacy ----------------------------------------------------------------------------------------------------------

def test_zone_points_never_reach_a_follower_on_any_path(app, client, login):
    ann, ann_id = login("ann")
    fol, fol_id = login("fol")
    follow(client, fol, ann_id)
    add_zone(client, ann)
    sid = start(client, ann, visibility="followers")["id"]
    listener = ChannelListener(sid)
    # Leave home (inside the zone) for 1.5 km, then come back in.
    out = track(150, step_m=10.0)
    back = [{**p, "time": (T0 + timedelta(seconds=75 + i * 0.5)).isoformat()}
            for i, p in enumerate(reversed(track(150, step_m=10.0)), start=1)]
    try:
        for batch in (out[:40], out[40:100], out[100:], back[:100], back[100:]):
            send(client, ann, sid, batch)
        updates = listener.frames(timeout=0.5)
    finally:
        listener.close()

    assert [u["type"] for u in updates] == ["live.update"] * 5
    published = [p for u in updates for p in u["points"]]
    assert_outside_zone(published)
    # Not all was hidden: the far part of the run did go out (the hidden region reaches at most ~5.7 × the
    # radius from home, 1.14 km here, so at least the last ~36 points each way are visible).
    assert max(dist_home(p) for p in published) > 1400 and len(published) > 60
    assert all(u["session_id"] == sid for u in updates)

    follower_view = client.get(f"/api/v1/live-sessions/{sid}", headers=fol).json
    assert_outside_zone(follower_view["points"])
    assert follower_view["points"] == published
    assert_outside_zone([follower_view["last_point"]])
    listed = client.get("/api/v1/live-sessions?scope=following", headers=fol).json["items"]
    assert len(listed) == 1 and "points" not in listed[0]
    assert_outside_zone([listed[0]["last_point"]])
    # The public distance only joins visible neighbours: it never measures the way through the zone.
    assert follower_view["distance_m"] < 2 * (1490 - ZONE_R)

    conn = RecordingConnection(fol_id)
    snapshot = call_frame(app, conn, {"type": "live.subscribe", "session_id": sid})
    assert snapshot["type"] == "live.snapshot"
    assert snapshot["session"]["points"] == published

    owner_view = client.get(f"/api/v1/live-sessions/{sid}", headers=ann).json
    assert len(owner_view["points"]) == 300 == owner_view["point_count"]
    inside = [p for p in owner_view["points"] if dist_home(p) <= ZONE_R]
    assert len(inside) >= 40 and all(p["hidden"] for p in inside)
    assert owner_view["distance_m"] == pytest.approx(2 * 1490, abs=15)
    far = [p for p in owner_view["points"] if dist_home(p) > FAR_M]
    assert far and not any(p["hidden"] for p in far)


def test_hidden_start_preference_applies_live(client, login):
    ann, ann_id = login("ann")
    fol, _ = login("fol")
    follow(client, fol, ann_id)
    assert client.patch("/api/v1/me/preferences", json={"hide_start_end_m": 300}, headers=ann).status_code == 200
    sid = start(client, ann)["id"]
    send(client, ann, sid, track(100, start=(40.0, -3.0), step_m=10.0))
    seen = client.get(f"/api/v1/live-sessions/{sid}", headers=fol).json["points"]
    # Hidden for 300 × U(1, 1.5) metres from the first point, visible after 450 m.
    along = [dist_home(p, (40.0, -3.0)) for p in seen]
    assert min(along) > 300 and min(along) <= 460 and max(along) == pytest.approx(990, abs=1)


def test_zone_added_mid_session_hides_already_stored_points(client, login):
    ann, ann_id = login("ann")
    fol, _ = login("fol")
    follow(client, fol, ann_id)
    sid = start(client, ann)["id"]
    # 1.5 km out: past FAR_M, so some of it stays visible under the zone.
    send(client, ann, sid, track(150, step_m=10.0))
    assert len(client.get(f"/api/v1/live-sessions/{sid}", headers=fol).json["points"]) == 150
    add_zone(client, ann)
    seen = client.get(f"/api/v1/live-sessions/{sid}", headers=fol).json["points"]
    assert_outside_zone(seen)
    assert 0 < len(seen) < 130
    # Appending also works under the new rules.
    send(client, ann, sid, track(10, step_m=10.0, first=150))
    assert_outside_zone(client.get(f"/api/v1/live-sessions/{sid}", headers=fol).json["points"])


def test_points_without_position_are_withheld_from_others(client, login):
    ann, ann_id = login("ann")
    fol, _ = login("fol")
    follow(client, fol, ann_id)
    sid = start(client, ann)["id"]
    pts = track(4, start=(48.0, 2.0))
    pts[2] = {"time": pts[2]["time"], "hr": 150}
    send(client, ann, sid, pts)
    seen = client.get(f"/api/v1/live-sessions/{sid}", headers=fol).json["points"]
    assert len(seen) == 3 and all(p["lat"] is not None for p in seen)


def test_live_hidden_mask_matches_live_point_hidden():
    """The vectorised mask is the per-point rule of domain.algorithms.privacy, not a second one."""
    from domain.algorithms.privacy import Zone, live_point_hidden
    from domain.live.service import live_hidden_mask

    rng = np.random.default_rng(7)
    for trial in range(20):
        zones = [Zone(HOME[0] + rng.normal(0, 0.003), HOME[1] + rng.normal(0, 0.003), rng.uniform(200, 800))
                 for _ in range(rng.integers(0, 3))]
        lat = HOME[0] + rng.normal(0, 0.006, 300)
        lng = HOME[1] + rng.normal(0, 0.006, 300)
        lat[rng.random(300) < 0.05] = np.nan
        along = np.cumsum(rng.uniform(0, 20, 300))
        hide = float(rng.choice([0, 200, 1000]))
        seed = int(rng.integers(0, 2**62))
        mask = live_hidden_mask(lat, lng, along, zones, hide_start_m=hide, seed=seed)
        expected = [live_point_hidden(a, b, zones, seed=seed, distance_from_start_m=d, hide_start_end_m=hide)
                    for a, b, d in zip(lat, lng, along, strict=True)]
        assert mask.tolist() == expected, trial


def test_gpx_of_a_session_parses_back_through_the_ingest_parser():
    from types import SimpleNamespace

    from domain.algorithms.parsing import parse_bytes
    from domain.live.service import build_gpx

    pts = [SimpleNamespace(time=T0 + timedelta(seconds=i), lat=HOME[0] + i * 1e-4, lng=HOME[1], ele=30.0 + i,
                           hr=130 + i, cadence=80, power=200 + i) for i in range(10)]
    pts.insert(5, SimpleNamespace(time=T0 + timedelta(seconds=4.5), lat=None, lng=None, ele=None, hr=1,
                                  cadence=None, power=None))
    data = build_gpx(pts, "Live run", "running")
    assert data == build_gpx(pts, "Live run", "running")
    parsed = parse_bytes(data, "gpx")
    assert len(parsed) == 10
    assert parsed.lat.tolist() == pytest.approx([p.lat for p in pts if p.lat is not None])
    assert parsed.hr.tolist() == [130 + i for i in range(10)]
    assert parsed.power.tolist() == [200 + i for i in range(10)]
    # Running cadence written per foot, as Garmin does, reads back as steps per minute.
    assert parsed.cadence.tolist() == [160] * 10
    assert parsed.time[0] == pytest.approx(T0.timestamp())


# -- socket frames (handlers called with a recording connection) -------------------------------------------------------

def test_frames_point_subscribe_unsubscribe(app, client, login):
    from models.pubsub import pubsub

    ann, ann_id = login("ann")
    fol, fol_id = login("fol")
    _, stranger_id = login("stranger")
    follow(client, fol, ann_id)
    sid = start(client, ann, visibility="followers")["id"]
    owner = RecordingConnection(ann_id)
    ack = call_frame(app, owner, {"type": "live.point", "session_id": sid, "points": track(5, start=(48.0, 2.0))})
    assert ack["type"] == "live.ack" and ack["accepted"] == 5 and ack["point_count"] == 5
    again = call_frame(app, owner, {"type": "live.point", "session_id": sid, "points": track(5, start=(48.0, 2.0))})
    assert (again["accepted"], again["duplicates"]) == (0, 5)

    bad = call_frame(app, owner, {"type": "live.point", "session_id": sid, "points": [{"time": "x"}]})
    assert bad["type"] == "error" and bad["status"] == 422 and "errors" in bad
    other = call_frame(app, RecordingConnection(fol_id),
                       {"type": "live.point", "session_id": sid, "points": track(1, first=9)})
    assert other["type"] == "error" and other["status"] == 404

    sub = RecordingConnection(fol_id)
    snap = call_frame(app, sub, {"type": "live.subscribe", "session_id": sid})
    assert snap["type"] == "live.snapshot" and len(snap["session"]["points"]) == 5
    assert isinstance(snap["session"]["started_at"], str)
    assert sub.channels == {pubsub.live_channel(sid)}
    assert call_frame(app, sub, {"type": "live.unsubscribe", "session_id": sid})["type"] == "live.unsubscribed"
    assert sub.channels == set()

    refused = RecordingConnection(stranger_id)
    err = call_frame(app, refused, {"type": "live.subscribe", "session_id": sid})
    assert err["type"] == "error" and err["status"] == 404 and refused.channels == set()
    assert call_frame(app, refused, {"type": "live.subscribe", "session_id": "1"})["status"] == 422


# -- real sockets ------------------------------------------------------------------------------------------------------

def test_socket_follower_sees_the_session_move_without_the_zone(ws_connect, live_client, live_login, make_token):
    ann, ann_id = live_login("ann")
    fol, _ = live_login("fol")
    live_login("stranger")
    follow(live_client, fol, ann_id)
    add_zone(live_client, ann)
    sid = start(live_client, ann, visibility="followers")["id"]

    watcher = ws_connect(token=make_token("fol@example.com"))
    watcher.send({"type": "live.subscribe", "session_id": sid, "ref": "s1"})
    snapshot = watcher.recv_type("live.snapshot", timeout=5)
    assert snapshot["ref"] == "s1" and snapshot["session"]["points"] == []

    stranger = ws_connect(token=make_token("stranger@example.com"))
    stranger.send({"type": "live.subscribe", "session_id": sid, "ref": 2})
    refused = stranger.recv_type("error", timeout=5)
    assert refused["status"] == 404 and refused["ref"] == 2

    athlete = ws_connect(token=make_token("ann@example.com"))
    out = track(120, step_m=10.0)  # home (in the zone) → 1.19 km north
    for i, batch in enumerate((out[:30], out[30:60], out[60:])):
        athlete.send({"type": "live.point", "session_id": sid, "points": batch, "ref": i})
        ack = athlete.recv_type("live.ack", timeout=5)
        assert ack["ref"] == i and ack["accepted"] == len(batch)

    seen: list[dict[str, Any]] = []
    for _ in range(3):
        update = watcher.recv_type("live.update", timeout=5)
        assert update["session_id"] == sid
        seen.extend(update["points"])
    assert_outside_zone(seen)
    assert max(dist_home(p) for p in seen) > 1100
    assert [f for f in stranger.drain(0.3) if f.get("type", "").startswith("live.")] == []

    assert live_client.post(f"/api/v1/live-sessions/{sid}/finish", json={}, headers=ann).status_code == 200
    ended = watcher.recv_type("live.ended", timeout=5)
    assert ended["session_id"] == sid and ended["reason"] == "finished"


@pytest.mark.parametrize("ending", ["block", "unfollow"])
def test_socket_watcher_loses_the_session_when_the_follow_ends(ending, ws_connect, live_client, live_login, make_token):
    ann, ann_id = live_login("ann")
    fol, fol_id = live_login("fol")
    follow(live_client, fol, ann_id)
    sid = start(live_client, ann, visibility="followers")["id"]
    watcher = ws_connect(token=make_token("fol@example.com"))
    watcher.send({"type": "live.subscribe", "session_id": sid})
    watcher.recv_type("live.snapshot", timeout=5)

    if ending == "block":
        assert live_client.post(f"/api/v1/users/{fol_id}/block", headers=ann).status_code == 204
    else:
        assert live_client.delete(f"/api/v1/users/{ann_id}/follow", headers=fol).status_code in (200, 204)
    revoked = watcher.recv_type("live.ended", timeout=5)
    assert revoked == {"type": "live.ended", "session_id": sid, "reason": "revoked"}

    athlete = ws_connect(token=make_token("ann@example.com"))
    athlete.send({"type": "live.point", "session_id": sid, "points": track(20, step_m=10.0)})
    athlete.recv_type("live.ack", timeout=5)
    assert [f for f in watcher.drain(0.5) if f.get("type") == "live.update"] == []


def test_socket_public_session_stays_watched_after_unfollow(ws_connect, live_client, live_login, make_token):
    ann, ann_id = live_login("ann")
    fol, _ = live_login("fol")
    follow(live_client, fol, ann_id)
    sid = start(live_client, ann, visibility="everyone")["id"]
    watcher = ws_connect(token=make_token("fol@example.com"))
    watcher.send({"type": "live.subscribe", "session_id": sid})
    watcher.recv_type("live.snapshot", timeout=5)
    assert live_client.delete(f"/api/v1/users/{ann_id}/follow", headers=fol).status_code in (200, 204)

    athlete = ws_connect(token=make_token("ann@example.com"))
    athlete.send({"type": "live.point", "session_id": sid, "points": track(20, step_m=10.0)})
    athlete.recv_type("live.ack", timeout=5)
    assert watcher.recv_type("live.update", timeout=5)["session_id"] == sid
