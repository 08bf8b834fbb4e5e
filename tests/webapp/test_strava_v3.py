"""/api/v3: Strava's shapes over the same domain operations, privacy identical to /api/v1, Strava's error shape and
rate-limit headers, and the bad inputs of the issue (unknown data_type, too large a file, per_page over 200)."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest

from domain.algorithms.fit_writer import to_fit
from domain.algorithms.polylines import decode
from tests.support.synthetic import synthetic_track, to_gpx


@pytest.fixture
def ingest(app):
    from tasks import stages

    def run(upload_id: int) -> None:
        with app.app_context():
            stages.ingest.run(upload_id, last=True)

    return run


def _v3_upload(client, headers, data: bytes, filename: str, **form):
    return client.post("/api/v3/uploads", headers=headers, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), filename), **form})


def _strava_error(resp, status: int, field: str | None = None) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.json)
    body = resp.json
    assert set(body) == {"message", "errors"} and isinstance(body["errors"], list) and body["errors"], body
    assert {"resource", "field", "code"} <= set(body["errors"][0])
    if field is not None:
        assert body["errors"][0]["field"] == field, body
    return body


def test_upload_status_and_activity_in_strava_shapes(client, login, ingest):
    ann, ann_id = login("ann")
    track = synthetic_track(seed=41, n_points=1500, speed_mps=7.5, sport="cycling", with_power=True)
    resp = _v3_upload(client, ann, gzip.compress(to_fit(track, "cycling")), "ride.fit.gz", data_type="fit.gz",
                      name="Commute home", external_id="garmin-123", trainer="0", commute="1", sport_type="Ride")
    assert resp.status_code == 201, resp.json
    up = resp.json
    assert up == {"id": up["id"], "id_str": str(up["id"]), "external_id": "garmin-123", "error": None,
                  "status": "Your activity is still being processed.", "activity_id": None}
    ingest(up["id"])
    # The last stage marks it ready; without the worker, the stored activity is not announced yet.
    from domain.uploads import lifecycle
    from tasks import pipeline  # noqa: F401
    lifecycle.mark_ready(up["id"])
    ready = client.get(f"/api/v3/uploads/{up['id']}", headers=ann).json
    assert ready["status"] == "Your activity is ready." and ready["error"] is None
    activity_id = ready["activity_id"]

    a = client.get(f"/api/v3/activities/{activity_id}", headers=ann).json
    v1 = client.get(f"/api/v1/activities/{activity_id}", headers=ann).json
    assert a["resource_state"] == 3 and a["id"] == activity_id and a["athlete"] == {"id": ann_id, "resource_state": 1}
    assert a["name"] == "Commute home" and a["commute"] is True and a["trainer"] is False
    assert a["type"] == a["sport_type"] == "Ride"
    assert a["distance"] == pytest.approx(v1["distance_m"], abs=0.1)
    assert a["moving_time"] == round(v1["moving_time_s"]) and a["elapsed_time"] == round(v1["elapsed_time_s"])
    assert a["average_speed"] == pytest.approx(v1["avg_speed_mps"], abs=1e-3)
    assert a["start_date"].endswith("Z") and a["start_date_local"].endswith("Z")
    assert a["timezone"] == f"(GMT+01:00) {v1['timezone']}" or a["timezone"].endswith(v1["timezone"])
    assert a["map"]["polyline"] == v1["map"]["polyline"] and a["map"]["summary_polyline"]
    assert a["device_watts"] is True and a["average_watts"] == pytest.approx(v1["avg_power"], abs=0.1)
    assert a["start_latlng"] == v1["start_latlng"]

    streams = client.get(f"/api/v3/activities/{activity_id}/streams?keys=time,latlng,watts,altitude,bogus"
                         "&key_by_type=true", headers=ann).json
    assert set(streams) == {"time", "latlng", "watts", "altitude", "distance"}
    assert streams["time"]["type"] == "time" and streams["time"]["original_size"] == len(track)
    assert streams["latlng"]["data"][0] == pytest.approx(v1["start_latlng"], abs=1e-6)
    as_list = client.get(f"/api/v3/activities/{activity_id}/streams?keys=time", headers=ann).json
    assert isinstance(as_list, list) and {s["type"] for s in as_list} == {"time", "distance"}

    updated = client.put(f"/api/v3/activities/{activity_id}", headers=ann,
                         json={"name": "Renamed", "sport_type": "VirtualRide", "trainer": True,
                               "visibility": "followers_only"})
    assert updated.status_code == 200, updated.json
    assert updated.json["name"] == "Renamed" and updated.json["trainer"] is True
    assert updated.json["visibility"] == "followers_only"
    assert client.get(f"/api/v1/activities/{activity_id}", headers=ann).json["visibility"] == "followers"

    listed = client.get("/api/v3/athlete/activities?per_page=5", headers=ann).json
    assert [x["id"] for x in listed] == [activity_id] and listed[0]["resource_state"] == 2
    me = client.get("/api/v3/athlete", headers=ann).json
    assert me["id"] == ann_id and me["resource_state"] == 3 and me["firstname"] == "ann"


def test_duplicate_upload_reports_strava_error(client, login, ingest):
    ann, _ = login("ann")
    data = to_gpx(synthetic_track(seed=42, n_points=300))
    first = _v3_upload(client, ann, data, "a.gpx", data_type="gpx").json
    ingest(first["id"])
    second = _v3_upload(client, ann, data, "a.gpx", data_type="gpx").json
    assert second["error"].startswith("a.gpx duplicate of activity ")
    assert second["status"] == "There was an error processing your activity." and second["activity_id"] is None


def test_privacy_is_identical_to_v1(client, login, ingest):
    ann, ann_id = login("ann")
    bob, _ = login("bob")
    track = synthetic_track(seed=43, n_points=4000, speed_mps=3.0, noise_m=2.0)
    home = (float(track.lat[0]), float(track.lon[0]))
    client.post("/api/v1/me/privacy-zones", headers=ann, json={"lat": home[0], "lng": home[1], "radius_m": 300})
    up = _v3_upload(client, ann, to_gpx(track), "a.gpx", data_type="gpx").json
    ingest(up["id"])
    from domain.uploads import lifecycle
    lifecycle.mark_ready(up["id"])
    activity_id = client.get(f"/api/v3/uploads/{up['id']}", headers=ann).json["activity_id"]

    v1 = client.get(f"/api/v1/activities/{activity_id}", headers=bob).json
    v3 = client.get(f"/api/v3/activities/{activity_id}", headers=bob).json
    assert v3["start_latlng"] == v1["start_latlng"] != [home[0], home[1]]
    assert v3["map"]["polyline"] == v1["map"]["polyline"]
    assert v3["distance"] == pytest.approx(v1["distance_m"], abs=0.1)
    assert v3["elapsed_time"] == round(v1["elapsed_time_s"])
    lat, lng = decode(v3["map"]["polyline"])
    from domain.algorithms.geo import haversine_m
    assert float(np.min(haversine_m(home[0], home[1], lat, lng))) > 300
    s1 = client.get(f"/api/v1/activities/{activity_id}/streams?keys=latlng", headers=bob).json
    s3 = client.get(f"/api/v3/activities/{activity_id}/streams?keys=latlng&key_by_type=true", headers=bob).json
    assert s3["latlng"]["data"] == s1["latlng"]["data"]
    assert client.get(f"/api/v1/users/{ann_id}/stats", headers=bob).json["all"]["running"]["distance_m"] == \
        pytest.approx(v1["distance_m"], abs=0.1)
    stats3 = client.get(f"/api/v3/athletes/{ann_id}/stats", headers=bob).json
    assert stats3["all_run_totals"]["distance"] == pytest.approx(v1["distance_m"], abs=0.1)

    client.patch(f"/api/v1/activities/{activity_id}", headers=ann, json={"visibility": "only_me"})
    _strava_error(client.get(f"/api/v3/activities/{activity_id}", headers=bob), 404)
    _strava_error(client.get(f"/api/v3/activities/{activity_id}/streams?keys=time", headers=bob), 404)
    assert client.get(f"/api/v3/athletes/{ann_id}/stats", headers=bob).json["all_run_totals"]["count"] == 0
    assert client.get(f"/api/v3/athletes/{ann_id}/stats", headers=ann).json["all_run_totals"]["count"] == 1


def test_bad_input_gets_strava_errors(client, login, app):
    ann, _ = login("ann")
    data = to_gpx(synthetic_track(seed=44, n_points=100))
    _strava_error(client.get("/api/v3/athlete"), 401, "access_token")
    _strava_error(client.get("/api/v3/athlete", headers={"Authorization": "Bearer nonsense"}), 401)
    _strava_error(_v3_upload(client, ann, data, "a.kml", data_type="kml"), 400, "data_type")
    _strava_error(_v3_upload(client, ann, data, "a.gpx"), 400, "data_type")
    _strava_error(client.post("/api/v3/uploads", headers=ann, data={"data_type": "gpx"}), 400, "file")
    _strava_error(client.get("/api/v3/athlete/activities?per_page=201", headers=ann), 400, "per_page")
    _strava_error(client.get("/api/v3/athlete/activities?page=0", headers=ann), 400, "page")
    _strava_error(client.get("/api/v3/athlete/activities?before=yesterday", headers=ann), 400, "before")
    _strava_error(client.get("/api/v3/activities/987654", headers=ann), 404)
    _strava_error(client.get("/api/v3/segments/987654", headers=ann), 404)
    _strava_error(client.get("/api/v3/segment_efforts/987654", headers=ann), 404)
    _strava_error(client.get("/api/v3/uploads/987654", headers=ann), 404)
    _strava_error(client.put("/api/v3/activities/987654", headers=ann, json={"name": "x"}), 404)
    limit = app.config["STRAVA_MAX_UPLOAD_BYTES"]
    app.config["STRAVA_MAX_UPLOAD_BYTES"] = 10_000
    try:
        big = to_gpx(synthetic_track(seed=45, n_points=2000))
        _strava_error(_v3_upload(client, ann, big, "big.gpx", data_type="gpx"), 413)
    finally:
        app.config["STRAVA_MAX_UPLOAD_BYTES"] = limit


def test_rate_limit_headers_and_429(client, login, app):
    ann, _ = login("ann")
    first = client.get("/api/v3/athlete", headers=ann)
    assert first.headers["X-RateLimit-Limit"] == "600,30000"
    used = [int(x) for x in first.headers["X-RateLimit-Usage"].split(",")]
    second = client.get("/api/v3/athlete/zones", headers=ann)
    assert [int(x) for x in second.headers["X-RateLimit-Usage"].split(",")] == [used[0] + 1, used[1] + 1]
    assert len(second.json["heart_rate"]["zones"]) == 5 and second.json["heart_rate"]["zones"][-1]["max"] == -1
    saved = app.config["STRAVA_RATE_LIMIT_15MIN"]
    app.config["STRAVA_RATE_LIMIT_15MIN"] = used[0] + 2
    try:
        assert client.get("/api/v3/athlete", headers=ann).status_code == 200
        over = client.get("/api/v3/athlete", headers=ann)
        _strava_error(over, 429, "rate limit")
        assert over.headers["X-RateLimit-Limit"] == f"{used[0] + 2},30000"
    finally:
        app.config["STRAVA_RATE_LIMIT_15MIN"] = saved


def test_unknown_routes_answer_in_strava_shape(client, login):
    ann, _ = login("ann")
    _strava_error(client.get("/api/v3/clubs/1", headers=ann), 404)
    _strava_error(client.get("/api/v3/clubs/1"), 401)
