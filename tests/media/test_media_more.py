"""Chat media and its frames, the other deletion paths (post, account), the sweeper, and the production setting
that keeps ffmpeg off production workers unless chosen."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from config import ConfigError, load_config
from tests.media.conftest import keys_under, post_upload, wait_state
from tests.support import media as samples
from tests.support.social import make_post

pytestmark = pytest.mark.pipeline


def _photo(client, headers, **body):
    data = samples.png()
    created = client.post("/api/v1/media", json={"kind": "photo", "content_type": "image/png",
                                                  "size_bytes": len(data), **body}, headers=headers)
    assert created.status_code == 201, created.json
    assert post_upload(created.json, data).ok
    return created.json, created.json["upload"]["fields"]["key"].rsplit("/", 1)[0] + "/"


def _wait_gone(prefix: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while keys_under(prefix) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert keys_under(prefix) == []


def test_chat_media_is_for_members_and_they_hear_when_it_is_ready(live_client, live_login, drain_events, app):
    from models.pubsub import pubsub

    ann, ann_id = live_login("ann")
    bob, bob_id = live_login("bob")
    eve, _ = live_login("eve")
    live_client.post(f"/api/v1/users/{ann_id}/follow", headers=bob)
    live_client.post(f"/api/v1/users/{bob_id}/follow", headers=ann)
    convo = live_client.post("/api/v1/conversations", json={"kind": "direct", "user_id": bob_id}, headers=ann)
    assert convo.status_code in (200, 201), convo.json
    message = live_client.post(f"/api/v1/conversations/{convo.json['id']}/messages",
                               json={"client_id": "m1", "body": "look"}, headers=ann)
    assert message.status_code == 201, message.json
    listener = pubsub.client.pubsub()
    listener.subscribe(pubsub.user_channel(ann_id), pubsub.user_channel(bob_id))
    try:
        created, _ = _photo(live_client, ann, attach_to={"type": "message", "id": message.json["id"]})
        # Only the sender may attach to a message.
        assert live_client.post("/api/v1/media", json={"kind": "photo", "content_type": "image/png", "size_bytes": 9,
                                                       "attach_to": {"type": "message", "id": message.json["id"]}},
                                headers=bob).status_code == 404
        drain_events()
        assert wait_state(live_client, ann, created["id"])["state"] == "ready"
        frames: dict[str, list[dict]] = {}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not ({"media.ready", "chat.media_ready"} <= set(frames)):
            got = listener.get_message(timeout=0.5)
            if got and got["type"] == "message":
                frame = json.loads(got["data"])
                frames.setdefault(frame["type"], []).append({**frame, "_channel": got["channel"].decode()})
    finally:
        listener.close()
    assert frames["media.ready"][0]["media_id"] == created["id"]
    assert frames["media.ready"][0]["_channel"] == pubsub.user_channel(ann_id)
    chat_frame = frames["chat.media_ready"][0]
    assert chat_frame["_channel"] == pubsub.user_channel(bob_id) and chat_frame["message_id"] == message.json["id"]
    assert "url" not in json.dumps(chat_frame)  # frames carry ids; URLs are signed per viewer on request
    assert live_client.get(f"/api/v1/media/{created['id']}", headers=bob).status_code == 200
    assert live_client.get(f"/api/v1/media/{created['id']}", headers=eve).status_code == 404
    history = live_client.get(f"/api/v1/conversations/{convo.json['id']}/messages", headers=bob).json
    assert [m["id"] for m in history["items"][0]["media"]] == [created["id"]]
    assert history["items"][0]["media"][0]["renditions"]["thumb"]["url"]
    # A block ends it.
    assert live_client.post(f"/api/v1/users/{ann_id}/block", headers=bob).status_code in (200, 201, 204)
    assert live_client.get(f"/api/v1/media/{created['id']}", headers=bob).status_code == 404


def test_deleting_a_post_or_the_account_deletes_the_objects(live_client, live_login, drain_events):
    ann, _ = live_login("ann")
    bob, _ = live_login("bob")
    post = make_post(live_client, ann, visibility="everyone")
    on_post, post_prefix = _photo(live_client, ann, attach_to={"type": "post", "id": post["id"]})
    avatar, avatar_prefix = _photo(live_client, ann, attach_to={"type": "avatar"})
    loose, loose_prefix = _photo(live_client, ann)
    drain_events()
    for created in (on_post, avatar, loose):
        assert wait_state(live_client, ann, created["id"])["state"] == "ready"
    shown = live_client.get(f"/api/v1/posts/{post['id']}", headers=bob).json
    assert [m["id"] for m in shown["media"]] == [on_post["id"]]
    assert live_client.get(f"/api/v1/media/{avatar['id']}", headers=bob).status_code == 200
    assert live_client.get(f"/api/v1/media/{loose['id']}", headers=bob).status_code == 404  # attached to nothing
    assert live_client.delete(f"/api/v1/posts/{post['id']}", headers=ann).status_code == 204
    _wait_gone(post_prefix)
    assert keys_under(avatar_prefix) and keys_under(loose_prefix)
    assert live_client.delete("/api/v1/me", headers=ann).status_code in (200, 204)
    _wait_gone(avatar_prefix)
    _wait_gone(loose_prefix)


def test_sweeper_removes_items_never_uploaded_and_aborts_multipart(live_client, live_login, app, media_s3):
    from sqlalchemy import update

    from domain.media import lifecycle
    from models import MediaItem, db
    from models.media_storage import media_bucket

    ann, _ = live_login("ann")
    created = live_client.post("/api/v1/media", json={"kind": "video", "content_type": "video/mp4",
                                                       "size_bytes": app.config["MEDIA_MULTIPART_THRESHOLD"] + 1},
                               headers=ann).json
    assert created["upload"]["multipart"]["upload_id"], created
    with app.app_context():
        item = db.session.get(MediaItem, created["id"])
        prefix = item.prefix
        assert media_bucket.open_multipart_uploads(prefix)
        db.session.execute(update(MediaItem).where(MediaItem.id == item.id)
                           .values(created_at=item.created_at.replace(year=2000)))
        db.session.commit()
        result = lifecycle.sweep()
        assert result["removed_pending"] == 1 and result["purged"] >= 1
        assert db.session.get(MediaItem, created["id"]) is None
        assert media_bucket.open_multipart_uploads(prefix) == []
        db.session.remove()

    # An item whose chain message was lost stays `uploaded`: the sweeper sends it again.
    lost = live_client.post("/api/v1/media", json={"kind": "photo", "content_type": "image/png", "size_bytes": 9},
                            headers=ann).json
    with app.app_context():
        db.session.execute(update(MediaItem).where(MediaItem.id == lost["id"]).values(
            state="uploaded", uploaded_at=datetime(2000, 1, 1, tzinfo=UTC)))
        db.session.commit()
        assert lifecycle.sweep()["resent"] == 1
        db.session.remove()
    # Sent and run: its object never arrived, which the chain reports as a sentence.
    item = wait_state(live_client, ann, lost["id"])
    assert item["state"] == "failed" and "missing" in item["error"]


def test_production_refuses_ffmpeg_unless_chosen():
    safe = {"SECRET_KEY": "s3cret-from-vault", "PRIVACY_SECRET": "another-secret",
            "FLOWER_BASIC_AUTH": "ops:long-pass", "FIREBASE_PROJECT_ID": "strava-plus-one-prod"}
    assert load_config("production", safe).MEDIA_TRANSCODER == "mediaconvert"
    with pytest.raises(ConfigError, match="MEDIA_ALLOW_FFMPEG_IN_PRODUCTION"):
        load_config("production", {**safe, "MEDIA_TRANSCODER": "ffmpeg"})
    chosen = load_config("production", {**safe, "MEDIA_TRANSCODER": "ffmpeg", "MEDIA_ALLOW_FFMPEG_IN_PRODUCTION": "1"})
    assert chosen.MEDIA_TRANSCODER == "ffmpeg"
    assert load_config("development", {}).MEDIA_TRANSCODER == "ffmpeg"
    with pytest.raises(ConfigError, match="MEDIA_ALLOW_FFMPEG_IN_PRODUCTION"):  # a typo is not a way round it
        load_config("production", {**safe, "MEDIA_TRANSCODER": "mediaconvrt"})
