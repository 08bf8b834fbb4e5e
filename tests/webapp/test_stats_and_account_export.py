"""Athlete stats (v1; v3 translates the same function) and the whole-account export on the real worker."""

from __future__ import annotations

import io
import json
import time
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.synthetic import synthetic_track, to_gpx
from tests.support.uploads import upload, upload_and_wait


@pytest.fixture
def ingest(app):
    from tasks import stages

    def run(resp) -> None:
        assert resp.status_code == 201, resp.json
        with app.app_context():
            stages.ingest.run(resp.json["id"], last=True)

    return run


def test_stats_windows_sports_and_visibility(client, login, ingest):
    ann, ann_id = login("ann")
    bob, _ = login("bob")
    now = datetime.now(UTC)
    recent = synthetic_track(seed=81, n_points=900, start_time=(now - timedelta(days=3)).timestamp())
    older = synthetic_track(seed=82, n_points=900, start_time=(now - timedelta(days=40)).timestamp())
    last_year = synthetic_track(seed=83, n_points=900, speed_mps=7.0, sport="cycling",
                                start_time=datetime(now.year - 1, 6, 1, tzinfo=UTC).timestamp())
    ingest(upload(client, ann, to_gpx(recent), "a.gpx"))
    ingest(upload(client, ann, to_gpx(older), "b.gpx", visibility="followers"))
    ingest(upload(client, ann, to_gpx(last_year), "c.gpx"))
    own = client.get(f"/api/v1/users/{ann_id}/stats", headers=ann).json
    acts = {a["start_date"][:10]: a for a in
            client.get(f"/api/v1/users/{ann_id}/activities", headers=ann).json["items"]}
    run_recent = acts[datetime.fromtimestamp(recent.time[0], UTC).date().isoformat()]
    run_older = acts[datetime.fromtimestamp(older.time[0], UTC).date().isoformat()]
    assert own["recent"]["running"]["count"] == 1
    assert own["recent"]["running"]["distance_m"] == pytest.approx(run_recent["distance_m"], abs=0.1)
    assert own["all"]["running"]["count"] == 2
    assert own["all"]["running"]["distance_m"] == pytest.approx(
        run_recent["distance_m"] + run_older["distance_m"], abs=0.2)
    assert "cycling" not in own["ytd"] and own["all"]["cycling"]["count"] == 1
    assert own["biggest_ride_distance_m"] > 5000
    # A stranger counts only what they may see: not the followers-only run.
    stranger = client.get(f"/api/v1/users/{ann_id}/stats", headers=bob).json
    assert stranger["all"]["running"]["count"] == 1
    assert client.get("/api/v1/users/987654/stats", headers=bob).status_code == 404
    v3 = client.get(f"/api/v3/athletes/{ann_id}/stats", headers=bob).json
    assert v3["all_run_totals"]["count"] == 1 and v3["all_ride_totals"]["count"] == 1
    assert v3["recent_run_totals"]["distance"] == stranger["recent"]["running"]["distance_m"]


def test_account_export_zip_link_and_notification(live_client, live_login, app):
    ann, ann_id = live_login("ann")
    bob, _ = live_login("bob")
    track = synthetic_track(seed=84, n_points=600)
    done = upload_and_wait(live_client, ann, to_gpx(track), "morning.gpx")
    activity_id = done["activity_id"]
    live_client.post(f"/api/v1/activities/{activity_id}/comments", headers=ann, json={"text": "felt good"})
    post = live_client.post("/api/v1/posts", headers=ann, json={"text": "hello"})
    assert post.status_code == 201, post.json
    assert live_client.get("/api/v1/me/export", headers=ann).status_code == 404

    first = live_client.post("/api/v1/me/export", headers=ann)
    assert first.status_code == 202
    deadline = time.monotonic() + 60
    while True:
        state = live_client.get("/api/v1/me/export", headers=ann).json
        if state["status"] in ("ready", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert state["status"] == "ready" and state["id"] == first.json["id"], state

    link = state["download_url"]
    assert link.startswith(f"/downloads/account-exports/{state['id']}?expires=")
    resp = live_client.get(link)  # no bearer token: the signed link is the credential
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(resp.data))
    names = set(zf.namelist())
    assert {"README.txt", "profile.json", "activities.json", f"activities/{activity_id}.gpx",
            f"activities/{activity_id}/original.gpx", "efforts.json", "posts.json", "comments.json",
            "messages.json", "kudos.json", "achievements.json"} <= names
    assert zf.read(f"activities/{activity_id}/original.gpx") == to_gpx(track)
    assert json.loads(zf.read("profile.json"))["id"] == ann_id
    assert [a["id"] for a in json.loads(zf.read("activities.json"))] == [activity_id]
    assert [c["text"] for c in json.loads(zf.read("comments.json"))] == ["felt good"]
    assert [p["text"] for p in json.loads(zf.read("posts.json"))] == ["hello"]

    kinds = [n["kind"] for n in live_client.get("/api/v1/notifications", headers=ann).json["items"]]
    assert "account_export" in kinds
    tampered = link.replace("sig=", "sig=0")
    assert live_client.get(tampered).status_code == 404
    expired = link.split("?")[0] + "?expires=1&sig=" + link.split("sig=")[1]
    assert live_client.get(expired).status_code == 404
    assert live_client.get("/api/v1/me/export", headers=bob).status_code == 404


def test_a_second_export_request_while_one_runs_returns_it(client, login, app):
    # No worker here: the first export stays queued, as it would while a worker builds it.
    ann, _ = login("ann")
    bob, _ = login("bob")
    first = client.post("/api/v1/me/export", headers=ann)
    second = client.post("/api/v1/me/export", headers=ann)
    assert first.status_code == second.status_code == 202
    assert first.json["id"] == second.json["id"] and second.json["status"] == "queued"
    assert second.json["download_url"] is None
    assert client.post("/api/v1/me/export", headers=bob).json["id"] != first.json["id"]
    # Once it is finished (or failed), a new request starts a new export.
    from models import AccountExport, db
    db.session.get(AccountExport, first.json["id"]).status = "failed"
    db.session.commit()
    third = client.post("/api/v1/me/export", headers=ann).json
    assert third["id"] != first.json["id"] and third["status"] == "queued"
