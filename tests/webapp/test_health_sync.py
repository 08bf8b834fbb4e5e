"""POST /health/sync: HealthKit / Health Connect batches, idempotent by (source, source_id), with deletions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

NIGHT = (datetime.now(UTC) - timedelta(days=2)).replace(hour=22, minute=0, second=0, microsecond=0)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def healthkit_batch() -> list[dict]:
    stages = [("HKCategoryValueSleepAnalysisInBed", 0, 480), ("asleepCore", 15, 120), ("asleepDeep", 120, 200),
              ("asleepREM", 200, 260), ("awake", 260, 270), ("asleepCore", 270, 470)]
    samples = [{"type": "sleep", "source_id": f"hk-sleep-{i}", "stage": stage,
                "start": iso(NIGHT + timedelta(minutes=a)), "end": iso(NIGHT + timedelta(minutes=b))}
               for i, (stage, a, b) in enumerate(stages)]
    morning = NIGHT + timedelta(hours=9)
    samples += [
        {"type": "resting_heart_rate", "source_id": "hk-rhr-1", "at": iso(morning), "value": 52, "unit": "count/min"},
        {"type": "hrv_sdnn", "source_id": "hk-hrv-1", "at": iso(morning), "value": 48.5, "unit": "ms"},
        {"type": "body_mass", "source_id": "hk-mass-1", "at": iso(morning), "value": 71.2, "unit": "kg"},
        {"type": "steps", "source_id": "hk-steps-1", "start": iso(morning), "end": iso(morning + timedelta(hours=1)),
         "value": 4200, "unit": "count"},
        {"type": "active_energy", "source_id": "hk-ae-1", "start": iso(morning),
         "end": iso(morning + timedelta(hours=1)), "value": 836.8, "unit": "kJ"},
        {"type": "water", "source_id": "hk-water-1", "at": iso(morning), "value": 0.33, "unit": "L"},
        {"type": "nutrition", "source_id": "hk-food-1", "at": iso(morning), "value": 450, "unit": "kcal",
         "meal_type": "breakfast"},
        {"type": "workout", "source_id": "hk-workout-1", "start": iso(morning + timedelta(hours=2)),
         "end": iso(morning + timedelta(hours=3)), "activity": "running", "distance_m": 10000, "value": 650},
    ]
    return samples


def sync(client, headers, body, expect=200):
    resp = client.post("/api/v1/health/sync", json=body, headers=headers)
    assert resp.status_code == expect, resp.json
    return resp.json


def test_a_batch_twice_changes_nothing_the_second_time_then_deletions(client, login):
    ann, ann_id = login("ann")
    first = sync(client, ann, {"source": "healthkit", "anchor": "hk-anchor-1", "samples": healthkit_batch()})
    assert first["created"] == 14 and first["unchanged"] == 0 and first["anchor"] == "1"
    assert first["platform_anchor"] == "hk-anchor-1"
    sleep = client.get("/api/v1/me/sleep", headers=ann).json["items"]
    assert len(sleep) == 1 and sleep[0]["source"] == "healthkit" and sleep[0]["duration_min"] == 480
    assert [s["stage"] for s in sleep[0]["stages"]] == ["in_bed", "light", "deep", "rem", "awake", "light"]
    metrics = {m["kind"]: m for m in client.get("/api/v1/me/body-metrics", headers=ann).json["items"]}
    assert metrics["resting_heart_rate"]["value"] == 52 and metrics["hrv_sdnn"]["unit"] == "ms"
    assert metrics["active_energy"]["value"] == pytest.approx(200.0)  # 836.8 kJ
    assert client.get("/api/v1/me/water", headers=ann).json["items"][0]["ml"] == 330
    meal = client.get("/api/v1/me/meals", headers=ann).json["items"][0]
    assert meal["source"] == "healthkit" and meal["totals"]["energy_kcal"] == 450
    workout = client.get(f"/api/v1/users/{ann_id}/activities", headers=ann).json["items"]
    assert len(workout) == 1 and workout[0]["sport_type"] == "running" and workout[0]["visibility"] == "only_me"
    before = {k: v for k, v in first.items()}

    second = sync(client, ann, {"source": "healthkit", "anchor": "hk-anchor-1", "samples": healthkit_batch()})
    assert second["created"] == 0 and second["updated"] == 0 and second["unchanged"] == 14
    assert second["anchor"] == before["anchor"]  # nothing changed: the anchor stays
    assert len(client.get("/api/v1/me/sleep", headers=ann).json["items"]) == 1
    assert len(client.get("/api/v1/me/body-metrics", headers=ann).json["items"]) == 5
    assert len(client.get(f"/api/v1/users/{ann_id}/activities", headers=ann).json["items"]) == 1

    changed = healthkit_batch()
    changed[6]["value"] = 50  # a corrected resting heart rate
    third = sync(client, ann, {"source": "healthkit", "samples": changed})
    assert third["updated"] == 1 and third["anchor"] == "2"
    rhr = client.get("/api/v1/me/body-metrics", headers=ann, query_string={"kind": "resting_heart_rate"}).json
    assert [m["value"] for m in rhr["items"]] == [50]

    gone = sync(client, ann, {"source": "healthkit", "deleted": ["hk-sleep-4", "hk-water-1", "hk-never-sent"]})
    assert gone["deleted"] == 2 and gone["anchor"] == "3"
    sleep = client.get("/api/v1/me/sleep", headers=ann).json["items"]
    assert [s["stage"] for s in sleep[0]["stages"]] == ["in_bed", "light", "deep", "rem", "light"]
    assert client.get("/api/v1/me/water", headers=ann).json["items"] == []
    everything = sync(client, ann, {"source": "healthkit",
                                    "deleted": [s["source_id"] for s in healthkit_batch()]})
    assert everything["deleted"] == 12  # two were deleted already
    assert client.get("/api/v1/me/sleep", headers=ann).json["items"] == []
    assert client.get("/api/v1/me/body-metrics", headers=ann).json["items"] == []


def test_health_connect_stages_and_sources_kept_apart(client, login):
    ann, _ = login("ann")
    samples = [{"type": "sleep", "source_id": "hc-1", "stage": "4", "start": iso(NIGHT),
                "end": iso(NIGHT + timedelta(hours=3))},
               {"type": "sleep", "source_id": "hc-2", "stage": "rem", "start": iso(NIGHT + timedelta(hours=3)),
                "end": iso(NIGHT + timedelta(hours=7))}]
    sync(client, ann, {"source": "health_connect", "anchor": "changes-token-9", "samples": samples})
    # The same ids from the other platform are other samples.
    sync(client, ann, {"source": "healthkit", "samples": [{**samples[0], "stage": "asleepCore"}]})
    sessions = client.get("/api/v1/me/sleep", headers=ann).json["items"]
    assert sorted(s["source"] for s in sessions) == ["health_connect", "healthkit"]
    hc = next(s for s in sessions if s["source"] == "health_connect")
    assert [s["stage"] for s in hc["stages"]] == ["light", "rem"] and hc["duration_min"] == 420


def test_synced_sleep_outranks_manual_and_estimated(client, login):
    ann, _ = login("ann")
    manual = client.post("/api/v1/me/sleep", headers=ann, json={
        "start": iso(NIGHT + timedelta(minutes=30)), "end": iso(NIGHT + timedelta(hours=7))}).json
    sync(client, ann, {"source": "healthkit", "samples": healthkit_batch()[:1]})
    counted = {s["source"]: s["counted"] for s in client.get("/api/v1/me/sleep", headers=ann).json["items"]}
    assert counted == {"healthkit": True, "manual": False}
    assert manual["id"]


@pytest.mark.parametrize("mutate", [
    lambda b: b["samples"].append(dict(b["samples"][0])),  # duplicate ids
    lambda b: b["samples"][6].update(value=4000, unit="count/min"),
    lambda b: b["samples"][8].update(value=4000),  # a body mass of 4,000 kg
    lambda b: b["samples"][0].update(end=iso(NIGHT + timedelta(hours=30))),
    lambda b: b["samples"][0].update(end=iso(NIGHT - timedelta(hours=1))),
    lambda b: b["samples"][6].update(at=iso(datetime.now(UTC) + timedelta(days=40))),
    lambda b: b["samples"][11].update(value=80, unit="L"),
    lambda b: b["samples"][0].update(stage="dreaming"),
    lambda b: b["samples"][6].pop("at"),
    lambda b: b.update(source="fitbit"),
    lambda b: b["samples"][6].update(type="blood_pressure"),
    lambda b: b.update(deleted=["hk-rhr-1"]),  # sent and deleted at once
])
def test_bad_batches_are_422_and_write_nothing(client, login, mutate):
    ann, _ = login("ann")
    body = {"source": "healthkit", "samples": healthkit_batch()}
    mutate(body)
    resp = client.post("/api/v1/health/sync", json=body, headers=ann)
    assert resp.status_code == 422, resp.json
    assert client.get("/api/v1/me/sleep", headers=ann).json["items"] == []
    assert client.get("/api/v1/me/body-metrics", headers=ann).json["items"] == []


def test_a_batch_of_100000_samples_is_refused(client, login):
    ann, _ = login("ann")
    sample = {"type": "steps", "source_id": "s", "start": iso(NIGHT), "end": iso(NIGHT + timedelta(minutes=1)),
              "value": 10}
    resp = client.post("/api/v1/health/sync", headers=ann, json={
        "source": "healthkit", "samples": [{**sample, "source_id": f"s{i}"} for i in range(100_000)]})
    assert resp.status_code == 413
    assert client.get("/api/v1/me/body-metrics", headers=ann).json["items"] == []
    over = [{**sample, "source_id": f"s{i}"} for i in range(10_001)]
    resp = client.post("/api/v1/health/sync", headers=ann, json={"source": "healthkit", "samples": over})
    assert resp.status_code == 413


def test_synced_records_are_the_owners_only(client, login):
    ann, _ = login("ann")
    bob, _ = login("bob")
    sync(client, ann, {"source": "healthkit", "samples": healthkit_batch()})
    for path in ("sleep", "body-metrics", "water", "meals"):
        for item in client.get(f"/api/v1/me/{path}", headers=ann).json["items"]:
            assert client.get(f"/api/v1/me/{path}/{item['id']}", headers=bob).status_code == 404
    # Bob sending Ann's source ids creates his own records and touches none of hers.
    result = sync(client, bob, {"source": "healthkit", "samples": healthkit_batch()[:2],
                                "deleted": ["hk-rhr-1"]})
    assert result["created"] == 2 and result["deleted"] == 0
    assert len(client.get("/api/v1/me/body-metrics", headers=ann).json["items"]) == 5


def test_apple_health_export_records_imported_once(client, login, monkeypatch):
    import gzip
    import io

    from domain import jobs
    from tasks.health import import_export
    from tests.support.health_export import small_export

    sent: list[tuple] = []
    monkeypatch.setattr(jobs, "send", lambda name, *args, **kw: sent.append((name, *args)) or True)
    ann, ann_id = login("ann")
    resp = client.post("/api/v1/health/export", headers=ann, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(gzip.compress(small_export())), "export.xml.gz")})
    assert resp.status_code == 202, resp.json
    [(name, user_id, key)] = sent
    assert name == jobs.HEALTH_IMPORT_EXPORT and user_id == ann_id
    counts = import_export(user_id, key)  # what the worker runs
    assert counts == {"records": 11, "skipped": 1, "created": 10, "updated": 0, "unchanged": 0}
    sleep = client.get("/api/v1/me/sleep", headers=ann).json["items"]
    assert len(sleep) == 1 and sleep[0]["source"] == "healthkit" and sleep[0]["duration_min"] == 490
    assert [s["stage"] for s in sleep[0]["stages"]] == ["in_bed", "light", "deep", "rem", "light"]
    kinds = sorted(m["kind"] for m in client.get("/api/v1/me/body-metrics", headers=ann).json["items"])
    assert kinds == ["hrv_sdnn", "resting_heart_rate", "weight"]
    assert client.get("/api/v1/me/water", headers=ann).json["items"][0]["ml"] == 330

    # The same export again (a re-export, a redelivered message) changes nothing.
    sent.clear()
    client.post("/api/v1/health/export", headers=ann, content_type="multipart/form-data",
                data={"file": (io.BytesIO(small_export()), "export.xml")})
    again = import_export(*sent[0][1:])
    assert again["created"] == 0 and again["unchanged"] == 10
    assert len(client.get("/api/v1/me/body-metrics", headers=ann).json["items"]) == 3

    not_export = client.post("/api/v1/health/export", headers=ann, content_type="multipart/form-data",
                             data={"file": (io.BytesIO(b"<gpx></gpx>"), "x.gpx")})
    assert not_export.status_code == 422


def test_a_synced_workout_already_uploaded_is_not_stored_twice(client, login):
    ann, ann_id = login("ann")
    start = (datetime.now(UTC) - timedelta(days=1)).replace(hour=7, minute=0, second=0, microsecond=0)
    uploaded = client.post("/api/v1/activities", headers=ann, json={
        "sport_type": "running", "start_date": iso(start), "elapsed_time_s": 1800, "distance_m": 5000}).json
    same = {"type": "workout", "source_id": "hk-w-same", "activity": "running",
            "start": iso(start + timedelta(seconds=40)), "end": iso(start + timedelta(seconds=1830))}
    other = {"type": "workout", "source_id": "hk-w-other", "activity": "cycling",
             "start": iso(start + timedelta(hours=5)), "end": iso(start + timedelta(hours=6))}
    assert sync(client, ann, {"source": "healthkit", "samples": [same, other]})["created"] == 2
    items = client.get(f"/api/v1/users/{ann_id}/activities", headers=ann).json["items"]
    assert sorted(a["sport_type"] for a in items) == ["cycling", "running"]
    sync(client, ann, {"source": "healthkit", "deleted": ["hk-w-same", "hk-w-other"]})
    items = client.get(f"/api/v1/users/{ann_id}/activities", headers=ann).json["items"]
    assert [a["id"] for a in items] == [uploaded["id"]]  # the upload stays; the synced-only workout went


# --- workouts with a route ------------------------------------------------------------------------------------

WORKOUT_START = (datetime.now(UTC) - timedelta(days=1)).replace(hour=7, minute=0, second=0, microsecond=0)


def _route_batch(route: list[dict]) -> dict:
    from tests.support.health_sync import workout

    return {"source": "healthkit", "samples": [*healthkit_batch(), workout("hk-route-1", WORKOUT_START, route=route)]}


def _short_route(n: int = 120) -> list[dict]:
    from tests.support.health_sync import route_of, workout_track

    return route_of(workout_track(WORKOUT_START, minutes=20))[:n]


def _written(ann: dict, ann_id: int, client) -> dict[str, int]:
    from sqlalchemy import func, select

    from models import HealthSyncItem, db

    return {"activities": len(client.get(f"/api/v1/users/{ann_id}/activities", headers=ann).json["items"]),
            "uploads": len(client.get("/api/v1/uploads", headers=ann).json["items"]),
            "sleep": len(client.get("/api/v1/me/sleep", headers=ann).json["items"]),
            "items": db.session.scalar(select(func.count()).select_from(HealthSyncItem)) or 0}


def _far(point: dict, minutes: float) -> dict:
    return {**point, "at": iso(datetime.fromisoformat(point["at"]) + timedelta(minutes=minutes))}


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda r: r.__setitem__(5, {**r[5], "lat": 200}), "Point 5: the latitude must be between -90 and 90."),
    (lambda r: r.__setitem__(7, {**r[7], "lon": -180.5}), "Point 7: the longitude must be between -180 and 180."),
    (lambda r: r.__setitem__(0, _far(r[0], -3)), "Point 0: its time is outside the workout"),
    (lambda r: r.append(_far(r[-1], 25)), "Point 120: its time is outside the workout"),
])
def test_a_bad_route_refuses_the_whole_batch_naming_the_sample(client, login, mutate, message):
    ann, ann_id = login("ann")
    route = _short_route()
    mutate(route)
    resp = client.post("/api/v1/health/sync", json=_route_batch(route), headers=ann)
    assert resp.status_code == 422, resp.json
    [said] = resp.json["errors"]["json"]["samples"]["14"]["route"]  # the workout is sample 14 of the batch
    assert said.startswith(message), said
    assert _written(ann, ann_id, client) == {"activities": 0, "uploads": 0, "sleep": 0, "items": 0}


def test_a_route_of_too_many_points_is_refused(app, client, login, monkeypatch):
    from domain.health_sync.workouts import MAX_ROUTE_POINTS

    ann, ann_id = login("ann")
    # One point a second for a whole day is the most a route may have; the request limit is raised so that the
    # route's own limit is what answers (the default 4 MB holds about 60,000 points).
    monkeypatch.setitem(app.config, "HEALTH_SYNC_MAX_BYTES", 16 * 1024 * 1024)
    start = WORKOUT_START - timedelta(days=1)
    route = [{"at": iso(start + timedelta(seconds=i * 86_399 / MAX_ROUTE_POINTS)), "lat": 46.0 + i * 1e-6,
              "lon": 14.5} for i in range(MAX_ROUTE_POINTS + 1)]
    sample = {"type": "workout", "source_id": "hk-ultra", "activity": "running", "start": iso(start),
              "end": iso(start + timedelta(hours=24)), "route": route}
    resp = client.post("/api/v1/health/sync", json={"source": "healthkit", "samples": [sample]}, headers=ann)
    assert resp.status_code == 422, resp.json
    assert resp.json["errors"]["json"]["samples"]["0"]["route"] == [
        f"A route has at most {MAX_ROUTE_POINTS:,} points; this one has {MAX_ROUTE_POINTS + 1:,}."]
    assert _written(ann, ann_id, client) == {"activities": 0, "uploads": 0, "sleep": 0, "items": 0}


def test_only_a_workout_has_a_route(client, login):
    ann, ann_id = login("ann")
    body = {"source": "healthkit", "samples": healthkit_batch()}
    body["samples"][6]["route"] = _short_route(3)
    resp = client.post("/api/v1/health/sync", json=body, headers=ann)
    assert resp.status_code == 422
    assert resp.json["errors"]["json"]["samples"]["6"]["route"] == ["Only a workout has a route."]
    assert _written(ann, ann_id, client)["items"] == 0


def test_a_route_is_stored_in_time_order_as_a_private_gpx_upload(client, login):
    from sqlalchemy import select

    from domain.algorithms.parsing import parse_bytes
    from models import Upload, db
    from models.storage import storage

    ann, ann_id = login("ann")
    route = _short_route(300)
    shuffled = route[150:] + route[:150]  # sent out of order: sorted, not refused
    result = sync(client, ann, _route_batch(shuffled))
    assert result["created"] == 15
    [made] = result["uploads"]
    assert made["source_id"] == "hk-route-1" and made["status"] == "queued"
    upload = db.session.scalar(select(Upload).where(Upload.id == made["upload_id"]))
    assert upload is not None and upload.user_id == ann_id and upload.data_type == "gpx"
    assert (upload.visibility, upload.sport_type, upload.external_id) == ("only_me", "running",
                                                                         "healthkit:hk-route-1")
    track = parse_bytes(storage.get(upload.storage_key), "gpx")
    assert len(track) == 300 and (track.time[1:] > track.time[:-1]).all()
    assert track.time[0] == datetime.fromisoformat(route[0]["at"]).timestamp()
    assert track.device == "Apple Health" and track.has("hr") and track.has("ele")
    # Only the batch's route-less workout is an activity yet; the pipeline makes the route's
    # (tests/tasks/test_health_sync_routes.py).
    listed = client.get(f"/api/v1/users/{ann_id}/activities", headers=ann).json["items"]
    assert [(a["manual"], a["has_gps"]) for a in listed] == [(True, False)]


def test_routes_count_against_the_upload_quota_before_anything_is_written(app, client, login, monkeypatch):
    from tests.support.health_sync import workout

    ann, ann_id = login("ann")
    monkeypatch.setitem(app.config, "UPLOAD_DAILY_QUOTA", 1)
    two = [workout(f"hk-route-{i}", WORKOUT_START + timedelta(hours=i), route=_short_route()) for i in (0, 3)]
    two[1]["route"] = [{**p, "at": iso(datetime.fromisoformat(p["at"]) + timedelta(hours=3))} for p in two[1]["route"]]
    resp = client.post("/api/v1/health/sync", headers=ann, json={"source": "healthkit",
                                                                "samples": [*healthkit_batch(), *two]})
    assert resp.status_code == 429 and "1 a day" in resp.json["message"], resp.json
    assert _written(ann, ann_id, client) == {"activities": 0, "uploads": 0, "sleep": 0, "items": 0}


def test_routes_whose_upload_failed_after_the_commit_are_made_when_the_batch_comes_again(client, login,
                                                                                          monkeypatch):
    from sqlalchemy import func, select, update

    from models import HealthSyncItem, Upload, db
    from models.storage import StorageError, storage

    ann, ann_id = login("ann")
    body = _route_batch(_short_route())
    real_put = storage.put

    def down(key: str, data: bytes) -> None:
        raise StorageError("object storage unreachable")

    monkeypatch.setattr(storage, "put", down)
    def link() -> tuple:
        return tuple(db.session.execute(select(HealthSyncItem.record_table, HealthSyncItem.record_id).where(
            HealthSyncItem.source_id == "hk-route-1")).one())

    resp = client.post("/api/v1/health/sync", json=body, headers=ann)
    assert resp.status_code == 503, resp.json  # the batch was committed; its route's upload could not be made
    assert link() == ("uploads", None)
    assert _written(ann, ann_id, client)["uploads"] == 0

    monkeypatch.setattr(storage, "put", real_put)
    again = sync(client, ann, body)  # the app retries the batch
    assert again["unchanged"] == 15 and [u["source_id"] for u in again["uploads"]] == ["hk-route-1"]
    upload_id = again["uploads"][0]["upload_id"]
    assert link() == ("uploads", upload_id)

    # Made, but its link lost (the process died between the two commits): the same upload is found again, by its
    # idempotency key, not made twice.
    db.session.execute(update(HealthSyncItem).where(HealthSyncItem.source_id == "hk-route-1").values(record_id=None))
    third = sync(client, ann, body)
    assert [u["upload_id"] for u in third["uploads"]] == [upload_id]
    assert db.session.scalar(select(func.count()).select_from(Upload).where(Upload.user_id == ann_id)) == 1
    assert sync(client, ann, body)["uploads"] == []
