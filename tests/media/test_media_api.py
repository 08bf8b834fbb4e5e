"""POST /api/v1/media and its bad inputs: clear 4xx answers, pre-signed requests bound to the declared file."""

from __future__ import annotations

import base64
import json

import requests

from domain.algorithms.media.upload import policy_allows
from tests.media.conftest import keys_under, post_upload
from tests.support import media as samples
from tests.support.social import make_activity


def _create(client, headers, **body):
    return client.post("/api/v1/media", json={"kind": "photo", "content_type": "image/jpeg", "size_bytes": 1000,
                                               **body}, headers=headers)


def test_create_photo_returns_a_presigned_post_bound_to_size_and_type(client, login, media_s3):
    ann, _ = login("ann")
    resp = _create(client, ann, size_bytes=4321)
    assert resp.status_code == 201, resp.json
    body = resp.json
    assert body["kind"] == "photo" and body["state"] == "pending" and body["renditions"] == {}
    upload = body["upload"]
    assert upload["url"].startswith(media_s3["url"]) and upload["expires_in"] <= 900
    policy = json.loads(base64.b64decode(upload["fields"]["policy"]))
    assert ["content-length-range", 4321, 4321] in policy["conditions"]
    assert {"Content-Type": "image/jpeg"} in policy["conditions"]
    assert policy_allows(policy, upload["fields"], bucket=media_s3["bucket"], size_bytes=4321)
    assert not policy_allows(policy, upload["fields"], bucket=media_s3["bucket"], size_bytes=4322)
    assert not policy_allows(policy, {**upload["fields"], "Content-Type": "image/png"}, bucket=media_s3["bucket"],
                             size_bytes=4321)
    assert upload["fields"]["key"].endswith("/original")


def test_large_video_gets_a_multipart_upload(client, login, media_s3, app):
    ann, _ = login("ann")
    size = app.config["MEDIA_MULTIPART_THRESHOLD"] + 1
    resp = _create(client, ann, kind="video", content_type="video/mp4", size_bytes=size)
    assert resp.status_code == 201, resp.json
    multipart = resp.json["upload"]["multipart"]
    assert multipart["upload_id"] and multipart["part_size"] == app.config["MEDIA_PART_BYTES"]
    parts = client.post(multipart["parts_url"], json={"part_numbers": [1, 2]}, headers=ann)
    assert parts.status_code == 200 and [p["part_number"] for p in parts.json["parts"]] == [1, 2]
    assert client.post(multipart["parts_url"], json={"part_numbers": [10**6]}, headers=ann).status_code == 422
    # Nothing uploaded yet: "complete" says so instead of pretending.
    assert client.post(multipart["complete_url"], headers=ann).status_code == 409


def test_multipart_upload_completes_through_the_fallback(client, login, media_s3, app):
    ann, _ = login("ann")
    app.config.update(MEDIA_MULTIPART_THRESHOLD=10, MEDIA_PART_BYTES=5 * 2**20)
    try:
        data = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * (6 * 2**20)
        created = _create(client, ann, kind="video", content_type="video/mp4", size_bytes=len(data)).json
        mp = created["upload"]["multipart"]
        urls = client.post(mp["parts_url"], json={"part_numbers": [1, 2]}, headers=ann).json["parts"]
        for part, chunk in zip(urls, (data[: 5 * 2**20], data[5 * 2**20:]), strict=True):
            assert requests.put(part["url"], data=chunk, timeout=30).status_code == 200
        done = client.post(mp["complete_url"], headers=ann)
        assert done.status_code == 200 and done.json["state"] in ("uploaded", "processing", "failed")
    finally:
        app.config.update(MEDIA_MULTIPART_THRESHOLD=64 * 2**20, MEDIA_PART_BYTES=16 * 2**20)


def test_bad_requests_get_clear_4xx(client, login, media_s3):
    ann, _ = login("ann")
    cases = [
        ({"size_bytes": 0}, 422, "empty"),
        ({"size_bytes": 26 * 2**20}, 413, "at most 25 MB"),
        ({"kind": "video", "content_type": "video/mp4", "size_bytes": 2**30 + 1}, 413, "at most 1 GB"),
        ({"content_type": "application/zip"}, 422, "image/jpeg"),
        ({"content_type": "application/x-msdownload"}, 422, "image/jpeg"),
        ({"kind": "gif"}, 422, None),
        ({"size_bytes": "many"}, 422, None),
        ({"attach_to": {"type": "activity"}}, 422, "id"),
    ]
    for body, status, words in cases:
        resp = _create(client, ann, **body)
        assert resp.status_code == status, (body, resp.json)
        if words:
            assert words in json.dumps(resp.json), (body, resp.json)
    assert client.post("/api/v1/media", json={"kind": "photo"}, headers=ann).status_code == 422


def test_attaching_to_someone_elses_things_is_not_found(client, login, media_s3):
    ann, _ = login("ann")
    bob, _ = login("bob")
    activity_id = make_activity(client, ann, visibility="everyone")
    assert _create(client, bob, attach_to={"type": "activity", "id": activity_id}).status_code == 404
    assert _create(client, bob, attach_to={"type": "post", "id": 999999}).status_code == 404
    assert _create(client, bob, attach_to={"type": "message", "id": 999999}).status_code == 404
    mine = _create(client, ann, attach_to={"type": "activity", "id": activity_id})
    assert mine.status_code == 201 and mine.json["attach_to"] == {"type": "activity", "id": activity_id}
    second = _create(client, ann, attach_to={"type": "activity", "id": activity_id})
    assert second.json["position"] == 1  # several photos per activity, in order


def test_someone_elses_item_is_not_found_everywhere(client, login, media_s3):
    ann, _ = login("ann")
    bob, _ = login("bob")
    media_id = _create(client, ann).json["id"]
    assert client.get(f"/api/v1/media/{media_id}", headers=bob).status_code == 404
    assert client.post(f"/api/v1/media/{media_id}/complete", headers=bob).status_code == 404
    assert client.post(f"/api/v1/media/{media_id}/parts", json={"part_numbers": [1]}, headers=bob).status_code == 404
    assert client.delete(f"/api/v1/media/{media_id}", headers=bob).status_code == 404
    assert client.get(f"/api/v1/media/{media_id}", headers=ann).status_code == 200


def test_complete_checks_the_object(client, login, media_s3):
    ann, _ = login("ann")
    data = samples.gps_jpeg()
    created = _create(client, ann, size_bytes=len(data)).json
    assert client.post(f"/api/v1/media/{created['id']}/complete", headers=ann).status_code == 409  # not there yet
    # moto does not enforce the policy: store a different size, which "complete" must catch itself.
    assert post_upload(created, data + b"extra").status_code in (200, 201, 204)
    done = client.post(f"/api/v1/media/{created['id']}/complete", headers=ann)
    assert done.status_code == 200
    assert done.json["state"] == "failed" and "not the" in done.json["error"]
    prefix = created["upload"]["fields"]["key"].rsplit("/", 1)[0] + "/"
    assert keys_under(prefix) == []  # a rejected file is not kept


def test_daily_quota(client, login, media_s3, app):
    ann, _ = login("ann")
    app.config["MEDIA_DAILY_QUOTA"] = 2
    try:
        assert _create(client, ann).status_code == 201
        assert _create(client, ann).status_code == 201
        resp = _create(client, ann)
        assert resp.status_code == 429 and "a day" in resp.json["message"]
    finally:
        app.config["MEDIA_DAILY_QUOTA"] = 200


def test_delete_pending_item(client, login, media_s3):
    ann, _ = login("ann")
    media_id = _create(client, ann).json["id"]
    assert client.delete(f"/api/v1/media/{media_id}", headers=ann).status_code == 204
    assert client.get(f"/api/v1/media/{media_id}", headers=ann).status_code == 404
