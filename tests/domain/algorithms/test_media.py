"""The pure media functions: recognising files, photo renditions without private metadata, upload policies,
events, the video plan and the MediaConvert job."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image, ImageCms

from domain.algorithms.media import MediaRejected
from domain.algorithms.media import mediaconvert as mc
from domain.algorithms.media.events import JobStateChange, ObjectCreated, parse_message
from domain.algorithms.media.photos import gps_position, process_photo
from domain.algorithms.media.sniff import check_declared, sniff
from domain.algorithms.media.upload import Limits, UploadRefused, plan_upload, policy_allows, post_policy
from domain.algorithms.media.video import ladder, parse_iso6709, playlist_uris, rewrite_playlist
from tests.support import media as samples

LIMITS = Limits(photo_max_bytes=25 * 2**20, video_max_bytes=2**30, multipart_threshold=64 * 2**20,
                part_bytes=16 * 2**20)
MAX_PIXELS = 100_000_000


# --- what a file is -------------------------------------------------------------------------------------------

def test_sniff_tells_real_types_from_impostors():
    assert sniff(samples.gps_jpeg()[:64]) == "jpeg"
    assert sniff(samples.png()[:64]) == "png"
    assert sniff(samples.heic()[:64]) == "heif"
    assert sniff(samples.zip_bytes()[:64]) == "zip"
    assert sniff(samples.executable()[:64]) == "exe"
    assert sniff(b"") == "empty"
    with pytest.raises(MediaRejected, match="ZIP archive"):
        check_declared(samples.zip_bytes()[:64], "image/jpeg")
    with pytest.raises(MediaRejected, match="program"):
        check_declared(samples.executable()[:64], "image/jpeg")
    with pytest.raises(MediaRejected, match="empty"):
        check_declared(b"", "image/png")
    with pytest.raises(MediaRejected, match="PNG image"):
        check_declared(samples.gps_jpeg()[:64], "image/png")


# --- photos ---------------------------------------------------------------------------------------------------

def _open(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def test_photo_facts_are_read_and_every_rendition_is_clean():
    original = samples.gps_jpeg()
    assert samples.has_private_metadata(original)  # the sample really carries what must go
    photo = process_photo(original, "image/jpeg", max_pixels=MAX_PIXELS)
    assert (photo.width, photo.height) == (640, 480)
    assert photo.taken_at == datetime(2026, 5, 1, 9, 30)
    assert photo.lat == pytest.approx(samples.LAT, abs=1e-4) and photo.lng == pytest.approx(samples.LNG, abs=1e-4)
    assert len(photo.blurhash) == 2 + 4 + 2 * 4 * 3 - 2  # 4×3 components
    assert {r.name for r in photo.renditions} == {"large", "medium", "thumb"}
    for r in photo.renditions:
        assert samples.has_private_metadata(r.data) == [], r.name
        im = _open(r.data)
        assert im.format == "JPEG" and (im.width, im.height) == (r.width, r.height)
        assert not im.getexif() and "xmp" not in im.info
    thumb = next(r for r in photo.renditions if r.name == "thumb")
    assert (thumb.width, thumb.height) == (320, 320)


def test_colour_profile_is_kept():
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = io.BytesIO()
    samples.two_tone().save(out, "JPEG", icc_profile=profile, exif=samples.private_exif().tobytes())
    photo = process_photo(out.getvalue(), "image/jpeg", max_pixels=MAX_PIXELS)
    for r in photo.renditions:
        assert _open(r.data).info.get("icc_profile") == profile


@pytest.mark.parametrize("orientation, size, red_at", [
    (1, (640, 480), "top"), (3, (640, 480), "bottom"), (6, (480, 640), "right"), (8, (480, 640), "left")])
def test_exif_orientation_is_applied_to_the_pixels(orientation, size, red_at):
    photo = process_photo(samples.gps_jpeg(orientation), "image/jpeg", max_pixels=MAX_PIXELS)
    large = _open(next(r.data for r in photo.renditions if r.name == "large")).convert("RGB")
    assert large.size == size
    w, h = large.size
    probes = {"top": (w // 2, 5), "bottom": (w // 2, h - 5), "left": (5, h // 2), "right": (w - 5, h // 2)}
    r, _, b = large.getpixel(probes[red_at])
    assert r > 200 and b < 60, (orientation, large.getpixel(probes[red_at]))


def test_heic_is_read_and_cleaned():
    photo = process_photo(samples.heic(), "image/heic", max_pixels=MAX_PIXELS)
    assert (photo.width, photo.height) == (320, 240)
    assert photo.lat == pytest.approx(samples.LAT, abs=1e-4)
    assert all(samples.has_private_metadata(r.data) == [] for r in photo.renditions)


@pytest.mark.parametrize("data, content_type, message", [
    (samples.pixel_bomb(), "image/png", "pixels"),
    (samples.gps_jpeg()[: len(samples.gps_jpeg()) // 2], "image/jpeg", "damaged or incomplete"),
    (samples.heic()[: len(samples.heic()) // 2], "image/heic", "damaged or incomplete"),
    (samples.zip_bytes(), "image/jpeg", "ZIP archive"),
    (samples.executable(), "image/png", "program"),
])
def test_bad_photos_are_rejected_with_a_sentence(data, content_type, message):
    with pytest.raises(MediaRejected, match=message):
        process_photo(data, content_type, max_pixels=MAX_PIXELS)


def test_gps_position_ignores_broken_blocks():
    assert gps_position({}) is None
    assert gps_position({1: "N", 2: (1.0, 2.0), 3: "E", 4: (1.0, 2.0, 3.0)}) is None
    assert gps_position({1: "S", 2: (10.0, 30.0, 0.0), 3: "W", 4: (20.0, 0.0, 0.0)}) == (-10.5, -20.0)
    assert gps_position({1: "N", 2: (0.0, 0.0, 0.0), 3: "E", 4: (0.0, 0.0, 0.0)}) is None  # "no fix" zeros


# --- upload requests and policies -----------------------------------------------------------------------------

def test_limits():
    assert plan_upload("photo", "image/jpeg", 1000, LIMITS) == "post"
    assert plan_upload("video", "video/mp4", 10 * 2**20, LIMITS) == "post"
    assert plan_upload("video", "video/mp4", 100 * 2**20, LIMITS) == "multipart"
    for kind, ctype, size, status in [("photo", "image/jpeg", 26 * 2**20, 413), ("video", "video/mp4", 2**30 + 1, 413),
                                      ("photo", "image/jpeg", 0, 422), ("photo", "application/zip", 10, 422),
                                      ("video", "image/jpeg", 10, 422), ("photo", "video/mp4", 10, 422)]:
        with pytest.raises(UploadRefused) as info:
            plan_upload(kind, ctype, size, LIMITS)
        assert info.value.status == status


def _signed_policy(content_type: str, size: int, expires: datetime) -> dict:
    # The document the signer writes: our conditions plus the bucket and key ones.
    _, conditions = post_policy(content_type, size)
    return {"expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "conditions": [*conditions, {"bucket": "media"}, {"key": "media/1/t/original"}]}


def test_policy_holds_the_upload_to_the_declared_size_and_type():
    policy = _signed_policy("image/jpeg", 1234, datetime.now(UTC) + timedelta(minutes=15))
    form = {"Content-Type": "image/jpeg", "key": "media/1/t/original"}
    assert policy_allows(policy, form, bucket="media", size_bytes=1234)
    assert not policy_allows(policy, form, bucket="media", size_bytes=1235)
    assert not policy_allows(policy, form, bucket="media", size_bytes=1233)
    assert not policy_allows(policy, {**form, "Content-Type": "image/png"}, bucket="media", size_bytes=1234)
    assert not policy_allows(policy, {**form, "key": "media/2/t/original"}, bucket="media", size_bytes=1234)
    assert not policy_allows(policy, form, bucket="other", size_bytes=1234)
    expired = _signed_policy("image/jpeg", 1234, datetime.now(UTC) - timedelta(seconds=1))
    assert not policy_allows(expired, form, bucket="media", size_bytes=1234)


def test_policy_signed_by_boto3_is_the_one_we_check():
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    fields, conditions = post_policy("video/mp4", 999)
    post = s3.generate_presigned_post("media", "media/1/t/original", Fields=fields, Conditions=conditions,
                                      ExpiresIn=900)
    policy = json.loads(base64.b64decode(post["fields"]["policy"]))
    expiry = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert expiry <= datetime.now(UTC) + timedelta(minutes=15, seconds=5)
    form = post["fields"]
    assert policy_allows(policy, form, bucket="media", size_bytes=999)
    assert not policy_allows(policy, form, bucket="media", size_bytes=10**9)
    assert not policy_allows(policy, {**form, "Content-Type": "text/html"}, bucket="media", size_bytes=999)


# --- events ---------------------------------------------------------------------------------------------------

def _s3_event(key: str, etag: str = "abc", size: int = 10, name: str = "ObjectCreated:Post") -> str:
    return json.dumps({"Records": [{"eventName": name, "s3": {"bucket": {"name": "media"},
                                                               "object": {"key": key, "eTag": etag, "size": size}}}]})


def test_parse_s3_and_sns_wrapped_events():
    expected = [ObjectCreated("media", "media/1/a+b/original", "abc", 10)]
    assert parse_message(_s3_event("media/1/a%2Bb/original")) == expected
    wrapped = json.dumps({"Type": "Notification", "Message": _s3_event("media/1/x/original")})
    assert parse_message(wrapped)[0].key == "media/1/x/original"
    assert parse_message(_s3_event("media/1/x/original", name="ObjectRemoved:Delete")) == []
    assert parse_message(json.dumps({"Event": "s3:TestEvent"})) == []
    assert parse_message("not json") == [] and parse_message("[1, 2]") == []
    assert parse_message(json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]})) == []


def test_parse_mediaconvert_job_state_change():
    body = json.dumps({"source": "aws.mediaconvert", "detail-type": "MediaConvert Job State Change",
                       "detail": {"status": "COMPLETE", "jobId": "123-abc", "userMetadata": {"media_id": "42"}}})
    assert parse_message(body) == [JobStateChange("123-abc", "COMPLETE", 42, None)]
    error = json.dumps({"source": "aws.mediaconvert", "detail": {"status": "ERROR", "jobId": "j",
                                                                 "errorMessage": "bad input", "userMetadata": {}}})
    assert parse_message(error) == [JobStateChange("j", "ERROR", None, "bad input")]


# --- video plan -----------------------------------------------------------------------------------------------

def test_ladder_never_upscales():
    assert [r.name for r in ladder(1920, 1080)] == ["1080p", "720p", "540p", "360p"]
    assert [r.name for r in ladder(1080, 1920)] == ["1080p", "720p", "540p", "360p"]
    assert [r.name for r in ladder(1280, 720)] == ["720p", "540p", "360p"]
    assert [r.name for r in ladder(320, 240)] == ["240p"]


def test_iso6709():
    assert parse_iso6709("+45.8992+006.1294/") == (45.8992, 6.1294)
    assert parse_iso6709("-33.8688+151.2093+010.000/") == (-33.8688, 151.2093)
    assert parse_iso6709("garbage") is None and parse_iso6709("+95.0+000.0/") is None


def test_playlist_rewrite_signs_every_uri():
    text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p.m3u8\n#EXTINF:4.0,\n720p_00000.ts\n"
    out = rewrite_playlist(text, lambda uri: f"https://signed/{uri}?sig=1")
    assert playlist_uris(out) == ["https://signed/720p.m3u8?sig=1", "https://signed/720p_00000.ts?sig=1"]
    assert "#EXT-X-STREAM-INF:BANDWIDTH=1" in out


def test_mediaconvert_job_request():
    req = mc.job_request(media_id=7, bucket="media", prefix="media/3/tok/", original_key="media/3/tok/original",
                         role_arn="arn:aws:iam::1:role/mc", queue_arn=None)
    assert req["UserMetadata"] == {"media_id": "7"}
    assert req["ClientRequestToken"] == mc.client_request_token(7, "media/3/tok/") == "media-7-tok"
    settings = req["Settings"]
    assert settings["Inputs"][0]["FileInput"] == "s3://media/media/3/tok/original"
    assert settings["Inputs"][0]["VideoSelector"]["Rotate"] == "AUTO"
    groups = {g["Name"]: g for g in settings["OutputGroups"]}
    assert groups["HLS"]["OutputGroupSettings"]["HlsGroupSettings"]["Destination"] == "s3://media/media/3/tok/hls/master"
    assert [o["VideoDescription"]["Height"] for o in groups["HLS"]["Outputs"]] == [1080, 720, 540, 360]
    assert {"MP4", "Poster", "Thumbnails"} <= set(groups)
    assert "Queue" not in req


def test_outputs_from_keys():
    keys = ["media/3/t/original", "media/3/t/hls/master.m3u8", "media/3/t/hls/master_720p.m3u8",
            "media/3/t/mp4/video.mp4", "media/3/t/poster.0000000.jpg", "media/3/t/thumbs/thumb.0000001.jpg",
            "media/3/t/thumbs/thumb.0000000.jpg"]
    out = mc.outputs_from_keys("media/3/t/", keys)
    assert out["hls"]["key"] == "media/3/t/hls/master.m3u8" and out["mp4"]["key"] == "media/3/t/mp4/video.mp4"
    assert out["poster"]["key"] == "media/3/t/poster.0000000.jpg"
    assert out["thumbs"] == ["media/3/t/thumbs/thumb.0000000.jpg", "media/3/t/thumbs/thumb.0000001.jpg"]
