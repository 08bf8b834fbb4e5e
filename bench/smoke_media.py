"""End-to-end check of media (issue 12) against a running `make run`, acting as the phone.

    .venv/bin/python bench/smoke_media.py [--base-url http://127.0.0.1:8000] [--photo PATH]

Ann uploads a GPS-tagged photo (EXIF orientation 6, a maker note and XMP too) and a rotated 1080p video with the
pre-signed POSTs the API hands out, straight to the storage server, and never calls `complete`: the S3 events
alone must bring both to `ready`. Bob follows Ann and fetches the photo's renditions (upright; no GPS, EXIF or XMP
in any of their bytes) and the video's HLS playlists and segments (opened with PyAV, which runs ffmpeg's HLS
demuxer over the signed URLs; portrait as recorded); Eve, a stranger, gets 404 for both. Deleting the activity then
removes every object of both items from the bucket.

The storage server and bucket come from the stack's ``.data/stack.env`` (``MEDIA_S3_ENDPOINT_URL``,
``MEDIA_BUCKET``; ``STACK_DATA_DIR`` moves it). Every run uses new athletes. Prints one PASS/FAIL line per check
and exits 1 if any failed (2 if the stack could not be reached).
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smoke_support import Api, Report, run_steps, until  # noqa: E402

from config import running_stack_env  # noqa: E402
from tests.support import media as samples  # noqa: E402


def _rotated_1080p(folder: Path, seconds: int = 4) -> bytes:
    base, clip = folder / "base.mp4", folder / "rotated.mp4"
    location = f"{samples.LAT:+08.4f}{samples.LNG:+09.4f}/"
    samples.ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}", "-f", "lavfi",
                   "-i", f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-preset", "veryfast",
                   "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-metadata", f"location={location}", str(base))
    samples.ffmpeg("-display_rotation:v:0", "90", "-i", str(base), "-c", "copy", "-metadata",
                   f"location={location}", str(clip))
    return clip.read_bytes()


def _upload(api: Api, token: str, kind: str, content_type: str, data: bytes, activity_id: int) -> dict[str, Any]:
    created = api.call("POST", "/media", token, json={
        "kind": kind, "content_type": content_type, "size_bytes": len(data),
        "attach_to": {"type": "activity", "id": activity_id}}).json()
    upload = created["upload"]
    # The phone: the policy's fields, then the file, straight to the storage server (no API call after this).
    answer = requests.post(upload["url"], data=upload["fields"], files={"file": ("upload", data)}, timeout=120)
    created["_post_status"] = answer.status_code
    created["_prefix"] = upload["fields"]["key"].rsplit("/", 1)[0] + "/"
    return created


def _wait_ready(api: Api, token: str, media_id: int, timeout_s: float) -> dict[str, Any]:
    state: dict[str, Any] = {}

    def done() -> bool:
        state.update(api.call("GET", f"/media/{media_id}", token).json())
        return state.get("state") in ("ready", "failed")

    until(done, timeout_s, step=0.5)
    return state


def run(api: Api, report: Report, s3: Any, bucket: str, photo: bytes, sample: bool) -> None:
    import av
    from PIL import Image

    ann, bob, eve = api.token("ann"), api.token("bob"), api.token("eve")
    ann_id = api.call("GET", "/me", ann).json()["id"]
    api.call("GET", "/me", eve)
    api.call("POST", f"/users/{ann_id}/follow", bob)
    activity = api.call("POST", "/activities", ann, json={
        "sport_type": "running", "start_date": "2026-05-01T09:00:00+00:00", "elapsed_time_s": 1800,
        "distance_m": 5000, "visibility": "followers"}).json()
    with tempfile.TemporaryDirectory(prefix="smoke-media-") as tmp:
        video = _rotated_1080p(Path(tmp))
    p = _upload(api, ann, "photo", "image/jpeg", photo, activity["id"])
    v = _upload(api, ann, "video", "video/mp4", video, activity["id"])
    report.require("pre-signed POSTs accepted by the storage server (photo, video)",
                   p["_post_status"] in (200, 201, 204) and v["_post_status"] in (200, 201, 204),
                   f"photo {p['_post_status']}, video {v['_post_status']}")
    started = time.monotonic()
    photo_item = _wait_ready(api, ann, p["id"], 120)
    report.check("S3 event alone brings the GPS-tagged photo to ready (no `complete` call)",
                 photo_item.get("state") == "ready", f"{photo_item.get('state')} {photo_item.get('error') or ''}"
                 f" after {time.monotonic() - started:.1f} s")
    video_item = _wait_ready(api, ann, v["id"], 600)
    report.check("S3 event alone brings the rotated 1080p video to ready (no `complete` call)",
                 video_item.get("state") == "ready", f"{video_item.get('state')} {video_item.get('error') or ''}"
                 f" after {time.monotonic() - started:.1f} s")

    seen = api.call("GET", f"/media/{p['id']}", bob).json()
    upright, leaks, sizes = True, [], []
    for name, rendition in seen.get("renditions", {}).items():
        data = requests.get(rendition["url"], timeout=30).content
        leaks += [f"{name}: {what}" for what in samples.has_private_metadata(data)]
        if b"GPS" in data:
            leaks.append(f"{name}: GPS")
        im = Image.open(io.BytesIO(data))
        sizes.append(f"{name} {im.width}x{im.height}")
        if name != "thumb" and sample:
            rgb = im.convert("RGB")
            # The sample is red on top as stored; orientation 6 turns it to the right side, portrait.
            red_right = rgb.getpixel((rgb.width - 3, rgb.height // 2))[0] > 200
            upright = upright and im.height > im.width and red_right
    report.check("follower: photo renditions upright", bool(sizes) and upright, ", ".join(sizes))
    report.check("follower: no GPS or other EXIF/XMP location in any rendition's bytes", bool(sizes) and not leaks,
                 ", ".join(leaks) or f"{len(sizes)} renditions checked")
    report.check("follower: the original is not offered", seen.get("original_url") is None)

    watched = api.call("GET", f"/media/{v['id']}", bob).json()
    detail, ok = "", False
    try:
        hls_url = watched["hls_url"]
        master = requests.get(hls_url, timeout=30)
        variants = [line for line in master.text.splitlines() if line and not line.startswith("#")]
        checked = []
        for variant_url in variants:
            playlist = requests.get(variant_url, timeout=30).text
            segments = [line for line in playlist.splitlines() if line and not line.startswith("#")]
            seg = requests.get(segments[0], timeout=30)
            with av.open(io.BytesIO(seg.content)) as container:
                frame = next(container.decode(video=0))
                checked.append((frame.width, frame.height))
        with av.open(hls_url) as container:  # ffmpeg's HLS demuxer over the signed URLs, end to end
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream))
            sw, sh = stream.codec_context.width, stream.codec_context.height
        ok = bool(checked) and all(h > w for w, h in checked) and frames > 0 and sh > sw
        detail = (f"{len(variants)} variants {checked}; PyAV read {frames} frames of {sw}x{sh} through the master "
                  "playlist")
    except Exception as exc:  # any failure to read is the check failing
        detail = f"{type(exc).__name__}: {exc}"
    report.check("follower: HLS playlist and segments valid for PyAV/ffmpeg, portrait as recorded", ok, detail)

    eve_photo = api.call("GET", f"/media/{p['id']}", eve, expect=(200, 404)).status_code
    eve_video = api.call("GET", f"/media/{v['id']}", eve, expect=(200, 404)).status_code
    eve_hls = requests.get(watched.get("hls_url", "").replace("token=", "token=x"), timeout=30).status_code \
        if watched.get("hls_url") else 404
    report.check("stranger: 404 for the photo and the video", eve_photo == 404 and eve_video == 404,
                 f"photo {eve_photo}, video {eve_video}, tampered playlist token {eve_hls}")

    def objects() -> list[str]:
        keys: list[str] = []
        for prefix in (p["_prefix"], v["_prefix"]):
            keys += [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
        return keys

    before = len(objects())
    api.call("DELETE", f"/activities/{activity['id']}", ann)
    gone = until(lambda: not objects(), 90, step=0.5)
    report.check("deleting the activity removes every object", before > 0 and gone,
                 f"{before} objects before, {len(objects())} after")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    stack = running_stack_env()
    parser.add_argument("--base-url", default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}")
    parser.add_argument("--s3-url",
                        default=os.environ.get("MEDIA_S3_ENDPOINT_URL") or stack.get("MEDIA_S3_ENDPOINT_URL"))
    parser.add_argument("--bucket", default=os.environ.get("MEDIA_BUCKET") or stack.get("MEDIA_BUCKET")
                        or "strava-plus-one-media")
    parser.add_argument("--photo", type=Path, default=None, help="a GPS-tagged JPEG (default: one made here)")
    parser.add_argument("--project", default=os.environ.get("FIREBASE_PROJECT_ID")
                        or stack.get("FIREBASE_PROJECT_ID", "demo-strava-plus-one"))
    args = parser.parse_args()
    try:
        requests.get(args.base_url.rstrip("/") + "/readyz", timeout=5).raise_for_status()
        if not args.s3_url:
            raise RuntimeError("no MEDIA_S3_ENDPOINT_URL (is `make run` going? its .data/stack.env names it)")
    except (requests.RequestException, RuntimeError) as exc:
        print(f"FAIL  stack reachable — {exc} (API {args.base_url})")
        return 2
    import boto3

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "embedded")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "embedded")
    s3 = boto3.client("s3", endpoint_url=args.s3_url, region_name="us-east-1")
    photo = args.photo.read_bytes() if args.photo else samples.gps_jpeg(orientation=6, size=(1600, 1200))
    report = Report()
    api = Api(args.base_url, args.project, f"{int(time.time())}-{secrets.token_hex(3)}")
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC  API {args.base_url}  storage {args.s3_url}/{args.bucket}",
          flush=True)
    return run_steps(report, lambda: run(api, report, s3, args.bucket, photo, sample=args.photo is None))


if __name__ == "__main__":
    sys.exit(main())
