"""The production transcoder: a MediaConvert job submitted through the real boto3 client (to a local stand-in
speaking MediaConvert's JSON), its completion arriving as an EventBridge event on the media events queue."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from tests.media.conftest import post_upload, wait_state
from tests.support.mediaconvert import MediaConvertStandin

pytestmark = pytest.mark.pipeline
ROLE = "arn:aws:iam::123456789012:role/MediaConvert"


@pytest.fixture
def mediaconvert(app, media_s3):
    standin = MediaConvertStandin()
    saved = {k: app.config[k] for k in ("MEDIA_TRANSCODER", "MEDIACONVERT_ENDPOINT_URL", "MEDIACONVERT_ROLE_ARN")}
    app.config.update(MEDIA_TRANSCODER="mediaconvert", MEDIACONVERT_ENDPOINT_URL=standin.url,
                      MEDIACONVERT_ROLE_ARN=ROLE)
    yield standin
    app.config.update(saved)
    standin.stop()


def _job_event(media_s3, job_id: str, media_id: int, status: str) -> None:
    sqs = boto3.client("sqs", endpoint_url=media_s3["url"], region_name="us-east-1")
    sqs.send_message(QueueUrl=media_s3["queue_url"], MessageBody=json.dumps({
        "version": "0", "source": "aws.mediaconvert", "detail-type": "MediaConvert Job State Change",
        "detail": {"status": status, "jobId": job_id, "userMetadata": {"media_id": str(media_id)},
                   **({"errorMessage": "Demuxer: bad input"} if status == "ERROR" else {})}}))


def _wait_job(app, media_id: int, timeout_s: float = 30) -> str:
    """The id of the item's MediaConvert job, once the worker stored it."""
    from models import MediaItem, db

    deadline = time.monotonic() + timeout_s
    while True:
        with app.app_context():
            job_id = db.session.get(MediaItem, media_id).transcode_job_id
            db.session.remove()
        if job_id or time.monotonic() > deadline:
            assert job_id
            return job_id
        time.sleep(0.1)


def test_mediaconvert_job_then_completion_event(live_client, live_login, drain_events, videos, mediaconvert,
                                                media_s3, app):
    from domain.media import chains
    from models import MediaItem, db
    from models.media_storage import media_bucket

    ann, _ = live_login("ann")
    data = videos["rotated"].read_bytes()
    created = live_client.post("/api/v1/media", json={"kind": "video", "content_type": "video/mp4",
                                                       "size_bytes": len(data)}, headers=ann).json
    assert post_upload(created, data).ok
    drain_events()
    job_id = _wait_job(app, created["id"])
    sent = mediaconvert.requests[0]
    assert sent["role"] == ROLE and sent["userMetadata"] == {"media_id": str(created["id"])}
    assert sent["settings"]["inputs"][0]["videoSelector"]["rotate"] == "AUTO"
    assert sent["settings"]["inputs"][0]["fileInput"].endswith(created["upload"]["fields"]["key"])
    assert wait_state(live_client, ann, created["id"], ("processing",))["state"] == "processing"

    # A retried task submits again: the same ClientRequestToken, so MediaConvert gives back the same job.
    with app.app_context():
        item = db.session.get(MediaItem, created["id"])
        chains.submit_mediaconvert(item)
        assert db.session.get(MediaItem, created["id"]).transcode_job_id == job_id
        db.session.remove()
    tokens = {r["clientRequestToken"] for r in mediaconvert.requests}
    assert len(mediaconvert.requests) == 2 and len(tokens) == 1 and len(mediaconvert.jobs) == 1

    # MediaConvert writes its outputs (its own file names) and reports completion through EventBridge → SQS.
    prefix = created["upload"]["fields"]["key"].rsplit("/", 1)[0] + "/"
    media_bucket.put_bytes(prefix + "hls/master.m3u8", b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n"
                                                       b"master_360p.m3u8\n", "application/vnd.apple.mpegurl")
    media_bucket.put_bytes(prefix + "hls/master_360p.m3u8", b"#EXTM3U\n#EXTINF:4.0,\nmaster_360p_00001.ts\n"
                                                            b"#EXT-X-ENDLIST\n", "application/vnd.apple.mpegurl")
    media_bucket.put_bytes(prefix + "hls/master_360p_00001.ts", b"G" * 188, "video/mp2t")
    media_bucket.put_bytes(prefix + "mp4/video.mp4", b"mp4", "video/mp4")
    media_bucket.put_bytes(prefix + "poster.0000000.jpg", b"jpg", "image/jpeg")
    media_bucket.put_bytes(prefix + "thumbs/thumb.0000000.jpg", b"jpg", "image/jpeg")
    _job_event(media_s3, job_id, created["id"], "PROGRESSING")
    _job_event(media_s3, job_id, created["id"], "COMPLETE")
    drain_events()
    item = wait_state(live_client, ann, created["id"])
    assert item["state"] == "ready", item
    assert item["poster_url"] and item["mp4_url"] and len(item["thumbnail_urls"]) == 1
    assert (item["width"], item["height"]) == (240, 320)  # probed before submitting
    master = live_client.get(item["hls_url"].removeprefix("http://localhost"))
    assert master.status_code == 200 and b"/hls/master_360p.m3u8?token=" in master.data
    variant = live_client.get(master.data.decode().splitlines()[-1].removeprefix("http://localhost"))
    assert variant.status_code == 200 and b"master_360p_00001.ts?X-Amz" in variant.data


def test_mediaconvert_error_event_fails_the_item(live_client, live_login, drain_events, videos, mediaconvert,
                                                 media_s3, app):
    ann, _ = live_login("ann")
    data = videos["rotated"].read_bytes()
    created = live_client.post("/api/v1/media", json={"kind": "video", "content_type": "video/mp4",
                                                       "size_bytes": len(data)}, headers=ann).json
    assert post_upload(created, data).ok
    drain_events()
    job_id = _wait_job(app, created["id"])
    _job_event(media_s3, "someone-elses-job", created["id"], "COMPLETE")  # not this item's job: ignored
    _job_event(media_s3, job_id, created["id"], "ERROR")
    drain_events()
    item = wait_state(live_client, ann, created["id"])
    assert item["state"] == "failed" and "could not be converted" in item["error"]
