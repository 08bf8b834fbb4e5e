"""The upload chain end to end: real API, real PostgreSQL, real Redis broker, real Celery worker."""

from __future__ import annotations

import gzip
import io
import threading
import zipfile
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import func, select, text

from models import Activity, Upload, db
from tests.support.synthetic import synthetic_track, to_gpx
from tests.support.uploads import upload, upload_and_wait, wait_for

pytestmark = pytest.mark.pipeline


@pytest.fixture(scope="module")
def run_gpx() -> bytes:
    return to_gpx(synthetic_track(seed=11, n_points=1200, speed_mps=3.2))


def test_upload_becomes_an_activity_with_metrics_map_and_streams(live_client, live_login, run_gpx):
    ann, _ = live_login("ann")
    resp = upload(live_client, ann, run_gpx, "morning.gpx", name="Tempo", sport_type="running")
    assert resp.status_code == 201
    body = resp.json
    assert set(body) >= {"id", "status", "error", "activity_id", "external_id"}
    assert body["status"] in ("queued", "processing", "ready")
    done = wait_for(live_client, ann, body["id"])
    assert done["status"] == "ready", done
    activity = live_client.get(f"/api/v1/activities/{done['activity_id']}", headers=ann).json
    assert activity["name"] == "Tempo" and activity["sport_type"] == "running"
    # 1,200 s at ~3.2 m/s.
    assert 3300 < activity["distance_m"] < 4300
    assert activity["elapsed_time_s"] == pytest.approx(1199, abs=1)
    assert activity["map"]["polyline"] and activity["start_latlng"]
    assert activity["avg_hr"] and activity["splits_metric"]
    streams = live_client.get(f"/api/v1/activities/{done['activity_id']}/streams?keys=time,latlng,heartrate,distance",
                              headers=ann).json
    assert len(streams["time"]["data"]) == 1200 and streams["latlng"]["data"][0] == pytest.approx(
        activity["start_latlng"], abs=1e-5)
    low = live_client.get(f"/api/v1/activities/{done['activity_id']}/streams?keys=time&resolution=low",
                          headers=ann).json
    assert len(low["time"]["data"]) == 100
    original = live_client.get(f"/api/v1/activities/{done['activity_id']}/export/original", headers=ann)
    assert original.status_code == 200 and original.data == run_gpx


def test_same_file_again_is_a_duplicate_of_the_existing_activity(live_client, live_login, run_gpx):
    ann, _ = live_login("ann")
    first = upload_and_wait(live_client, ann, run_gpx)
    again = upload(live_client, ann, run_gpx).json
    assert again["status"] == "duplicate" and again["activity_id"] == first["activity_id"]
    # Another athlete may upload the same file: it's theirs.
    bob, _ = live_login("bob")
    assert upload_and_wait(live_client, bob, run_gpx)["status"] == "ready"


def test_concurrent_identical_uploads_make_exactly_one_activity(app, live_client, live_login, run_gpx):
    """Bypass the view's early duplicate check: the database constraint alone must decide."""
    from models.storage import storage
    from tasks import pipeline

    ann, ann_id = live_login("ann")
    import hashlib
    sha = hashlib.sha256(run_gpx).hexdigest()
    key = f"uploads/{ann_id}/{sha}.gpx"
    storage.put(key, run_gpx)
    ids = []
    for _ in range(4):
        u = Upload(user_id=ann_id, storage_key=key, size_bytes=len(run_gpx), sha256=sha, data_type="gpx")
        db.session.add(u)
        db.session.commit()
        ids.append(u.id)
    threads = [threading.Thread(target=pipeline.enqueue, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = [wait_for(live_client, ann, i) for i in ids]
    assert sorted(f["status"] for f in final) == ["duplicate", "duplicate", "duplicate", "ready"]
    assert len({f["activity_id"] for f in final}) == 1
    assert db.session.scalar(select(func.count()).select_from(Activity).where(Activity.user_id == ann_id)) == 1


def test_idempotency_key_returns_the_same_upload(live_client, live_login, run_gpx):
    ann, _ = live_login("ann")
    first = upload(live_client, ann, run_gpx, idempotency_key="k-1").json
    second = upload(live_client, ann, run_gpx, idempotency_key="k-1").json
    assert second["id"] == first["id"]
    other = upload(live_client, ann, to_gpx(synthetic_track(seed=99, n_points=300)), idempotency_key="k-1")
    assert other.status_code == 409 and other.json["code"] == 409
    wait_for(live_client, ann, first["id"])


@pytest.mark.parametrize("payload, filename, needle", [
    (b"<gpx version='1.1'><trk><trkseg><trkpt lat='1' lon='2'>", "broken.gpx", "not valid GPX"),
    (b"<?xml version='1.0'?><gpx version='1.1' creator='x'></gpx>", "empty.gpx", "no track points"),
    (b"\x0e\x10\x00\x00\x00\x00\x00\x00.FIT" + b"\x00" * 30, "bad.fit", "FIT"),
])
def test_bad_files_fail_with_a_clear_message(live_client, live_login, payload, filename, needle):
    ann, _ = live_login("ann")
    done = upload_and_wait(live_client, ann, payload, filename)
    assert done["status"] == "failed"
    assert needle.lower() in done["error"].lower()
    assert "Traceback" not in done["error"]


def test_unrecognisable_or_empty_file_is_422_at_upload(live_client, live_login):
    ann, _ = live_login("ann")
    resp = upload(live_client, ann, b"just some text", "notes.txt")
    assert resp.status_code == 422 and resp.json["message"]
    assert upload(live_client, ann, b"", "empty.gpx").status_code == 422
    assert live_client.post("/api/v1/uploads", headers=ann, data={}).status_code == 422


def test_gzipped_upload(live_client, live_login):
    ann, _ = live_login("ann")
    data = gzip.compress(to_gpx(synthetic_track(seed=5, n_points=200)))
    done = upload_and_wait(live_client, ann, data, "ride.gpx.gz")
    assert done["status"] == "ready" and done["data_type"] == "gpx.gz"


def test_zip_makes_one_upload_per_file_and_a_bad_one_fails_alone(live_client, live_login):
    ann, _ = live_login("ann")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.gpx", to_gpx(synthetic_track(seed=1, n_points=200)))
        zf.writestr("b.gpx", to_gpx(synthetic_track(seed=2, n_points=200)))
        zf.writestr("c.gpx", b"<gpx><trk><trkseg><trkpt lat='x'")
        zf.writestr("readme.txt", b"ignored")
    resp = upload(live_client, ann, buf.getvalue(), "export.zip")
    assert resp.status_code == 201, resp.json
    batch = resp.json
    assert len(batch["uploads"]) == 3 and batch["batch_id"]
    final = {u["filename"]: wait_for(live_client, ann, u["id"])["status"] for u in batch["uploads"]}
    assert final == {"a.gpx": "ready", "b.gpx": "ready", "c.gpx": "failed"}
    listed = live_client.get(f"/api/v1/uploads?batch_id={batch['batch_id']}", headers=ann).json
    assert len(listed["items"]) == 3


def test_sweeper_recovers_an_upload_whose_message_was_lost(app, live_client, live_login, run_gpx, monkeypatch):
    """Broker down at enqueue time (the message never left): the row waits in `queued` and the sweeper
    sends it again."""
    from tasks import maintenance, pipeline

    ann, _ = live_login("ann")
    monkeypatch.setattr(pipeline, "build_chain", lambda upload_id: (_ for _ in ()).throw(ConnectionError("down")))
    resp = upload(live_client, ann, run_gpx)
    assert resp.status_code == 201 and resp.json["status"] == "queued"
    monkeypatch.undo()
    db.session.execute(text("UPDATE uploads SET updated_at = now() - interval '1 hour'"))
    db.session.commit()
    assert maintenance.sweep_uploads.apply_async(ignore_result=False).get(timeout=30) == 1
    assert wait_for(live_client, ann, resp.json["id"])["status"] == "ready"


def _die_at_stage_then_sweep(app, upload_id: int, stage: str) -> None:
    """Leave the upload as a worker killed at ``stage`` an hour ago would, and run the sweeper, which re-sends it."""
    from tasks import maintenance

    db.session.execute(text("UPDATE uploads SET status='processing', stage=:s, "
                            "updated_at = now() - interval '1 hour' WHERE id = :i"), {"i": upload_id, "s": stage})
    db.session.commit()
    old = app.config["UPLOAD_STALE_PROCESSING_S"]
    app.config["UPLOAD_STALE_PROCESSING_S"] = 60
    try:
        assert maintenance.sweep_uploads.apply_async(ignore_result=False).get(timeout=30) == 1
    finally:
        app.config["UPLOAD_STALE_PROCESSING_S"] = old


def test_sweeper_resumes_an_upload_whose_worker_died_mid_stage(app, live_client, live_login, run_gpx):
    """A worker killed mid-task leaves the upload `processing` (and possibly the activity half done)."""
    ann, ann_id = live_login("ann")
    done = upload_and_wait(live_client, ann, to_gpx(synthetic_track(seed=3, n_points=300)))
    # Simulate the crash window after the activity was stored but before the chain finished.
    _die_at_stage_then_sweep(app, done["id"], "ingest")
    again = wait_for(live_client, ann, done["id"])
    assert again["status"] == "ready" and again["activity_id"] == done["activity_id"]
    assert db.session.scalar(select(func.count()).select_from(Activity).where(Activity.user_id == ann_id)) == 1
    from domain.uploads import lifecycle
    assert lifecycle.MAX_ATTEMPTS > 1


def test_a_run_that_finds_its_activity_stored_only_publishes(app, live_client, live_login):
    """The worker died after the ingest stage committed, while publishing: the next run publishes without
    reading the file again (here it is gone from storage, which a second ingest would fail on)."""
    from models.storage import storage

    ann, ann_id = live_login("ann")
    done = upload_and_wait(live_client, ann, to_gpx(synthetic_track(seed=5, n_points=300)))
    key = db.session.scalar(select(Upload.storage_key).where(Upload.id == done["id"]))
    storage.delete(key)
    _die_at_stage_then_sweep(app, done["id"], "stored")
    again = wait_for(live_client, ann, done["id"])
    assert again["status"] == "ready" and again["error"] is None, again
    assert again["activity_id"] == done["activity_id"]
    assert db.session.scalar(select(func.count()).select_from(Activity).where(Activity.user_id == ann_id)) == 1


def test_transient_failures_requeue_and_permanent_ones_fail(app, live_client, live_login):
    from domain.uploads.lifecycle import MAX_ATTEMPTS, mark_failed_or_requeue
    from models.storage import StorageError

    _, ann_id = live_login("ann")
    u = Upload(user_id=ann_id, storage_key="k", size_bytes=1, sha256="0" * 64, status="processing", attempts=1)
    db.session.add(u)
    db.session.commit()
    mark_failed_or_requeue(u.id, StorageError("s3 down"))
    db.session.refresh(u)
    assert u.status == "queued" and u.error is None
    u.attempts = MAX_ATTEMPTS
    u.status = "processing"
    db.session.commit()
    mark_failed_or_requeue(u.id, StorageError("s3 down"))
    db.session.refresh(u)
    assert u.status == "failed" and "internal error" in u.error
    u.status = "processing"
    db.session.commit()
    mark_failed_or_requeue(u.id, ZeroDivisionError("bug"))
    db.session.refresh(u)
    assert u.status == "failed" and "bug" not in u.error


def test_delete_activity_removes_everything_derived(live_client, live_login, run_gpx):
    from models.storage import storage

    ann, _ = live_login("ann")
    done = upload_and_wait(live_client, ann, run_gpx)
    key = db.session.get(Upload, done["id"]).storage_key
    assert live_client.delete(f"/api/v1/activities/{done['activity_id']}", headers=ann).status_code == 204
    assert live_client.get(f"/api/v1/activities/{done['activity_id']}", headers=ann).status_code == 404
    assert db.session.scalar(text("SELECT count(*) FROM activity_streams")) == 0
    with pytest.raises(KeyError):
        storage.get(key)
    # The same file can be uploaded again afterwards.
    assert upload_and_wait(live_client, ann, run_gpx)["status"] == "ready"


def test_indoor_file_becomes_an_activity_without_a_map(live_client, live_login):
    ann, _ = live_login("ann")
    track = synthetic_track(seed=4, n_points=600)
    track.lat[:] = np.nan
    track.lon[:] = np.nan
    tcx = _tcx_without_position(track)
    done = upload_and_wait(live_client, ann, tcx, "treadmill.tcx")
    assert done["status"] == "ready", done
    activity = live_client.get(f"/api/v1/activities/{done['activity_id']}", headers=ann).json
    assert activity["map"] is None and activity["has_gps"] is False and activity["start_latlng"] is None
    assert activity["avg_hr"] is not None


def _tcx_without_position(track) -> bytes:
    from datetime import UTC, datetime

    points = "".join(
        f"<Trackpoint><Time>{datetime.fromtimestamp(t, UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}</Time>"
        f"<HeartRateBpm><Value>{int(h)}</Value></HeartRateBpm></Trackpoint>"
        for t, h in zip(track.time, track.hr, strict=True))
    return (f'<?xml version="1.0"?><TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/'
            f'TrainingCenterDatabase/v2"><Activities><Activity Sport="Running"><Id>x</Id><Lap StartTime="'
            f'{datetime.fromtimestamp(track.time[0], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}"><Track>{points}'
            f"</Track></Lap></Activity></Activities></TrainingCenterDatabase>").encode()


@pytest.mark.parametrize("stage", ["publish", "stored"])  # its own task, or after ingest in the same one
def test_a_later_stage_failing_for_good_keeps_the_activity_and_says_so(app, live_client, live_login, stage):
    from domain.uploads.lifecycle import mark_failed_or_requeue

    _, ann_id = live_login("ann")
    u = Upload(user_id=ann_id, storage_key="k", size_bytes=1, sha256="1" * 64, status="processing", attempts=1,
               stage=stage)
    db.session.add(u)
    db.session.commit()
    a = Activity(user_id=ann_id, upload_id=u.id, name="x", sport_type="running", visibility="everyone",
                 start_time=datetime.now(UTC), details={}, has_gps=False, point_count=0)
    db.session.add(a)
    db.session.commit()
    u.activity_id = a.id
    db.session.commit()
    mark_failed_or_requeue(u.id, ZeroDivisionError("bug"))
    db.session.refresh(u)
    assert u.status == "ready" and u.activity_id == a.id
    assert u.error == "Your activity is saved, but segment matching or the feed could not be completed."
