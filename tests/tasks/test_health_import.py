"""Apple Health exports and zips through the real pipeline: stored once, read once, capped and under quota."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from domain.algorithms.parsing import healthkit
from models import Activity, Upload, db
from tests.support.health import health_export
from tests.support.synthetic import synthetic_track, to_gpx
from tests.support.uploads import upload, wait_for

pytestmark = pytest.mark.pipeline


@pytest.fixture
def io_counts(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Bytes written to object storage and full reads of an Apple Health export, by the API and the worker
    (both run in this process)."""
    from models.storage import storage

    counts = {"put_bytes": 0, "puts": 0, "health_reads": 0}
    real_put, real_read = storage.put, healthkit._Reader.read

    def put(key: str, data: bytes) -> None:
        counts["put_bytes"] += len(data)
        counts["puts"] += 1
        real_put(key, data)

    def read(self: Any, data: Any) -> None:
        counts["health_reads"] += 1
        real_read(self, data)

    monkeypatch.setattr(storage, "put", put)
    monkeypatch.setattr(healthkit._Reader, "read", read)
    yield counts


def test_export_is_stored_once_and_read_once_for_all_its_workouts(live_client, live_login, io_counts):
    ann, ann_id = live_login("ann")
    export = health_export(12, points=90)
    resp = upload(live_client, ann, export, "export.xml")
    assert resp.status_code == 201, resp.json
    batch = resp.json
    assert batch["batch_id"] and len(batch["uploads"]) == 12
    assert all(u["data_type"] == "health" and u["batch_id"] == batch["batch_id"] for u in batch["uploads"])
    final = [wait_for(live_client, ann, u["id"]) for u in batch["uploads"]]
    assert [f["status"] for f in final] == ["ready"] * 12, final
    assert len({f["activity_id"] for f in final}) == 12
    sports = [live_client.get(f"/api/v1/activities/{f['activity_id']}", headers=ann).json["sport_type"]
              for f in final[:4]]
    assert sports == ["running", "cycling", "walking", "hiking"]  # workout i is upload i
    # One stored copy of the file (not one per workout), one parse of it (not one per workout).
    assert io_counts["puts"] == 1 and io_counts["put_bytes"] == len(export)
    assert io_counts["health_reads"] == 1

    # The same export again: every workout is a duplicate, nothing is written or read.
    again = upload(live_client, ann, export, "export.xml").json
    assert [u["status"] for u in again["uploads"]] == ["duplicate"] * 12
    assert io_counts["puts"] == 1 and io_counts["health_reads"] == 1
    assert db.session.scalar(select(func.count()).select_from(Activity).where(Activity.user_id == ann_id)) == 12


def test_a_bad_workout_fails_alone_and_the_rest_of_its_export_is_imported(live_client, live_login, io_counts):
    ann, _ = live_login("ann")
    export = health_export(3, points=60, empty=frozenset({1}))  # workout 1: nothing to import
    batch = upload(live_client, ann, export, "export.xml").json
    final = [wait_for(live_client, ann, u["id"]) for u in batch["uploads"]]
    assert [f["status"] for f in final] == ["ready", "failed", "ready"], final
    assert final[1]["error"] and "Traceback" not in final[1]["error"]
    assert io_counts["health_reads"] == 1


def test_unreadable_export_fails_every_workout_with_one_sentence(app, live_client, live_login, monkeypatch,
                                                                 io_counts):
    from models.storage import storage

    ann, _ = live_login("ann")
    export = health_export(3)
    real_get = storage.get
    # The stored copy is damaged after it was accepted (the API validated the original).
    monkeypatch.setattr(storage, "get", lambda key: real_get(key)[:-200] if key.endswith(".health") else real_get(key))
    batch = upload(live_client, ann, export, "export.xml").json
    final = [wait_for(live_client, ann, u["id"]) for u in batch["uploads"]]
    assert [f["status"] for f in final] == ["failed"] * 3
    assert len({f["error"] for f in final}) == 1 and "Apple Health" in final[0]["error"]
    # One failed read of the file fails all its workouts (not one read per workout).
    assert io_counts["health_reads"] == 1


def _zip(n: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(n):
            zf.writestr(f"r{i}.gpx", to_gpx(synthetic_track(seed=40 + i, n_points=60)))
    return buf.getvalue()


def test_workouts_per_file_are_capped(app, live_client, live_login, monkeypatch):
    ann, _ = live_login("ann")
    monkeypatch.setitem(app.config, "UPLOAD_MAX_ITEMS_PER_FILE", 5)
    resp = upload(live_client, ann, health_export(6), "export.xml")
    assert resp.status_code == 422 and "at most 5" in resp.json["message"], resp.json
    resp = upload(live_client, ann, _zip(6), "many.zip")
    assert resp.status_code == 422 and "at most 5" in resp.json["message"], resp.json
    assert db.session.scalar(select(func.count()).select_from(Upload)) == 0


def test_uploads_per_account_and_day_are_capped(app, live_client, live_login, monkeypatch):
    ann, _ = live_login("ann")
    bob, _ = live_login("bob")
    monkeypatch.setitem(app.config, "UPLOAD_DAILY_QUOTA", 4)
    resp = upload(live_client, ann, health_export(5), "export.xml")
    assert resp.status_code == 429 and "4 a day" in resp.json["message"], resp.json
    assert resp.headers.get("Retry-After")
    assert upload(live_client, ann, _zip(3), "three.zip").status_code == 201
    assert upload(live_client, ann, _zip(2), "two.zip").status_code == 429
    assert upload(live_client, ann, to_gpx(synthetic_track(seed=77, n_points=60))).status_code == 201
    assert upload(live_client, ann, to_gpx(synthetic_track(seed=78, n_points=60))).status_code == 429
    # The quota is per account.
    assert upload(live_client, bob, _zip(3), "three.zip").status_code == 201
