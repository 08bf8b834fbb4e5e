"""Activities through the API: visibility on every read path, and privacy zones never leaking a point.

The chain's stages are called directly here (the rows live in the test's transaction); the real-worker
runs are in tests/tasks/test_pipeline.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from domain.algorithms.geo import haversine_m
from domain.algorithms.polylines import decode
from tests.support.synthetic import synthetic_track, to_gpx
from tests.support.uploads import upload


@pytest.fixture
def ingest(app):
    from domain.uploads import lifecycle
    from tasks import stages

    def run(resp) -> dict:
        assert resp.status_code == 201, resp.json
        upload_id = resp.json["id"]
        with app.app_context():
            try:
                stages.ingest.run(upload_id, last=True)
            except Exception as exc:  # Ignore for duplicates; ParseError for bad files
                from celery.exceptions import Ignore
                if not isinstance(exc, Ignore):
                    lifecycle.mark_failed_or_requeue(upload_id, exc)
        return resp.json

    return run


def _activity(client, headers, ingest, track, **form) -> int:
    done = ingest(upload(client, headers, to_gpx(track), "a.gpx", **form))
    body = client.get(f"/api/v1/uploads/{done['id']}", headers=headers).json
    assert body["status"] == "ready", body
    return body["activity_id"]


@pytest.fixture
def track():
    # ~2.9 km from the start at its furthest: well over a thousand points lie beyond anything the zones below
    # may hide (up to ~5.7 × their radius from the centre, docs/privacy.md), whatever their secret draw.
    return synthetic_track(seed=21, n_points=5000, speed_mps=3.0, noise_m=2.0)


def _points_of(activity: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    if activity["map"]:
        for line in [activity["map"]["polyline"], activity["map"]["summary_polyline"], *activity["map"]["polylines"]]:
            out.append(decode(line))
    for key in ("start_latlng", "end_latlng"):
        if activity[key]:
            out.append((np.array([activity[key][0]]), np.array([activity[key][1]])))
    # Bounds are not points (a corner combines two points' coordinates); they are checked against the
    # visible stream in the test itself.
    return out


def _min_distance(points, lat: float, lng: float) -> float:
    best = np.inf
    for la, lo in points:
        if la.size:
            best = min(best, float(np.min(haversine_m(lat, lng, la, lo))))
    return best


def test_zone_and_hidden_start_end_never_reach_a_follower(client, login, ingest, track):
    ann, ann_id = login("ann")
    bob, _ = login("bob")
    client.post(f"/api/v1/users/{ann_id}/follow", headers=bob)
    home = (float(track.lat[0]), float(track.lon[0]))
    work = (float(track.lat[800]), float(track.lon[800]))
    for lat, lng in (home, work):
        assert client.post("/api/v1/me/privacy-zones", headers=ann,
                           json={"lat": lat, "lng": lng, "radius_m": 300}).status_code == 201
    client.patch("/api/v1/me/preferences", headers=ann, json={"hide_start_end_m": 200})
    activity_id = _activity(client, ann, ingest, track)

    seen = client.get(f"/api/v1/activities/{activity_id}", headers=bob).json
    points = _points_of(seen)
    assert points, "the follower still sees the visible part"
    for lat, lng in (home, work):
        assert _min_distance(points, lat, lng) > 300
    streams = client.get(f"/api/v1/activities/{activity_id}/streams?keys=latlng,time,distance", headers=bob).json
    latlng = np.array([p for p in streams["latlng"]["data"] if p is not None])
    stream_pts = [(latlng[:, 0], latlng[:, 1])]
    for lat, lng in (home, work):
        assert _min_distance(stream_pts, lat, lng) > 300
    # The last 200 m before the end are hidden too.
    end = (float(track.lat[-1]), float(track.lon[-1]))
    assert _min_distance(points + stream_pts, *end) > 150
    assert streams["time"]["data"][0] == 0 and streams["distance"]["data"][0] == 0
    # The bounds are those of the visible points only.
    b = seen["bounds"]
    assert b == pytest.approx([latlng[:, 0].min(), latlng[:, 1].min(), latlng[:, 0].max(), latlng[:, 1].max()],
                              abs=1e-6)
    assert len(latlng) < len(track)

    # The owner sees everything.
    own = client.get(f"/api/v1/activities/{activity_id}", headers=ann).json
    assert haversine_m(home[0], home[1], *own["start_latlng"]) < 1
    own_streams = client.get(f"/api/v1/activities/{activity_id}/streams?keys=latlng", headers=ann).json
    assert len(own_streams["latlng"]["data"]) == len(track)
    assert client.get("/api/v1/me/privacy-zones", headers=ann).json[0]["lat"] == pytest.approx(home[0])


def test_a_zone_added_later_applies_to_existing_activities_at_once(client, login, ingest, track):
    ann, _ = login("ann")
    bob, _ = login("bob")
    activity_id = _activity(client, ann, ingest, track)
    end = (float(track.lat[-1]), float(track.lon[-1]))
    before = _points_of(client.get(f"/api/v1/activities/{activity_id}", headers=bob).json)
    assert _min_distance(before, *end) < 5
    zone = client.post("/api/v1/me/privacy-zones", headers=ann, json={"lat": end[0], "lng": end[1], "radius_m": 400})
    assert zone.status_code == 201
    # No background refresh ran (no worker here): the read path itself must not use the stale view.
    after = _points_of(client.get(f"/api/v1/activities/{activity_id}", headers=bob).json)
    assert _min_distance(after, *end) > 400
    assert client.delete(f"/api/v1/me/privacy-zones/{zone.json['id']}", headers=ann).status_code == 204
    again = _points_of(client.get(f"/api/v1/activities/{activity_id}", headers=bob).json)
    assert _min_distance(again, *end) < 5


def test_visibility_on_every_read_path(client, login, ingest, track):
    ann, ann_id = login("ann")
    bob, _ = login("bob")
    cat, _ = login("cat")
    client.post(f"/api/v1/users/{ann_id}/follow", headers=bob)
    followers_only = _activity(client, ann, ingest, track, visibility="followers")
    only_me = _activity(client, ann, ingest, synthetic_track(seed=22, n_points=300), visibility="only_me")
    public = _activity(client, ann, ingest, synthetic_track(seed=23, n_points=300))

    def visible(headers, activity_id) -> bool:
        codes = {client.get(f"/api/v1/activities/{activity_id}", headers=headers).status_code,
                 client.get(f"/api/v1/activities/{activity_id}/streams", headers=headers).status_code}
        assert len(codes) == 1
        return codes == {200}

    assert visible(bob, followers_only) and not visible(cat, followers_only)
    assert not visible(bob, only_me) and not visible(cat, only_me) and visible(ann, only_me)
    assert visible(cat, public)
    listed = {a["id"] for a in client.get(f"/api/v1/users/{ann_id}/activities", headers=cat).json["items"]}
    assert listed == {public}
    listed = {a["id"] for a in client.get(f"/api/v1/users/{ann_id}/activities", headers=bob).json["items"]}
    assert listed == {public, followers_only}
    assert len(client.get(f"/api/v1/users/{ann_id}/activities", headers=ann).json["items"]) == 3
    # Nobody but the owner edits, deletes or downloads the original.
    for method in (client.patch, client.delete):
        kwargs = {"json": {"name": "x"}} if method is client.patch else {}
        assert method(f"/api/v1/activities/{public}", headers=bob, **kwargs).status_code == 404
    assert client.get(f"/api/v1/activities/{public}/export/original", headers=bob).status_code == 404
    # Changing visibility takes effect at once.
    client.patch(f"/api/v1/activities/{followers_only}", headers=ann, json={"visibility": "everyone"})
    assert visible(cat, followers_only)


def test_private_account_and_blocks(client, login, ingest, track):
    ann, ann_id = login("ann", is_private=True)
    bob, bob_id = login("bob")
    activity_id = _activity(client, ann, ingest, track)
    assert client.get(f"/api/v1/activities/{activity_id}", headers=bob).status_code == 404
    assert client.get(f"/api/v1/users/{ann_id}/activities", headers=bob).json["items"] == []
    client.post(f"/api/v1/users/{ann_id}/follow", headers=bob)
    client.post(f"/api/v1/me/follow-requests/{bob_id}/accept", headers=ann)
    assert client.get(f"/api/v1/activities/{activity_id}", headers=bob).status_code == 200
    client.post(f"/api/v1/users/{bob_id}/block", headers=ann)
    assert client.get(f"/api/v1/activities/{activity_id}", headers=bob).status_code == 404
    assert client.get(f"/api/v1/users/{ann_id}/activities", headers=bob).status_code == 404


def test_notes_are_private_and_patch_validates(client, login, ingest, track):
    ann, _ = login("ann")
    bob, _ = login("bob")
    activity_id = _activity(client, ann, ingest, track)
    resp = client.patch(f"/api/v1/activities/{activity_id}", headers=ann,
                        json={"name": "Hill repeats", "notes": "knee hurt", "perceived_exertion": 8})
    assert resp.status_code == 200 and resp.json["notes"] == "knee hurt"
    assert client.get(f"/api/v1/activities/{activity_id}", headers=bob).json["notes"] is None
    bad = client.patch(f"/api/v1/activities/{activity_id}", headers=ann,
                       json={"perceived_exertion": 11, "sport_type": "quidditch", "visibility": "world"})
    assert bad.status_code == 422 and set(bad.json["errors"]["json"]) == {"perceived_exertion", "sport_type",
                                                                           "visibility"}


def test_manual_activity(client, login):
    ann, ann_id = login("ann")
    client.patch("/api/v1/me/preferences", headers=ann, json={"timezone": "Europe/Ljubljana"})
    resp = client.post("/api/v1/activities", headers=ann, json={
        "sport_type": "strength", "start_date": "2026-11-01T18:30:00+01:00", "elapsed_time_s": 3600,
        "perceived_exertion": 7, "notes": "legs", "avg_hr": 120})
    assert resp.status_code == 201, resp.json
    body = resp.json
    assert body["manual"] is True and body["map"] is None and body["name"] == "Evening Workout"
    assert body["start_date"].startswith("2026-11-01T17:30:00")
    run = client.post("/api/v1/activities", headers=ann, json={
        "sport_type": "running", "start_date": "2026-11-02T07:00:00Z", "elapsed_time_s": 1800, "distance_m": 6000})
    assert run.json["avg_speed_mps"] == pytest.approx(6000 / 1800)
    bad = client.post("/api/v1/activities", headers=ann, json={
        "sport_type": "running", "start_date": "2026-11-02T07:00:00", "elapsed_time_s": 0, "perceived_exertion": 0})
    assert bad.status_code == 422
    assert {"start_date", "elapsed_time_s", "perceived_exertion"} <= set(bad.json["errors"]["json"])
    future = client.post("/api/v1/activities", headers=ann, json={
        "sport_type": "running", "start_date": "2099-01-01T00:00:00Z", "elapsed_time_s": 60})
    assert future.status_code == 422
    page = client.get(f"/api/v1/users/{ann_id}/activities?limit=1", headers=ann).json
    assert len(page["items"]) == 1 and page["next_cursor"]
    nxt = client.get(f"/api/v1/users/{ann_id}/activities?limit=1&cursor={page['next_cursor']}", headers=ann).json
    assert {page["items"][0]["id"], nxt["items"][0]["id"]} == {body["id"], run.json["id"]}
    assert client.get(f"/api/v1/users/{ann_id}/activities?sport_type=strength", headers=ann).json["items"][0][
        "id"] == body["id"]


def test_privacy_zone_validation(client, login):
    ann, _ = login("ann")
    for bad in ({"lat": 46, "lng": 14, "radius_m": 100}, {"lat": 46, "lng": 14, "radius_m": 2000},
                {"lat": 95, "lng": 14, "radius_m": 300}, {"lat": 46, "lng": 14}):
        assert client.post("/api/v1/me/privacy-zones", headers=ann, json=bad).status_code == 422
    resp = client.post("/api/v1/me/privacy-zones", headers=ann, json={"lat": 46, "lng": 14, "radius_m": 300}).json
    assert set(resp) == {"id", "lat", "lng", "radius_m", "created_at"}  # the displaced disc stays server-side


def test_others_get_the_visible_stretchs_figures_not_the_whole_tracks(client, login, ingest, track):
    """Whole-track totals minus the visible stretch's would measure the hidden start and end (how far from home
    the visible part begins): a non-owner gets the visible stretch's distance and times, on the activity and in
    the feed, and no splits, laps or best-effort indices of the whole."""
    ann, ann_id = login("ann")
    bob, _ = login("bob")
    client.post(f"/api/v1/users/{ann_id}/follow", headers=bob)
    client.patch("/api/v1/me/preferences", headers=ann, json={"hide_start_end_m": 800})
    activity_id = _activity(client, ann, ingest, track)

    own = client.get(f"/api/v1/activities/{activity_id}", headers=ann).json
    seen = client.get(f"/api/v1/activities/{activity_id}", headers=bob).json
    streams = client.get(f"/api/v1/activities/{activity_id}/streams?keys=distance,time", headers=bob).json
    visible_m = streams["distance"]["data"][-1] - streams["distance"]["data"][0]
    visible_s = streams["time"]["data"][-1] - streams["time"]["data"][0]
    assert own["distance_m"] - seen["distance_m"] > 1000, "at least the hidden 2 × 800 m are not counted"
    assert seen["distance_m"] == pytest.approx(visible_m, rel=0.02)
    assert seen["elapsed_time_s"] == pytest.approx(visible_s, abs=2)
    assert own["splits_metric"] and own["best_efforts"]
    assert seen["splits_metric"] == seen["splits_standard"] == seen["laps"] == seen["best_efforts"] == []

    item = next(i for i in client.get("/api/v1/feed", headers=bob).json["items"]
                if i.get("activity", {}).get("id") == activity_id)["activity"]
    assert item["distance_m"] == pytest.approx(seen["distance_m"])
    assert item["elapsed_time_s"] == pytest.approx(seen["elapsed_time_s"])
    own_item = next(i for i in client.get("/api/v1/feed", headers=ann).json["items"]
                    if i.get("activity", {}).get("id") == activity_id)["activity"]
    assert own_item["distance_m"] == pytest.approx(own["distance_m"])


def test_a_group_board_sums_the_figures_each_viewer_is_shown(client, login, ingest, track):
    from datetime import UTC, datetime

    from sqlalchemy import update

    from models import Activity, db

    ann, ann_id = login("ann")
    bob, _ = login("bob")
    client.patch("/api/v1/me/preferences", headers=ann, json={"hide_start_end_m": 800})
    activity_id = _activity(client, ann, ingest, track)
    db.session.execute(update(Activity).where(Activity.id == activity_id).values(start_time=datetime.now(UTC)))
    db.session.commit()
    gid = client.post("/api/v1/groups", headers=ann, json={"name": "Hill repeats"}).json["id"]
    client.post(f"/api/v1/groups/{gid}/join", headers=bob)

    def board_value(headers: dict[str, str]) -> float:
        entries = client.get(f"/api/v1/groups/{gid}/leaderboard", headers=headers).json["entries"]
        return next(e["value"] for e in entries if e["athlete"]["id"] == ann_id)

    assert board_value(ann) == pytest.approx(client.get(f"/api/v1/activities/{activity_id}", headers=ann)
                                             .json["distance_m"])
    assert board_value(bob) == pytest.approx(client.get(f"/api/v1/activities/{activity_id}", headers=bob)
                                             .json["distance_m"])
    assert board_value(ann) - board_value(bob) > 1000
