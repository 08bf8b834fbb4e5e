"""Live sessions end to end: saved through the real upload pipeline and worker; the abandoned-session sweeper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.support.uploads import wait_for
from tests.webapp.test_live import (
    FAR_M,
    HOME,
    ZONE_R,
    ChannelListener,
    _fresh_t0,  # noqa: F401 - autouse: point times near each test's start
    add_zone,
    dist_home,
    follow,
    send,
    start,
    track,
)


def test_finish_with_save_becomes_an_activity_through_the_pipeline(live_client, live_login):
    ann, ann_id = live_login("ann")
    fol, _ = live_login("fol")
    follow(live_client, fol, ann_id)
    add_zone(live_client, ann)
    sid = start(live_client, ann, title="Lunch loop", visibility="followers", sport_type="running")["id"]
    t0 = datetime.now(UTC) - timedelta(seconds=400)
    # 200 points, 1 s and 7 m apart: a 1.4 km run away from home, with heart rate. Its end lies beyond FAR_M, so
    # the follower always sees some of it (at 3.5 m apart the whole run could fall inside the hidden discs, which
    # depend on the activity id: the test then failed or passed by the ids earlier tests had used).
    pts = track(200, step_m=7.0, t0=t0, dt_s=1.0)
    send(live_client, ann, sid, pts[:100])
    send(live_client, ann, sid, pts[100:])

    body = live_client.post(f"/api/v1/live-sessions/{sid}/finish", json={"save": True}, headers=ann).json
    assert body["status"] == "ended" and body["upload_id"]
    # A retried finish returns the same upload (idempotency key), never a second activity.
    again = live_client.post(f"/api/v1/live-sessions/{sid}/finish", json={"save": True}, headers=ann).json
    assert again["upload_id"] == body["upload_id"]

    done = wait_for(live_client, ann, body["upload_id"])
    assert done["status"] == "ready", done
    activity_id = done["activity_id"]
    assert live_client.get(f"/api/v1/live-sessions/{sid}", headers=ann).json["activity_id"] == activity_id

    activity = live_client.get(f"/api/v1/activities/{activity_id}", headers=ann).json
    assert activity["name"] == "Lunch loop" and activity["sport_type"] == "running"
    assert activity["visibility"] == "followers"
    assert activity["distance_m"] == pytest.approx(199 * 7.0, rel=0.02)
    assert activity["elapsed_time_s"] == pytest.approx(199.0)
    assert activity["avg_hr"] == pytest.approx(sum(p["hr"] for p in pts) / 200, abs=0.5)
    # The activity gets the usual privacy: the follower's streams stay out of the zone.
    streams = live_client.get(f"/api/v1/activities/{activity_id}/streams?keys=latlng", headers=fol).json
    latlng = streams["latlng"]["data"]
    assert FAR_M < 199 * 7.0
    assert latlng and all(dist_home({"lat": a, "lng": b}) > ZONE_R for a, b in latlng)
    owner_streams = live_client.get(f"/api/v1/activities/{activity_id}/streams?keys=latlng&resolution=high",
                                    headers=ann).json
    assert len(owner_streams["latlng"]["data"]) == 200
    assert owner_streams["latlng"]["data"][0] == pytest.approx(list(HOME), abs=1e-6)


def test_sweeper_ends_idle_sessions_and_announces_it(app, client, login, db_tx):
    from tasks.live import sweep_live_sessions

    ann, _ = login("ann")
    bob, _ = login("bob")
    idle = start(client, ann)["id"]
    send(client, ann, idle, track(3, start=(48.0, 2.0)))
    busy = start(client, bob)["id"]
    send(client, bob, busy, track(3, start=(48.0, 2.0)))
    db_tx.execute(sa.text("UPDATE live_sessions SET last_point_at = now() - interval '16 minutes' WHERE id = :id"),
                  {"id": idle})
    listener = ChannelListener(idle)
    try:
        assert sweep_live_sessions() == 1
        assert listener.frames() == [{"type": "live.ended", "session_id": idle, "reason": "abandoned",
                                      "elapsed_s": 1.0}]
    finally:
        listener.close()
    ended = client.get(f"/api/v1/live-sessions/{idle}", headers=ann).json
    assert ended["status"] == "ended" and ended["end_reason"] == "abandoned"
    assert client.get(f"/api/v1/live-sessions/{busy}", headers=bob).json["status"] == "live"
    # The athlete may start again, and still save the abandoned one.
    start(client, ann)
    assert sweep_live_sessions() == 0


def test_sweeper_ends_sessions_that_never_sent_a_point_and_overlong_ones(app, client, login, db_tx, monkeypatch):
    from tasks.live import sweep_live_sessions

    ann, _ = login("ann")
    bob, _ = login("bob")
    silent = start(client, ann)["id"]
    marathon = start(client, bob)["id"]
    send(client, bob, marathon, track(2, start=(48.0, 2.0)))
    db_tx.execute(sa.text("UPDATE live_sessions SET started_at = now() - interval '20 minutes' WHERE id = :id"),
                  {"id": silent})
    db_tx.execute(sa.text("UPDATE live_sessions SET started_at = now() - interval '2 hours' WHERE id = :id"),
                  {"id": marathon})
    monkeypatch.setitem(app.config, "LIVE_MAX_DURATION_S", 3600)
    assert sweep_live_sessions() == 2
    reasons = dict(db_tx.execute(sa.text("SELECT id, end_reason FROM live_sessions")).all())
    assert reasons == {silent: "abandoned", marathon: "max_duration"}


def test_sweeper_skips_when_another_run_holds_the_lock(app, client, login, db_tx, redis_clean):
    from tasks.live import sweep_live_sessions

    ann, _ = login("ann")
    sid = start(client, ann)["id"]
    db_tx.execute(sa.text("UPDATE live_sessions SET started_at = now() - interval '1 hour' WHERE id = :id"),
                  {"id": sid})
    redis_clean.set("lock:sweep-live-sessions", "other-run", ex=60)
    assert sweep_live_sessions() is None
    assert client.get(f"/api/v1/live-sessions/{sid}", headers=ann).json["status"] == "live"
    redis_clean.delete("lock:sweep-live-sessions")
    assert sweep_live_sessions() == 1


def test_beat_schedules_the_sweeper():
    from config.beat import BEAT_SCHEDULE

    assert BEAT_SCHEDULE["sweep-live-sessions"]["task"] == "maintenance.sweep_live_sessions"
