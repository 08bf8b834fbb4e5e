"""Workouts synced from a health app, on the real worker: a route goes through the upload pipeline like a file,
once; the watch's file and the synced copy of one workout end as one activity whichever arrives first; deleting
the sample removes what it made (and only that); a route-less workout counts in the training load."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from domain import jobs
from domain.algorithms.fit_writer import to_fit
from domain.algorithms.geo import haversine_m
from models import Activity, HealthSyncItem, Upload, db
from tests.support.health_sync import route_of, workout, workout_track
from tests.support.synthetic import to_gpx
from tests.support.uploads import upload_and_wait, wait_for

pytestmark = pytest.mark.pipeline

START = (datetime.now(UTC) - timedelta(days=1)).replace(hour=7, minute=0, second=0, microsecond=0)


def sync(client: Any, headers: dict[str, str], *samples: dict[str, Any], deleted: tuple[str, ...] = ()
         ) -> dict[str, Any]:
    resp = client.post("/api/v1/health/sync", headers=headers,
                       json={"source": "healthkit", "samples": list(samples), "deleted": list(deleted)})
    assert resp.status_code == 200, resp.json
    return resp.json


def count(model: Any, user_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(model.user_id == user_id)) or 0


def activities(client: Any, headers: dict[str, str], user_id: int) -> list[dict[str, Any]]:
    return client.get(f"/api/v1/users/{user_id}/activities", headers=headers).json["items"]


def route_length_m(route: list[dict[str, Any]]) -> float:
    lat = [p["lat"] for p in route]
    lon = [p["lon"] for p in route]
    return float(sum(haversine_m(lat[i], lon[i], lat[i + 1], lon[i + 1]) for i in range(len(route) - 1)))


@pytest.fixture
def held_ingests(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Uploads whose pipeline message is kept back while the test holds it (the test runs the stage itself, at
    the moment it chooses); every other job goes to the worker as usual."""
    held: list[int] = []
    real_send = jobs.send

    def send(name: str, *args: Any, **kwargs: Any) -> bool:
        if name == jobs.INGEST_UPLOAD:
            held.append(int(args[0]))
            return True
        return real_send(name, *args, **kwargs)

    monkeypatch.setattr(jobs, "send", send)
    yield held


def run_ingest(upload_id: int) -> None:
    """What the worker runs for the upload's message (the whole chain, here in the test's thread)."""
    from tasks.pipeline import build_chain

    build_chain(upload_id).apply()


def test_a_route_becomes_a_private_gps_activity_once_and_goes_with_its_sample(live_client, live_login):
    from models.storage import storage

    ann, ann_id = live_login("ann")
    route = route_of(workout_track(START, minutes=20))
    sample = workout("hk-run-1", START, route=route)
    first = sync(live_client, ann, sample)
    assert first["created"] == 1
    [made] = first["uploads"]
    done = wait_for(live_client, ann, made["upload_id"])
    assert done["status"] == "ready", done
    activity = live_client.get(f"/api/v1/activities/{done['activity_id']}", headers=ann).json
    assert activity["has_gps"] and activity["visibility"] == "only_me" and activity["sport_type"] == "running"
    assert activity["external_id"] == "healthkit:hk-run-1" and activity["device"] == "Apple Health"
    assert activity["distance_m"] == pytest.approx(route_length_m(route), rel=0.02)  # from the route, not a total
    assert activity["elapsed_time_s"] == pytest.approx(1199, abs=1) and activity["avg_hr"]
    assert activity["name"] == "Morning Run"  # named by the pipeline, in the zone where the route starts

    # The app sends the same batch again (a retry, or a re-sync): nothing new is uploaded or stored.
    again = sync(live_client, ann, sample)
    assert (again["created"], again["unchanged"], again["uploads"]) == (0, 1, [])
    assert count(Upload, ann_id) == 1 and count(Activity, ann_id) == 1

    # Deleted in the health app: the activity, its upload and the stored file go.
    key = db.session.scalar(select(Upload.storage_key).where(Upload.id == made["upload_id"]))
    gone = sync(live_client, ann, deleted=("hk-run-1",))
    assert gone["deleted"] == 1
    assert live_client.get(f"/api/v1/activities/{done['activity_id']}", headers=ann).status_code == 404
    assert count(Upload, ann_id) == 0 and count(Activity, ann_id) == 0 and count(HealthSyncItem, ann_id) == 0
    with pytest.raises(KeyError):
        storage.get(key)


def test_a_sample_deleted_before_its_upload_was_processed_makes_no_activity(live_client, live_login,
                                                                           held_ingests):
    ann, ann_id = live_login("ann")
    made = sync(live_client, ann, workout("hk-run-2", START, route=route_of(workout_track(START))))["uploads"]
    assert [u["upload_id"] for u in made] == held_ingests
    sync(live_client, ann, deleted=("hk-run-2",))
    run_ingest(held_ingests[0])  # the message arrives after the deletion (a busy queue)
    assert count(Activity, ann_id) == 0 and count(Upload, ann_id) == 0


def test_an_upload_deleted_while_its_stage_runs_stores_nothing(app, live_client, live_login, held_ingests):
    from domain.activities import ingest
    from domain.uploads import lifecycle

    ann, ann_id = live_login("ann")
    sync(live_client, ann, workout("hk-run-7", START, route=route_of(workout_track(START))))
    upload = lifecycle.claim(held_ingests[0], "ingest")  # the stage has claimed it and is parsing the file…
    assert upload is not None
    track = ingest._parse(upload)
    db.session.commit()
    sync(live_client, ann, deleted=("hk-run-7",))  # …when the sample is deleted
    with app.app_context():
        assert ingest.store_track(upload, track) == "gone"
    assert count(Activity, ann_id) == 0 and count(Upload, ann_id) == 0


def test_a_changed_route_replaces_the_activity_it_made(live_client, live_login):
    ann, ann_id = live_login("ann")
    track = workout_track(START)
    first = sync(live_client, ann, workout("hk-run-3", START, route=route_of(track)))["uploads"][0]
    old = wait_for(live_client, ann, first["upload_id"])["activity_id"]
    corrected = sync(live_client, ann, workout("hk-run-3", START, route=route_of(track)[:900]))
    assert corrected["updated"] == 1
    new = wait_for(live_client, ann, corrected["uploads"][0]["upload_id"])
    assert new["status"] == "ready" and new["activity_id"] != old
    assert [a["id"] for a in activities(live_client, ann, ann_id)] == [new["activity_id"]]
    assert count(Upload, ann_id) == 1


@pytest.mark.parametrize("file_kind", ["fit", "gpx"])
def test_a_route_synced_after_the_watch_file_is_not_uploaded(live_client, live_login, file_kind):
    ann, ann_id = live_login("ann")
    track = workout_track(START)
    data = to_fit(track, "running") if file_kind == "fit" else to_gpx(track)
    watch = upload_and_wait(live_client, ann, data, f"watch.{file_kind}")
    assert watch["status"] == "ready", watch
    # The phone's copy starts a few seconds later and its route follows the watch's.
    result = sync(live_client, ann, workout("hk-run-4", START + timedelta(seconds=20), route=route_of(track)))
    assert result["created"] == 1 and result["uploads"] == []
    assert [a["id"] for a in activities(live_client, ann, ann_id)] == [watch["activity_id"]]
    # Deleting the sample leaves the watch's activity alone: the sample made nothing.
    sync(live_client, ann, deleted=("hk-run-4",))
    assert [a["id"] for a in activities(live_client, ann, ann_id)] == [watch["activity_id"]]


@pytest.mark.parametrize("with_route", [True, False])
def test_the_watch_file_uploaded_after_a_synced_workout_replaces_it(live_client, live_login, with_route):
    ann, ann_id = live_login("ann")
    track = workout_track(START)
    result = sync(live_client, ann, workout("hk-run-5", START - timedelta(seconds=30),
                                            route=route_of(track) if with_route else None))
    if with_route:
        synced = wait_for(live_client, ann, result["uploads"][0]["upload_id"])["activity_id"]
    else:
        [only] = activities(live_client, ann, ann_id)
        synced = only["id"]
    watch = upload_and_wait(live_client, ann, to_fit(track, "running"), "watch.fit")
    assert watch["status"] == "ready", watch
    listed = activities(live_client, ann, ann_id)
    assert [a["id"] for a in listed] == [watch["activity_id"]] and listed[0]["external_id"] is None
    assert live_client.get(f"/api/v1/activities/{synced}", headers=ann).status_code == 404
    assert count(Upload, ann_id) == 1  # the synced route's upload went with its activity
    link = db.session.execute(select(HealthSyncItem.record_table, HealthSyncItem.record_id)
                              .where(HealthSyncItem.user_id == ann_id)).one()
    assert tuple(link) == ("activities", None)
    # The sample now points at nothing: deleting it in the health app leaves the watch's activity alone.
    assert sync(live_client, ann, deleted=("hk-run-5",))["deleted"] == 1
    assert [a["id"] for a in activities(live_client, ann, ann_id)] == [watch["activity_id"]]


def test_a_synced_route_processed_after_the_watch_file_is_a_duplicate(live_client, live_login, held_ingests):
    ann, ann_id = live_login("ann")
    track = workout_track(START)
    made = sync(live_client, ann, workout("hk-run-6", START, route=route_of(track)))["uploads"][0]
    # The watch's file is uploaded while the synced route still waits in the queue, and is stored first.
    watch_upload = live_client.post("/api/v1/uploads", headers=ann, content_type="multipart/form-data",
                                    data={"file": (io.BytesIO(to_fit(track, "running")), "w.fit")})
    assert watch_upload.status_code == 201, watch_upload.json
    run_ingest(held_ingests[-1])
    run_ingest(made["upload_id"])
    synced = live_client.get(f"/api/v1/uploads/{made['upload_id']}", headers=ann).json
    watch = live_client.get(f"/api/v1/uploads/{watch_upload.json['id']}", headers=ann).json
    assert watch["status"] == "ready" and synced["status"] == "duplicate", (watch, synced)
    assert synced["activity_id"] == watch["activity_id"]
    assert [a["id"] for a in activities(live_client, ann, ann_id)] == [watch["activity_id"]]
    # Deleting the sample removes its (duplicate) upload, never the watch's activity.
    sync(live_client, ann, deleted=("hk-run-6",))
    assert [a["id"] for a in activities(live_client, ann, ann_id)] == [watch["activity_id"]]
    assert count(Upload, ann_id) == 1


def _fitness_load(client: Any, headers: dict[str, str], day: str) -> float:
    return float(client.get(f"/api/v1/me/fitness?from={day}&to={day}", headers=headers).json["items"][0]["load"])


def _until(pred: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_synced_workout_without_a_route_counts_in_the_training_load_until_deleted(live_client, live_login):
    ann, ann_id = live_login("ann", sex="F", birth_year=1990, weight_kg=60)
    sync(live_client, ann, workout("hk-row-1", START, minutes=45, activity="running", distance_m=8000))
    [listed] = activities(live_client, ann, ann_id)
    activity: dict[str, Any] = {}

    def loaded() -> bool:
        activity.update(live_client.get(f"/api/v1/activities/{listed['id']}", headers=ann).json)
        return activity["training_load"] is not None

    assert _until(loaded), activity
    assert activity["training_load"] > 0 and activity["timezone"] and activity["start_date_local"]
    assert activity["name"] == "Morning Run"  # the default name, as a manual entry gets
    day = activity["start_date_local"][:10]
    assert _until(lambda: _fitness_load(live_client, ann, day) > 0)
    assert _fitness_load(live_client, ann, day) == pytest.approx(activity["training_load"], abs=0.1)

    sync(live_client, ann, deleted=("hk-row-1",))
    assert _until(lambda: _fitness_load(live_client, ann, day) == 0), _fitness_load(live_client, ann, day)
