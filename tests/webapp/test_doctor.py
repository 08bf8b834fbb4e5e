"""`flask --app webapp doctor`: finds feeds and a leaderboard that disagree with PostgreSQL and a stuck upload,
says what it would repair, and repairs it with --repair."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from models import Upload, db
from models.feed import feed_key, member
from models.leaderboard import key as board_key
from tests.support.uploads import upload, wait_for
from tests.tasks.test_segments import START, make_segment, ride, upload_ride

API = "/api/v1"


def doctor(app, *args: str):
    return app.test_cli_runner().invoke(args=["doctor", *args])


def test_doctor_finds_and_repairs_cache_drift_and_stuck_uploads(app, live_client, live_login, redis_clean):
    ann, ann_id = live_login("ann")
    bob, bob_id = live_login("bob")
    assert live_client.post(f"{API}/users/{ann_id}/follow", headers=bob).status_code == 200
    for headers in (ann, bob):
        assert live_client.get(f"{API}/feed", headers=headers).status_code == 200  # their feeds are built
    seg = make_segment(live_client, ann)
    track, _ = ride(8.0, seed=3, start=START)
    done = upload_ride(live_client, ann, track)
    assert live_client.get(f"{API}/segments/{seg['id']}/leaderboard", headers=ann).json["entry_count"] == 1

    clean = doctor(app)
    assert clean.exit_code == 0, clean.output
    assert "ok    migrations" in clean.output and "ok    caches" in clean.output

    # Drift: bob's feed lost ann's ride, a phantom item appeared in ann's, the all-time board lost its entry.
    ride_member = member("activity", done["activity_id"])
    assert redis_clean.zrem(feed_key(bob_id), ride_member) == 1
    redis_clean.zadd(feed_key(ann_id), {member("activity", 999999): 1.0})
    redis_clean.zrem(board_key(seg["id"], "all"), str(ann_id))
    # A stuck upload: committed, never picked up (say the broker was down then).
    stuck_id = upload(live_client, ann, b"<gpx></gpx>", "stuck.gpx").json["id"]
    wait_for(live_client, ann, stuck_id)  # the worker is done with it before we backdate it
    db.session.execute(update(Upload).where(Upload.id == stuck_id).values(
        status="queued", updated_at=datetime.now(UTC) - timedelta(hours=1)))
    db.session.commit()

    found = doctor(app)
    assert found.exit_code == 1, found.output
    assert f"feed of user {bob_id}: 1 missing ['{ride_member}']" in found.output
    assert f"feed of user {ann_id}: 0 missing [], 1 extra ['{member('activity', 999999)}']" in found.output
    assert f"lb:{seg['id']}:all: 0 athletes stored, 1 expected" in found.output
    assert f"--user {bob_id}" in found.output and f"--segment {seg['id']}" in found.output
    assert f"{stuck_id} (queued)" in found.output

    repaired = doctor(app, "--repair")
    assert "repaired: 2 feeds, 1 segments' boards rebuilt; 1 uploads re-sent" in repaired.output, repaired.output
    after = doctor(app)
    assert "feed of user" not in after.output and f"lb:{seg['id']}" not in after.output, after.output
    assert live_client.get(f"{API}/segments/{seg['id']}/leaderboard", headers=ann).json["entry_count"] == 1
