"""The whole flow on real services: a pre-signed POST straight to the S3-compatible server, its S3 event on SQS,
the media-events consumer, the media chain on the real worker; then who may see what, and deleting."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import av
import pytest
import requests
from PIL import Image

from tests.media.conftest import keys_under, post_upload, wait_state
from tests.support import media as samples
from tests.support.social import make_activity

pytestmark = pytest.mark.pipeline


def _upload(client, headers, data: bytes, content_type: str, kind: str = "photo", **body: Any) -> dict[str, Any]:
    created = client.post("/api/v1/media", json={"kind": kind, "content_type": content_type,
                                                  "size_bytes": len(data), **body}, headers=headers)
    assert created.status_code == 201, created.json
    assert post_upload(created.json, data).status_code in (200, 201, 204)
    return created.json


def _prefix(created: dict[str, Any]) -> str:
    return created["upload"]["fields"]["key"].rsplit("/", 1)[0] + "/"


def test_photo_event_alone_brings_it_to_ready_and_nothing_private_leaks(live_client, live_login, drain_events):
    ann, _ = live_login("ann")
    bob, _ = live_login("bob")
    eve, _ = live_login("eve")
    ann_id = live_client.get("/api/v1/me", headers=ann).json["id"]
    assert live_client.post(f"/api/v1/users/{ann_id}/follow", headers=bob).status_code in (200, 201)
    activity_id = make_activity(live_client, ann, visibility="followers")
    created = _upload(live_client, ann, samples.gps_jpeg(orientation=6), "image/jpeg",
                      attach_to={"type": "activity", "id": activity_id})
    assert drain_events() >= 1  # the S3 event, never "complete"
    item = wait_state(live_client, ann, created["id"])
    assert item["state"] == "ready", item
    assert (item["width"], item["height"]) == (480, 640) and item["blurhash"]
    assert item["location"] == {"lat": pytest.approx(samples.LAT, abs=1e-4),
                                "lng": pytest.approx(samples.LNG, abs=1e-4)}
    assert item["original_url"] and item["taken_at"].startswith("2026-05-01T09:30")

    seen = live_client.get(f"/api/v1/media/{created['id']}", headers=bob)
    assert seen.status_code == 200
    body = seen.json
    assert body["original_url"] is None  # the original is the owner's alone
    assert body["location"] is not None  # a follower may see the activity, the place is outside any zone
    assert set(body["renditions"]) == {"large", "medium", "thumb"}
    for name, rendition in body["renditions"].items():
        data = requests.get(rendition["url"], timeout=10).content
        assert samples.has_private_metadata(data) == [], name
        im = Image.open(io.BytesIO(data))
        assert (im.width, im.height) == (rendition["width"], rendition["height"])
        if name != "thumb":
            assert im.height > im.width  # upright: orientation 6 applied
    assert live_client.get(f"/api/v1/media/{created['id']}", headers=eve).status_code == 404

    # The activity lists its media for those who may see it.
    listed = live_client.get(f"/api/v1/activities/{activity_id}", headers=bob).json
    assert [m["id"] for m in listed["media"]] == [created["id"]]
    # And so does the follower's home feed (the item's media, with URLs signed for this reader).
    deadline = time.monotonic() + 60
    entry: dict[str, Any] = {}
    while not entry and time.monotonic() < deadline:
        items = live_client.get("/api/v1/feed", headers=bob).json["items"]
        entry = next((i for i in items if i["type"] == "activity" and i["id"] == activity_id), {})
        time.sleep(0.2)
    assert [m["id"] for m in entry["activity"]["media"]] == [created["id"]]
    assert entry["activity"]["media"][0]["renditions"]["thumb"]["url"]
    assert entry["activity"]["media"][0]["original_url"] is None

    # A privacy zone around the place hides it from others, never from the owner.
    zone = live_client.post("/api/v1/me/privacy-zones", json={"lat": samples.LAT, "lng": samples.LNG,
                                                               "radius_m": 400}, headers=ann)
    assert zone.status_code == 201, zone.json
    assert live_client.get(f"/api/v1/media/{created['id']}", headers=bob).json["location"] is None
    assert live_client.get(f"/api/v1/media/{created['id']}", headers=ann).json["location"] is not None

    # Deleting the activity deletes every object.
    prefix = _prefix(created)
    assert keys_under(prefix)
    assert live_client.delete(f"/api/v1/activities/{activity_id}", headers=ann).status_code == 204
    assert live_client.get(f"/api/v1/media/{created['id']}", headers=ann).status_code == 404
    _wait_gone(prefix)


def _wait_gone(prefix: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while keys_under(prefix) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert keys_under(prefix) == []


def test_same_event_three_times_and_an_unknown_key(live_client, live_login, drain_events, media_s3, app):
    from domain.media import events
    from models import MediaEvent, db
    from models.media_storage import media_bucket

    ann, _ = live_login("ann")
    created = _upload(live_client, ann, samples.png(), "image/png")
    key = created["upload"]["fields"]["key"]
    head = media_bucket.head(key)
    record = json.dumps({"Records": [{"eventName": "ObjectCreated:Post", "s3": {
        "bucket": {"name": media_s3["bucket"]}, "object": {"key": key, "eTag": head["etag"], "size": head["size"]}}}]})
    with app.app_context():
        outcomes = [events.handle_body(record) for _ in range(3)]
        db.session.remove()
    assert outcomes == [["uploaded"], ["duplicate"], ["duplicate"]]
    drain_events()  # S3's own copy of the event: a fourth delivery, also a duplicate
    item = wait_state(live_client, ann, created["id"])
    assert item["state"] == "ready"
    with app.app_context():
        from sqlalchemy import func, select

        from models import MediaItem

        assert db.session.scalar(select(func.count()).select_from(MediaEvent).where(MediaEvent.key == key)) == 1
        assert db.session.get(MediaItem, created["id"]).attempts == 1  # processed once
        db.session.remove()

    # An event for a key nobody asked for: ignored, and the stray object is not kept.
    stray = "media/1/nobody-asked/original"
    media_bucket.put_bytes(stray, b"hello", "image/jpeg")
    assert drain_events() >= 1
    assert keys_under("media/1/nobody-asked/") == []
    with app.app_context():
        assert events.handle_body(json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {
            "bucket": {"name": media_s3["bucket"]}, "object": {"key": "elsewhere/x", "eTag": "e", "size": 1}}}]})) \
            == ["ignored"]
        db.session.remove()


@pytest.mark.parametrize("sample, content_type, words", [
    ("zip", "image/jpeg", "ZIP archive"),
    ("exe", "image/jpeg", "program"),
    ("bomb", "image/png", "pixels"),
    ("truncated_jpeg", "image/jpeg", "damaged or incomplete"),
    ("truncated_heic", "image/heic", "damaged or incomplete"),
])
def test_bad_photos_fail_with_a_sentence_and_leave_nothing(live_client, live_login, drain_events, sample,
                                                           content_type, words):
    data = {"zip": samples.zip_bytes, "exe": samples.executable, "bomb": samples.pixel_bomb,
            "truncated_jpeg": lambda: samples.gps_jpeg()[:3000],
            "truncated_heic": lambda: samples.heic()[: len(samples.heic()) // 2]}[sample]()
    ann, _ = live_login("ann")
    created = _upload(live_client, ann, data, content_type)
    drain_events()
    item = wait_state(live_client, ann, created["id"])
    assert item["state"] == "failed" and words in item["error"], item
    assert keys_under(_prefix(created)) == []
    notes = live_client.get("/api/v1/notifications", headers=ann).json["items"]
    assert any(n["kind"] == "media_failed" and n["payload"]["media_id"] == created["id"] for n in notes)


@pytest.mark.parametrize("sample, words", [
    ("audio_only", "no video"), ("truncated", "damaged or incomplete"), ("long", "limit"),
])
def test_bad_videos_fail_with_a_sentence(live_client, live_login, drain_events, videos, app, sample, words):
    ann, _ = live_login("ann")
    app.config["MEDIA_VIDEO_MAX_S"] = 4.0
    try:
        created = _upload(live_client, ann, videos[sample].read_bytes(), "video/mp4", kind="video")
        drain_events()
        item = wait_state(live_client, ann, created["id"])
    finally:
        app.config["MEDIA_VIDEO_MAX_S"] = 600.0
    assert item["state"] == "failed" and words in item["error"], item
    assert keys_under(_prefix(created)) == []


def _get(client, url: str) -> tuple[int, bytes]:
    """Our API's URLs through the test client (no server listens), storage's over HTTP."""
    if url.startswith("http://localhost/"):
        resp = client.get(url.removeprefix("http://localhost"))
        return resp.status_code, resp.data
    resp = requests.get(url, timeout=10)
    return resp.status_code, resp.content


def test_rotated_video_becomes_hls_mp4_and_poster(live_client, live_login, drain_events, videos):
    ann, ann_id = live_login("ann")
    bob, _ = live_login("bob")
    eve, _ = live_login("eve")
    assert live_client.post(f"/api/v1/users/{ann_id}/follow", headers=bob).status_code in (200, 201)
    activity_id = make_activity(live_client, ann, visibility="followers")
    created = _upload(live_client, ann, videos["rotated"].read_bytes(), "video/mp4", kind="video",
                      attach_to={"type": "activity", "id": activity_id})
    drain_events()
    item = wait_state(live_client, ann, created["id"], timeout_s=120)
    assert item["state"] == "ready", item
    assert (item["width"], item["height"]) == (240, 320) and item["duration_s"] == pytest.approx(2.0, abs=0.2)

    body = live_client.get(f"/api/v1/media/{created['id']}", headers=bob).json
    assert body["hls_url"] and body["poster_url"] and body["mp4_url"] and body["location"] is not None
    status, master = _get(live_client, body["hls_url"])
    assert status == 200 and master.startswith(b"#EXTM3U")
    variants = [line for line in master.decode().splitlines() if line and not line.startswith("#")]
    assert variants and all("token=" in v for v in variants)
    status, variant = _get(live_client, variants[0])
    segments = [line for line in variant.decode().splitlines() if line and not line.startswith("#")]
    assert status == 200 and segments and all("X-Amz-Signature" in s for s in segments)
    data = requests.get(segments[0], timeout=10).content
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (240, 320)  # portrait: the rotation is in the pixels
    mp4 = requests.get(body["mp4_url"], timeout=10).content
    assert b"+45.89" not in mp4 and b"location" not in mp4.lower()  # no location tag in the download
    poster = Image.open(io.BytesIO(requests.get(body["poster_url"], timeout=10).content))
    assert poster.height > poster.width
    # A stranger: not found, and the playlist link of someone who may see it does not open it for them either.
    assert live_client.get(f"/api/v1/media/{created['id']}", headers=eve).status_code == 404
    tampered = body["hls_url"].replace("token=", "token=x")
    assert _get(live_client, tampered)[0] == 404
    prefix = _prefix(created)
    assert live_client.delete(f"/api/v1/media/{created['id']}", headers=ann).status_code == 204
    _wait_gone(prefix)
