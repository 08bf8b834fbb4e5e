"""stravalib, unmodified, against a running server (gunicorn) with the real worker: upload a FIT and a GPX, wait
for them, list the athlete's activities, read one with its streams, a segment and an effort, the athlete, zones and
stats. Every object goes through stravalib's own (pydantic) models, which validate what we send."""

from __future__ import annotations

import io
import os
import warnings

import pytest
import requests

from domain.algorithms.fit_writer import to_fit
from tests.support.processes import gunicorn
from tests.support.strava_client import strava_client
from tests.support.synthetic import synthetic_track, to_gpx

stravalib = pytest.importorskip("stravalib")


@pytest.fixture
def server(committed, celery_worker):
    with gunicorn("webapp:create_app()", dict(os.environ), workers=1) as port:
        yield f"http://127.0.0.1:{port}"


def test_stravalib_round_trip(server, make_token):
    token = make_token("strava-ann@example.com")
    client = strava_client(server, token)
    me = client.get_athlete()
    assert me.id and me.firstname == "strava-ann"

    ride = synthetic_track(seed=61, n_points=1800, speed_mps=7.0, sport="cycling", with_power=True, noise_m=2.0)
    ride.name = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stravalib warns that activity_type is unofficial: still sent, still read
        first = client.upload_activity(io.BytesIO(to_fit(ride, "cycling")), data_type="fit", name="Morning spin",
                                       external_id="watch-1", commute=True)
    activity = first.wait(timeout=60, poll_interval=0.2)
    assert activity.name == "Morning spin" and activity.commute is True
    assert activity.sport_type.root == "Ride"
    assert float(activity.distance) > 10_000 and activity.moving_time > 0
    assert activity.start_date_local is not None and activity.timezone.timezone() is not None

    # A segment on the ride (made through /api/v1), then a second ride on the same route through stravalib (GPX).
    headers = {"Authorization": f"Bearer {token}"}
    seg = requests.post(f"{server}/api/v1/segments", headers=headers, timeout=10,
                        json={"name": "The climb", "activity_id": activity.id, "start_index": 300,
                              "end_index": 900})
    assert seg.status_code == 201, seg.text
    again = synthetic_track(seed=61, n_points=1800, speed_mps=7.0, sport="cycling", noise_m=3.0,
                            start_time=ride.time[0] + 86400)
    again.name = None
    second = client.upload_activity(io.BytesIO(to_gpx(again)), data_type="gpx", external_id="watch-2")
    second_activity = second.wait(timeout=60, poll_interval=0.2)

    listed = list(client.get_activities(limit=10))
    assert {a.id for a in listed} == {activity.id, second_activity.id}
    detailed = client.get_activity(second_activity.id)
    assert detailed.map.polyline and detailed.splits_metric
    streams = client.get_activity_streams(second_activity.id, types=["time", "latlng", "distance", "altitude",
                                                                      "heartrate", "velocity_smooth"])
    assert len(streams["time"].data) == len(again) and len(streams["latlng"].data[0]) == 2
    assert streams["distance"].data[-1] == pytest.approx(float(detailed.distance), rel=0.01)

    segment = client.get_segment(seg.json()["id"])
    assert segment.name == "The climb" and float(segment.distance) > 0
    efforts = detailed.segment_efforts or []
    assert efforts, "the second ride was matched on the segment"
    effort = client.get_segment_effort(efforts[0].id)
    assert effort.segment.id == segment.id and effort.elapsed_time > 0

    zones = client.get_athlete_zones()
    assert len(zones.heart_rate.zones.root) == 5 and zones.heart_rate.custom_zones is False
    stats = client.get_athlete_stats(me.id)
    assert stats.all_ride_totals.count == 2
    assert float(stats.all_ride_totals.distance) == pytest.approx(
        float(activity.distance) + float(detailed.distance), rel=1e-3)
