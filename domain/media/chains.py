"""The heavy half of the media chain: decoding and encoding photos (Pillow, libheif), probing and transcoding
videos (PyAV, the ffmpeg binary) and submitting MediaConvert jobs (boto3).

Only the processes that run a chain load this module (``domain.media.processing`` imports it when a chain runs):
the web processes import the task definitions to send them and would gain nothing from these libraries but memory.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import boto3
import imageio_ffmpeg
from flask import current_app
from PIL import Image
from sqlalchemy import update

from domain import offload
from domain.algorithms.media import MediaRejected, TranscodeError
from domain.algorithms.media import mediaconvert as mc
from domain.algorithms.media import video as vid
from domain.algorithms.media.photos import process_photo
from domain.algorithms.media.sniff import check_declared
from domain.media.lifecycle import mark_ready
from models import db
from models.media import MediaItem
from models.media_storage import media_bucket

log = logging.getLogger(__name__)

_CONTENT_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t", ".mp4": "video/mp4",
                  ".jpg": "image/jpeg"}


def _download(item: MediaItem, folder: Path) -> Path:
    path = folder / "original"
    try:
        media_bucket.download(item.original_key, path, max_bytes=item.size_bytes)
    except KeyError:
        raise MediaRejected("The uploaded file is missing from storage; upload it again.") from None
    except ValueError:
        raise MediaRejected("The file is larger than declared.") from None
    if path.stat().st_size == 0:
        raise MediaRejected("The file is empty.")
    return path


# --- photos ---------------------------------------------------------------------------------------------------

def photo(item: MediaItem) -> None:
    with tempfile.TemporaryDirectory(prefix="media-") as tmp:
        data = _download(item, Path(tmp)).read_bytes()
    photo = offload.cpu(process_photo, data, item.content_type, max_pixels=current_app.config["MEDIA_MAX_PIXELS"])
    renditions = {}
    for r in photo.renditions:
        key = f"{item.prefix}{r.name}.jpg"
        media_bucket.put_bytes(key, r.data, r.content_type)
        renditions[r.name] = {"key": key, "width": r.width, "height": r.height, "bytes": len(r.data),
                              "content_type": r.content_type}
    mark_ready(item.id, renditions=renditions, width=photo.width, height=photo.height, blurhash=photo.blurhash,
            taken_at=photo.taken_at, capture_lat=photo.lat, capture_lng=photo.lng)


# --- videos ---------------------------------------------------------------------------------------------------

def _probe(item: MediaItem, folder: Path) -> tuple[Path, vid.VideoInfo]:
    src = _download(item, folder)
    with src.open("rb") as fh:
        check_declared(fh.read(64), item.content_type)
    return src, vid.probe(src, max_duration_s=float(current_app.config["MEDIA_VIDEO_MAX_S"]))


def _run(cmd: list[str], timeout_s: float) -> None:
    try:
        result = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise TranscodeError("ffmpeg took too long") from None
    if result.returncode != 0:
        tail = result.stderr.decode("utf-8", "replace")[-2000:]
        log.warning("ffmpeg failed (%s): %s", result.returncode, tail)
        # ffmpeg fails on the bytes of a file PyAV could open (a damaged stream further in): the athlete's file.
        raise MediaRejected("The video is damaged or incomplete and cannot be converted.")


def video_ffmpeg(item: MediaItem) -> None:
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    limit = float(current_app.config["CELERY"]["task_time_limit"]) * 0.8
    with tempfile.TemporaryDirectory(prefix="media-") as tmp:
        folder = Path(tmp)
        src, info = _probe(item, folder)
        out = folder / "out"
        for sub in (vid.HLS_DIR, "mp4", vid.THUMBS_DIR):
            (out / sub).mkdir(parents=True)
        _run(vid.hls_command(ffmpeg, src, out, info), limit)
        _run(vid.mp4_command(ffmpeg, out, vid.ladder(info.width, info.height)[0].name), limit)
        for cmd in vid.stills_command(ffmpeg, src, out, info):
            _run(cmd, limit)
        keys = []
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            key = item.prefix + str(path.relative_to(out))
            media_bucket.put_file(key, path, _CONTENT_TYPES.get(path.suffix, "application/octet-stream"))
            keys.append(key)
        outputs = mc.outputs_from_keys(item.prefix, keys)
        poster = outputs.get("poster")
        if poster:
            with Image.open(out / vid.POSTER) as im:
                poster.update(width=im.width, height=im.height)
        shutil.rmtree(out, ignore_errors=True)
    mark_ready(item.id, renditions=outputs, **_video_facts(info))


def _video_facts(info: vid.VideoInfo) -> dict[str, Any]:
    return {"width": info.width, "height": info.height, "duration_s": info.duration_s, "taken_at": info.taken_at,
            "capture_lat": info.lat, "capture_lng": info.lng}


def _mediaconvert() -> Any:
    return boto3.client("mediaconvert", endpoint_url=current_app.config["MEDIACONVERT_ENDPOINT_URL"],
                        region_name=current_app.config["AWS_REGION"])


def submit_mediaconvert(item: MediaItem) -> None:
    """Check the file is a video we accept, then hand the transcode to MediaConvert; its job-state event
    (EventBridge → SQS → the media-events consumer) finishes the item. Resubmitting is harmless: the
    ClientRequestToken makes MediaConvert return the job it already started."""
    with tempfile.TemporaryDirectory(prefix="media-") as tmp:
        _, info = _probe(item, Path(tmp))
    cfg = current_app.config
    request = mc.job_request(media_id=item.id, bucket=media_bucket.bucket, prefix=item.prefix,
                             original_key=item.original_key, role_arn=cfg["MEDIACONVERT_ROLE_ARN"],
                             queue_arn=cfg["MEDIACONVERT_QUEUE_ARN"] or None, has_audio=info.has_audio)
    job = _mediaconvert().create_job(**request)["Job"]
    db.session.execute(update(MediaItem).where(MediaItem.id == item.id)
                       .values(transcode_job_id=job["Id"], **_video_facts(info)))
    db.session.commit()
