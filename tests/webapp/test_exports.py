"""Per-activity exports (GPX/TCX/FIT) and the activity time zone through the API.

The ingest stage is called directly (the rows live in the test's transaction), as in test_activities.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import xmlschema

from domain.algorithms.geo import haversine_m
from domain.algorithms.parsing import normalize, parse_bytes
from tests.support.synthetic import synthetic_track, to_gpx
from tests.support.uploads import upload

SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "schemas"


@pytest.fixture
def ingest(app):
    from tasks import stages

    def run(resp) -> int:
        assert resp.status_code == 201, resp.json
        with app.app_context():
            stages.ingest.run(resp.json["id"], last=True)
        return resp.json["id"]

    return run


@pytest.fixture
def activity_of(client, ingest):
    def make(headers, track, name="a.gpx", data=None, **form) -> int:
        upload_id = ingest(upload(client, headers, data if data is not None else to_gpx(track), name, **form))
        body = client.get(f"/api/v1/uploads/{upload_id}", headers=headers).json
        assert body["status"] == "ready", body
        return body["activity_id"]

    return make


def _export(client, headers, activity_id, fmt):
    return client.get(f"/api/v1/activities/{activity_id}/export?format={fmt}", headers=headers)


def test_owner_exports_validate_and_reimport_to_the_same_numbers(client, login, activity_of):
    ann, _ = login("ann")
    track = synthetic_track(seed=31, n_points=2000, speed_mps=3.0, with_cadence=True)
    activity_id = activity_of(ann, track)
    original = client.get(f"/api/v1/activities/{activity_id}", headers=ann).json
    schemas = {"gpx": xmlschema.XMLSchema(str(SCHEMAS / "gpx-1.1.xsd")),
               "tcx": xmlschema.XMLSchema(str(SCHEMAS / "TrainingCenterDatabasev2.xsd"))}
    for fmt in ("gpx", "tcx", "fit"):
        resp = _export(client, ann, activity_id, fmt)
        assert resp.status_code == 200, resp.json
        assert resp.headers["Content-Disposition"].endswith(f'-{activity_id}.{fmt}"')
        if fmt in schemas:
            schemas[fmt].validate(resp.data.decode())
        assert len(normalize(parse_bytes(resp.data, fmt))) == len(track)
        # Re-uploading our own export makes an activity with the same figures.
        again = activity_of(ann, None, name=f"again.{fmt}", data=resp.data)
        copy = client.get(f"/api/v1/activities/{again}", headers=ann).json
        for figure in ("distance_m", "elapsed_time_s", "moving_time_s"):
            assert copy[figure] == pytest.approx(original[figure], rel=0.005), (fmt, figure)
        assert copy["sport_type"] == original["sport_type"]


def test_others_get_only_the_visible_part_and_nothing_of_only_me(client, login, activity_of):
    ann, _ = login("ann")
    bob, _ = login("bob")
    track = synthetic_track(seed=32, n_points=5000, speed_mps=3.0, noise_m=2.0)
    home = (float(track.lat[0]), float(track.lon[0]))
    assert client.post("/api/v1/me/privacy-zones", headers=ann,
                       json={"lat": home[0], "lng": home[1], "radius_m": 300}).status_code == 201
    client.patch("/api/v1/me/preferences", headers=ann, json={"hide_start_end_m": 200})
    public_id = activity_of(ann, track)
    for fmt in ("gpx", "tcx", "fit"):
        resp = _export(client, bob, public_id, fmt)
        assert resp.status_code == 200, resp.json
        seen = normalize(parse_bytes(resp.data, fmt))
        assert 0 < len(seen) < len(track)
        d = haversine_m(home[0], home[1], seen.lat, seen.lon)
        assert float(np.nanmin(d)) > 300, fmt
        end_d = haversine_m(float(track.lat[-1]), float(track.lon[-1]), seen.lat, seen.lon)
        assert float(np.nanmin(end_d)) > 150
        # Starts at the activity's start: the real time of the first visible point would measure the hidden start.
        assert float(seen.time[0]) == pytest.approx(float(track.time[0]), abs=1)
    whole = normalize(parse_bytes(_export(client, ann, public_id, "fit").data, "fit"))
    assert len(whole) == len(track)

    private_id = activity_of(ann, synthetic_track(seed=33, n_points=300), visibility="only_me")
    resp = _export(client, bob, private_id, "gpx")
    assert resp.status_code == 404 and resp.json["status"] == "Not Found"
    assert _export(client, ann, private_id, "gpx").status_code == 200


def test_bad_export_requests_are_clear_4xx(client, login, activity_of):
    ann, _ = login("ann")
    activity_id = activity_of(ann, synthetic_track(seed=34, n_points=200))
    assert _export(client, ann, activity_id, "kml").status_code == 422
    assert client.get(f"/api/v1/activities/{activity_id}/export", headers=ann).status_code == 422
    assert _export(client, ann, 999999, "gpx").status_code == 404
    manual = client.post("/api/v1/activities", headers=ann, json={
        "sport_type": "running", "start_date": "2026-05-01T07:00:00+00:00", "elapsed_time_s": 1800})
    assert _export(client, ann, manual.json["id"], "fit").status_code == 404


def test_time_zone_from_the_start_position_else_the_profile(client, login, activity_of):
    ann, _ = login("ann")
    client.patch("/api/v1/me/preferences", headers=ann, json={"timezone": "America/New_York"})
    # 05:30 UTC in Ljubljana (the synthetic start) is 06:30 local: a morning run, not a New York night run.
    start = datetime(2026, 1, 20, 5, 30, tzinfo=UTC).timestamp()
    run = synthetic_track(seed=35, n_points=600, start_time=start)
    run.name = None  # no name in the file: the default name applies
    activity_id = activity_of(ann, run)
    a = client.get(f"/api/v1/activities/{activity_id}", headers=ann).json
    assert a["timezone"] == "Europe/Ljubljana"
    assert a["start_date_local"] == "2026-01-20T06:30:00"
    assert a["name"] == "Morning Run"
    manual = client.post("/api/v1/activities", headers=ann, json={
        "sport_type": "cycling", "start_date": "2026-01-20T05:30:00+00:00", "elapsed_time_s": 3600}).json
    assert manual["timezone"] == "America/New_York"
    assert manual["start_date_local"] == "2026-01-20T00:30:00"
    assert manual["name"] == "Night Ride"
    # A FIT without positions (an indoor ride) falls back to the profile zone.
    indoor = synthetic_track(seed=36, n_points=600, start_time=start, sport="cycling")
    indoor.lat[:], indoor.lon[:] = np.nan, np.nan
    from domain.algorithms.fit_writer import to_fit
    trainer_id = activity_of(ann, None, name="indoor.fit", data=to_fit(indoor, "cycling"))
    t = client.get(f"/api/v1/activities/{trainer_id}", headers=ann).json
    assert t["timezone"] == "America/New_York" and t["start_date_local"] == "2026-01-20T00:30:00"

