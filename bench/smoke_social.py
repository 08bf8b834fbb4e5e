"""End-to-end smoke test of segments (issue 4) and the social layer (issue 5) against a running stack.

    .venv/bin/python bench/smoke_social.py [--base-url http://127.0.0.1:8000] [--redis-url redis://127.0.0.1:6390/0]

Segments: athlete A uploads a synthetic ride along a road (GPX written here from ``tests.support.synthetic``) and
cuts a segment from an index range of it; B and C ride the same road at known constant speeds, so the script
knows the true elapsed time between the segment's start and end, and their efforts must be within 2 s of it;
D takes a detour in the middle and E rides the road in reverse: neither gets an effort. The leaderboard ranks
fastest first. Social: F and H follow A, G is a stranger; A's followers-only upload reaches F's feed and not
G's; F's kudos (sent several times, concurrently) and comment count exactly once and notify A; F unfollows and
the item leaves F's feed; A's post reaches H's feed. Finally ``FLUSHALL`` on the stack's Redis: the leaderboard
and H's feed come back identical.

Every run uses new athletes (unique emails) and a road at a new random place, so it can be rerun on the same
``.data``. Prints one PASS/FAIL line per check and exits 1 if any failed (2 if the stack could not be reached).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smoke_support import Api, Failed, Report, run_steps, until  # noqa: E402

from domain.algorithms.geo import from_local_xy, haversine_m, to_local_xy  # noqa: E402
from tests.support.synthetic import to_gpx, track_along  # noqa: E402

ROAD_M, ROAD_STEP_M = 3000.0, 10.0
SPEED_A, SPEED_B, SPEED_C, SPEED_D, SPEED_E = 5.0, 9.0, 7.0, 8.0, 8.0
#: The segment, as indices of A's 1 Hz track (A rides at 5 m/s: 500 m to 2,500 m along the road).
SEG_START_INDEX, SEG_END_INDEX = 100, 500
TOLERANCE_S = 2.0
UPLOAD_WAIT_S, EFFORT_WAIT_S, FEED_WAIT_S = 120.0, 60.0, 20.0


# --- geometry with a known truth ------------------------------------------------------------------------------

class Road:
    """A gently bending road in a local plane at (lat0, lon0), sampled every ROAD_STEP_M metres."""

    def __init__(self, lat0: float, lon0: float) -> None:
        self.lat0, self.lon0 = lat0, lon0
        self.x = np.arange(0.0, ROAD_M + ROAD_STEP_M / 2, ROAD_STEP_M)
        self.y = 80.0 * np.sin(self.x / 600.0)
        self.lat, self.lon = from_local_xy(self.x, self.y, lat0, lon0)
        # Arc length as track_along measures it (haversine per piece), so crossing times are exact.
        self.seg_len = haversine_m(self.lat[:-1], self.lon[:-1], self.lat[1:], self.lon[1:])
        self.arc = np.concatenate([[0.0], np.cumsum(self.seg_len)])

    def arc_of(self, lat: float, lng: float) -> tuple[float, float]:
        """Arc length (m) of the road point nearest (lat, lng), and the distance (m) from it."""
        px, py = to_local_xy(np.array([lat]), np.array([lng]), self.lat0, self.lon0)
        x, y = to_local_xy(self.lat, self.lon, self.lat0, self.lon0)
        dx, dy = np.diff(x), np.diff(y)
        t = np.clip(((px[0] - x[:-1]) * dx + (py[0] - y[:-1]) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        dist = np.hypot(x[:-1] + t * dx - px[0], y[:-1] + t * dy - py[0])
        k = int(np.argmin(dist))
        return float(self.arc[k] + t[k] * self.seg_len[k]), float(dist[k])

    def detour(self, leave_m: float, rejoin_m: float, offset_m: float) -> tuple[np.ndarray, np.ndarray]:
        """The road with the stretch between ``leave_m`` and ``rejoin_m`` replaced by a parallel street."""
        before = self.x <= leave_m
        after = self.x >= rejoin_m
        side_x = np.arange(leave_m + 100.0, rejoin_m - 99.0, ROAD_STEP_M)
        side_y = 80.0 * np.sin(side_x / 600.0) + offset_m
        x = np.concatenate([self.x[before], side_x, self.x[after]])
        y = np.concatenate([self.y[before], side_y, self.y[after]])
        return from_local_xy(x, y, self.lat0, self.lon0)


def ride_gpx(lat: np.ndarray, lon: np.ndarray, speed: float, start: float, seed: int, noise_m: float = 0.0) -> bytes:
    track, _ = track_along(lat, lon, speed, seed=seed, start_time=start, noise_m=noise_m)
    track.sport = "cycling"
    return to_gpx(track)


# --- API helpers -----------------------------------------------------------------------------------------------

def upload(api: Api, token: str, gpx: bytes, name: str, visibility: str) -> int:
    response = api.call("POST", "/uploads", token, data={"name": name, "sport_type": "cycling",
                                                         "visibility": visibility, "data_type": "gpx"},
                        files={"file": (f"{name.replace(' ', '_')}.gpx", gpx, "application/gpx+xml")})
    return int(response.json()["id"])


def wait_activity(api: Api, token: str, upload_id: int) -> int:
    state: dict[str, Any] = {}

    def done() -> bool:
        state.update(api.call("GET", f"/uploads/{upload_id}", token).json())
        return state["status"] in ("ready", "failed", "duplicate")

    until(done, UPLOAD_WAIT_S)
    if state.get("status") != "ready" or not state.get("activity_id"):
        raise Failed(f"upload {upload_id} ended {state.get('status')} at stage {state.get('stage')}: "
                     f"{state.get('error')}")
    return int(state["activity_id"])


def efforts_on(api: Api, token: str, activity_id: int, segment_id: int) -> list[dict[str, Any]]:
    efforts = api.call("GET", f"/activities/{activity_id}/efforts", token).json()
    return [e for e in efforts if int((e.get("segment") or {}).get("id", -1)) == segment_id]


def leaderboard(api: Api, token: str, segment_id: int) -> dict[str, Any]:
    return api.call("GET", f"/segments/{segment_id}/leaderboard", token, params={"limit": 50}).json()


def board_key(board: dict[str, Any]) -> tuple[Any, ...]:
    return (board.get("entry_count"), tuple((e["rank"], e["athlete"]["id"], e["effort_id"], e["activity_id"],
                                             round(float(e["elapsed_time_s"]), 3), e["start_date"])
                                            for e in board["entries"]))


def feed_items(api: Api, token: str) -> list[tuple[str, int]]:
    items = api.call("GET", "/feed", token, params={"limit": 50}).json()["items"]
    return [(item["type"], int(item["id"])) for item in items]


def feed_entry(api: Api, token: str, kind: str, object_id: int) -> dict[str, Any] | None:
    for item in api.call("GET", "/feed", token, params={"limit": 50}).json()["items"]:
        if item["type"] == kind and int(item["id"]) == object_id:
            return item
    return None


# --- the run ---------------------------------------------------------------------------------------------------

def segments_part(api: Api, report: Report, tokens: dict[str, str],
                  ids: dict[str, int]) -> tuple[int, Road, float]:
    rng = np.random.default_rng()
    road = Road(float(rng.uniform(45.0, 47.0)), float(rng.uniform(13.0, 16.0)))
    now = time.time()
    hour = 3600.0
    print(f"road at {road.lat0:.5f},{road.lon0:.5f} ({road.arc[-1]:.0f} m)", flush=True)

    a_upload = upload(api, tokens["a"], ride_gpx(road.lat, road.lon, SPEED_A, now - 8 * hour, 1), "A road ride",
                      "everyone")
    a_activity = wait_activity(api, tokens["a"], a_upload)
    report.check("A's upload becomes an activity", True, f"upload {a_upload} → activity {a_activity}")
    segment = api.call("POST", "/segments", tokens["a"], expect=(201,),
                       json={"activity_id": a_activity, "start_index": SEG_START_INDEX, "end_index": SEG_END_INDEX,
                             "name": f"Smoke climb {api.run}"}).json()
    segment_id = int(segment["id"])
    s0, d0 = road.arc_of(*segment["start_latlng"])
    s1, d1 = road.arc_of(*segment["end_latlng"])
    report.require("segment created from A's index range", d0 < 1.0 and d1 < 1.0 and s1 - s0 > 1000,
                   f"segment {segment_id}: {segment['distance_m']:.0f} m, road {s0:.1f}–{s1:.1f} m "
                   f"(start/end {d0:.2f}/{d1:.2f} m off the road)")

    # B and C start at fractional seconds so the crossings fall between samples: nearest-point timing is off.
    riders: dict[str, tuple[bytes, float | None]] = {
        "b": (ride_gpx(road.lat, road.lon, SPEED_B, now - 7 * hour + 0.37, 2), (s1 - s0) / SPEED_B),
        "c": (ride_gpx(road.lat, road.lon, SPEED_C, now - 6 * hour + 0.81, 3, noise_m=2.0), (s1 - s0) / SPEED_C),
        "d": (ride_gpx(*road.detour(1200.0, 1800.0, 250.0), SPEED_D, now - 5 * hour, 4), None),
        "e": (ride_gpx(road.lat[::-1], road.lon[::-1], SPEED_E, now - 4 * hour, 5), None),
    }
    uploads = {who: upload(api, tokens[who], gpx, f"{who.upper()} road ride", "everyone")
               for who, (gpx, _) in riders.items()}
    activities = {who: wait_activity(api, tokens[who], up) for who, up in uploads.items()}
    report.check("B, C, D and E's uploads become activities", True,
                 ", ".join(f"{w.upper()} {a}" for w, a in activities.items()))

    found: dict[str, list[dict[str, Any]]] = {}

    def matched() -> bool:
        for who in ("b", "c", "a"):
            act = a_activity if who == "a" else activities[who]
            found[who] = efforts_on(api, tokens[who], act, segment_id)
        return all(found[w] for w in ("b", "c", "a"))

    until(matched, EFFORT_WAIT_S, 1.0)
    for who in ("b", "c"):
        truth = riders[who][1]
        assert truth is not None
        got = found.get(who) or []
        elapsed = [float(e["elapsed_time_s"]) for e in got]
        report.check(f"{who.upper()}'s effort is timed within {TOLERANCE_S:g} s of the truth",
                     len(got) == 1 and abs(elapsed[0] - truth) <= TOLERANCE_S,
                     f"true {truth:.2f} s; efforts {[f'{x:.2f}' for x in elapsed]}"
                     + (f" (error {elapsed[0] - truth:+.2f} s)" if elapsed else ""))
    a_truth = (s1 - s0) / SPEED_A
    a_elapsed = [float(e["elapsed_time_s"]) for e in found.get("a") or []]
    report.check("A's own activity is re-matched against the new segment", len(a_elapsed) == 1
                 and abs(a_elapsed[0] - a_truth) <= TOLERANCE_S,
                 f"true {a_truth:.2f} s; efforts {[f'{x:.2f}' for x in a_elapsed]}")
    time.sleep(2)  # D and E were processed alongside B and C; give their matching stage the same time again
    for who, what in (("d", "a detour in the middle"), ("e", "the reverse direction")):
        got = efforts_on(api, tokens[who], activities[who], segment_id)
        report.check(f"{who.upper()} ({what}) gets no effort", not got,
                     f"{len(got)} efforts: {[e.get('elapsed_time_s') for e in got]}")

    board = leaderboard(api, tokens["b"], segment_id)
    order = [e["athlete"]["id"] for e in board["entries"]]
    times = [float(e["elapsed_time_s"]) for e in board["entries"]]
    want = [ids["b"], ids["c"], ids["a"]]
    report.check("leaderboard ranks fastest first", order == want and times == sorted(times)
                 and [e["rank"] for e in board["entries"]] == [1, 2, 3],
                 f"athletes {order} (want B, C, A = {want}), times {[f'{t:.1f}' for t in times]}, "
                 f"entry_count {board.get('entry_count')}")
    return segment_id, road, s1 - s0


def social_part(api: Api, report: Report, tokens: dict[str, str], ids: dict[str, int]) -> None:
    a = ids["a"]
    for who in ("f", "h"):
        state = api.call("POST", f"/users/{a}/follow", tokens[who]).json()
        report.require(f"{who.upper()} follows A", state.get("status") == "accepted", str(state))

    rng = np.random.default_rng()
    lat0, lon0 = float(rng.uniform(45.0, 47.0)), float(rng.uniform(13.0, 16.0))
    x = np.arange(0.0, 2000.0, 10.0)
    lat, lon = from_local_xy(x, 40.0 * np.sin(x / 300.0), lat0, lon0)
    started = time.monotonic()
    up = upload(api, tokens["a"], ride_gpx(lat, lon, 6.0, time.time() - 1800, 7), "A followers-only ride",
                "followers")
    activity = wait_activity(api, tokens["a"], up)
    detail = api.call("GET", f"/activities/{activity}", tokens["a"]).json()
    report.check("A's upload is a followers-only activity", detail["visibility"] == "followers",
                 f"activity {activity}, visibility {detail['visibility']}")
    in_f = until(lambda: ("activity", activity) in feed_items(api, tokens["f"]), FEED_WAIT_S, 0.2)
    report.check("the upload reaches follower F's feed", in_f,
                 f"{time.monotonic() - started:.1f} s after the upload was posted")
    g_items = feed_items(api, tokens["g"])
    report.check("the upload is not in stranger G's feed", ("activity", activity) not in g_items,
                 f"G's feed: {g_items}")
    g_view = api.call("GET", f"/activities/{activity}", tokens["g"], expect=(200, 403, 404))
    report.check("stranger G can't open the activity either", g_view.status_code in (403, 404),
                 f"GET /activities/{activity} as G → {g_view.status_code}")

    # F gives kudos, then "retries" it: again, and three more at once.
    first = api.call("POST", f"/activities/{activity}/kudos", tokens["f"])
    again = api.call("POST", f"/activities/{activity}/kudos", tokens["f"])
    with ThreadPoolExecutor(3) as pool:
        burst = list(pool.map(lambda _: api.call("POST", f"/activities/{activity}/kudos", tokens["f"], fresh=True),
                              range(3)))
    report.check("kudos: first 201, retries answered 200 with one kudos",
                 first.status_code == 201 and again.status_code == 200 and all(r.status_code == 200 for r in burst)
                 and again.json().get("kudos_count") == 1,
                 f"first {first.status_code} {first.json()}, retry {again.status_code} {again.json()}, "
                 f"burst {[r.status_code for r in burst]}")
    comment = api.call("POST", f"/activities/{activity}/comments", tokens["f"], expect=(201,),
                       json={"text": "Nice ride!"}).json()
    item = feed_entry(api, tokens["a"], "activity", activity) or {}
    counts = item.get("activity", {})
    report.check("kudos_count and comment_count are exactly 1 each",
                 counts.get("kudos_count") == 1 and counts.get("comment_count") == 1,
                 f"A's feed item: kudos_count {counts.get('kudos_count')}, comment_count {counts.get('comment_count')}")
    f_item = (feed_entry(api, tokens["f"], "activity", activity) or {}).get("activity", {})
    report.check("F's feed item shows F's kudos", f_item.get("has_kudoed") is True and f_item.get("kudos_count") == 1,
                 f"has_kudoed {f_item.get('has_kudoed')}, kudos_count {f_item.get('kudos_count')}")
    kudoers = api.call("GET", f"/activities/{activity}/kudos", tokens["a"]).json()["items"]
    report.check("the kudos list has F once", [k["id"] for k in kudoers] == [ids["f"]], str([k["id"] for k in kudoers]))

    notes: list[dict[str, Any]] = []

    def notified() -> bool:
        notes[:] = [n for n in api.call("GET", "/notifications", tokens["a"], params={"limit": 50}).json()["items"]
                    if (n.get("refs") or {}).get("activity_id") == activity]
        kinds = [n["kind"] for n in notes]
        return "kudos" in kinds and "comment" in kinds

    until(notified, FEED_WAIT_S)
    time.sleep(1)  # a duplicate from a retried stage would show up by now
    notified()
    kinds = sorted(n["kind"] for n in notes)
    report.check("A is notified once of the kudos and once of the comment",
                 kinds == ["comment", "kudos"] and all((n.get("actor") or {}).get("id") == ids["f"] for n in notes)
                 and any((n.get("refs") or {}).get("comment_id") == comment["id"] for n in notes),
                 f"notifications on activity {activity}: "
                 f"{[(n['kind'], (n.get('actor') or {}).get('id')) for n in notes]}")

    api.call("DELETE", f"/users/{a}/follow", tokens["f"])
    gone = until(lambda: ("activity", activity) not in feed_items(api, tokens["f"]), FEED_WAIT_S)
    report.check("after F unfollows, the item leaves F's feed", gone, f"F's feed: {feed_items(api, tokens['f'])}")

    post = api.call("POST", "/posts", tokens["a"], expect=(201,),
                    json={"text": f"Smoke post {api.run}", "visibility": "followers"}).json()
    in_h = until(lambda: ("post", int(post["id"])) in feed_items(api, tokens["h"]), FEED_WAIT_S, 0.2)
    report.check("A's post reaches follower H's feed", in_h, f"post {post['id']}")
    report.check("A's post is not in F's feed (no longer following)",
                 ("post", int(post["id"])) not in feed_items(api, tokens["f"]))


def flush_part(api: Api, report: Report, redis_url: str, tokens: dict[str, str], ids: dict[str, int],
               segment_id: int, road: Road, segment_m: float) -> None:
    # F follows A again first: the follow backfills F's feed, so F too has something to lose in the flush.
    api.call("POST", f"/users/{ids['a']}/follow", tokens["f"])
    want_f = set(feed_items(api, tokens["h"]))
    refilled = until(lambda: set(feed_items(api, tokens["f"])) == want_f, FEED_WAIT_S)
    report.check("F follows A again: the backfill brings A's items back into F's feed", refilled,
                 f"F's feed {feed_items(api, tokens['f'])}, H's {sorted(want_f)}")

    board_before = leaderboard(api, tokens["b"], segment_id)
    feeds_before = {who: feed_items(api, tokens[who]) for who in ("h", "f", "a")}
    client = redis.Redis.from_url(redis_url)
    keys_before = client.dbsize()
    client.flushall()
    print(f"FLUSHALL on {redis_url} ({keys_before} keys)", flush=True)

    first_board = leaderboard(api, tokens["b"], segment_id)
    same_now = board_key(first_board) == board_key(board_before)
    back = same_now or until(lambda: board_key(leaderboard(api, tokens["b"], segment_id)) == board_key(board_before),
                             30, 1.0)
    report.check("after FLUSHALL the leaderboard comes back identical", back and bool(board_before["entries"]),
                 f"{'on the first read' if same_now else 'after a wait' if back else 'not within 30 s'}: "
                 f"{len(board_before['entries'])} entries; the first read after the flush had "
                 f"{len(first_board['entries'])}")
    for who, before in feeds_before.items():
        first = feed_items(api, tokens[who])
        same = first == before
        back = same or until(lambda w=who, b=before: feed_items(api, tokens[w]) == b, 30, 1.0)
        report.check(f"after FLUSHALL {who.upper()}'s feed comes back with the same items", back and bool(before),
                     f"{len(before)} items {before[:4]}{'…' if len(before) > 4 else ''}; the first read after the "
                     f"flush had {len(first)}{'' if same else ' (' + ('same later' if back else 'never same') + ')'}")
    print(f"Redis holds {client.dbsize()} keys again after those reads", flush=True)

    # The stack keeps working on the rebuilt state: C rides again, faster than B, and A uploads once more.
    fast = SPEED_B + 1.0
    c_up = upload(api, tokens["c"], ride_gpx(road.lat, road.lon, fast, time.time() - 3 * 3600 + 0.55, 8),
                  "C fast ride", "everyone")
    a_up = upload(api, tokens["a"], ride_gpx(road.lat, road.lon, SPEED_A, time.time() - 2 * 3600, 9),
                  "A ride after the flush", "followers")
    c_act, a_act = wait_activity(api, tokens["c"], c_up), wait_activity(api, tokens["a"], a_up)
    entries: list[dict[str, Any]] = []

    def c_on_top() -> bool:
        entries[:] = leaderboard(api, tokens["b"], segment_id)["entries"]
        return bool(entries) and entries[0]["activity_id"] == c_act

    until(c_on_top, EFFORT_WAIT_S, 1.0)
    truth = segment_m / fast
    report.check("after the flush, C's faster ride takes rank 1 and replaces C's old entry",
                 [e["athlete"]["id"] for e in entries] == [ids["c"], ids["b"], ids["a"]]
                 and abs(float(entries[0]["elapsed_time_s"]) - truth) <= TOLERANCE_S,
                 f"board {[(e['athlete']['id'], round(float(e['elapsed_time_s']), 2)) for e in entries]}; "
                 f"true {truth:.2f} s for activity {c_act}")
    in_feeds = until(lambda: all(("activity", a_act) in feed_items(api, tokens[w]) for w in ("f", "h")), FEED_WAIT_S)
    h_after = feed_items(api, tokens["h"])
    report.check("after the flush, A's new upload reaches F's and H's feeds on top of the rebuilt ones",
                 in_feeds and [i for i in h_after if i != ("activity", a_act)] == feeds_before["h"],
                 f"H's feed {h_after} (ordered by start time: the ride started 2 h ago)")


def run(api: Api, report: Report, redis_url: str) -> None:
    names = ("a", "b", "c", "d", "e", "f", "g", "h")
    tokens = {name: api.token(name) for name in names}
    ids = {name: int(api.call("GET", "/me", tok).json()["id"]) for name, tok in tokens.items()}
    print(f"run {api.run}: athletes {ids}", flush=True)
    segment_id, road, segment_m = segments_part(api, report, tokens, ids)
    social_part(api, report, tokens, ids)
    flush_part(api, report, redis_url, tokens, ids, segment_id, road, segment_m)


def default_redis_url() -> str:
    """The Redis ``make run`` started (its ``.data/stack.env``), never a guessed port: FLUSHALL goes there."""
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    from config import running_stack_env

    url = running_stack_env().get("REDIS_URL")
    if url:
        return url
    port = os.environ.get("EMBEDDED_REDIS_PORT") or "6390"  # devstack.embedded: the first free port from 6390
    return f"redis://127.0.0.1:{port}/0"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="the API (make run: port 8000)")
    parser.add_argument("--redis-url", default=None,
                        help="the stack's Redis (default: REDIS_URL, else the one make run wrote in .data/stack.env)")
    parser.add_argument("--project", default=os.environ.get("FIREBASE_PROJECT_ID", "demo-strava-plus-one"),
                        help="Firebase project id the dev tokens are issued for")
    args = parser.parse_args()
    redis_url = args.redis_url or default_redis_url()
    try:
        requests.get(args.base_url.rstrip("/") + "/readyz", timeout=5).raise_for_status()
        redis.Redis.from_url(redis_url, socket_timeout=5).ping()
    except (requests.RequestException, redis.RedisError) as exc:
        print(f"FAIL  stack reachable — {exc} (is `make run` going? API {args.base_url}, Redis {redis_url})")
        return 2
    report = Report()
    api = Api(args.base_url, args.project, f"{int(time.time())}-{secrets.token_hex(3)}")
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC", flush=True)
    return run_steps(report, lambda: run(api, report, redis_url))


if __name__ == "__main__":
    sys.exit(main())
