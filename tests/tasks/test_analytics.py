"""The analytics job on the real worker: an uploaded heart-rate activity gets its load, zones and a fitness
series without anyone asking, on the analytics queue."""

from __future__ import annotations

import time

import pytest

from tests.support.synthetic import synthetic_track, to_gpx
from tests.support.uploads import upload_and_wait

pytestmark = pytest.mark.pipeline


def test_an_upload_gets_its_training_load_and_the_series_follows(live_client, live_login):
    ann, _ = live_login("ann")
    done = upload_and_wait(live_client, ann, to_gpx(synthetic_track(seed=5, n_points=1800, speed_mps=3.0)),
                           "tempo.gpx", sport_type="running")
    assert done["status"] == "ready", done
    deadline = time.monotonic() + 30
    while True:
        activity = live_client.get(f"/api/v1/activities/{done['activity_id']}", headers=ann).json
        if activity["training_load"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert activity["load_method"] == "heart_rate" and activity["training_load"] > 0
    assert len(activity["hr_zones"]) == 5 and sum(activity["hr_zones"]) == pytest.approx(1799, abs=2)
    day = activity["start_date"][:10]
    series = live_client.get(f"/api/v1/me/fitness?from={day}&to={day}", headers=ann).json["items"]
    assert series[0]["load"] == pytest.approx(activity["training_load"], abs=0.1)
    assert series[0]["fitness"] > 0
