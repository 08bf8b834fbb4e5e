"""The media chain of one uploaded item: a photo's renditions, or a video's transcode (ffmpeg on the worker, or an
AWS Elemental MediaConvert job whose completion event finishes it).

Every step is safe to repeat: claiming is a conditional UPDATE, renditions are written under fixed keys (a retry
overwrites them), the MediaConvert submission carries a ClientRequestToken derived from the item, and "ready" is
written once. A file that is not what it claims ends the item as `failed` with a sentence (MediaRejected), never a
retry loop or a dead worker.
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
from domain.algorithms.media import MediaRejected
from domain.algorithms.media import mediaconvert as mc
from domain.algorithms.media import video as vid
from domain.algorithms.media.photos import process_photo
from domain.algorithms.media.sniff import check_declared
from domain.media import lifecycle, notify
from models import db, utcnow
from models.media import PHOTO, PROCESSING, READY, UPLOADED, MediaItem
from models.media_storage import media_bucket

log = logging.getLogger(__name__)

_CONTENT_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t", ".mp4": "video/mp4",
                  ".jpg": "image/jpeg"}


class TranscodeError(RuntimeError):
    """The transcoder failed on a file it could read (a bug or a resource problem, not the athlete's file)."""


def claim(media_id: int) -> MediaItem | None:
    """uploaded → processing (or a redelivery of one already processing); None when there is nothing to do."""
    row = db.session.execute(
        update(MediaItem).where(MediaItem.id == media_id, MediaItem.state.in_((UPLOADED, PROCESSING)))
        .values(state=PROCESSING, attempts=MediaItem.attempts + 1).returning(MediaItem.id)).first()
    db.session.commit()
    return db.session.get(MediaItem, media_id) if row is not None else None


def process(media_id: int) -> str:
    """Run the chain of one item; returns its state afterwards."""
    item = claim(media_id)
    if item is None:
        return "skipped"
    if item.attempts > current_app.config["UPLOAD_MAX_ATTEMPTS"]:
        lifecycle.fail(item.id, "The file could not be processed; try uploading it again.")
        return "failed"
    try:
        if item.kind == PHOTO:
            _photo(item)
        elif current_app.config["MEDIA_TRANSCODER"] == "mediaconvert":
            _submit_mediaconvert(item)
        else:
            _video_ffmpeg(item)
    except MediaRejected as exc:
        db.session.rollback()
        lifecycle.fail(media_id, str(exc))
        return "failed"
    after = db.session.get(MediaItem, media_id)
    return after.state if after is not None else "gone"


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


def _finish(item_id: int, **values: Any) -> None:
    """processing → ready with the outputs, once (a concurrent duplicate run changes nothing)."""
    done = db.session.execute(update(MediaItem).where(MediaItem.id == item_id, MediaItem.state == PROCESSING)
                              .values(state=READY, ready_at=utcnow(), error=None, **values)
                              .returning(MediaItem.id)).first()
    if done is not None:
        item = db.session.get(MediaItem, item_id, populate_existing=True)
        if item is not None:
            notify.ready(item)
    db.session.commit()


# --- photos ---------------------------------------------------------------------------------------------------

def _photo(item: MediaItem) -> None:
    with tempfile.TemporaryDirectory(prefix="media-") as tmp:
        data = _download(item, Path(tmp)).read_bytes()
    photo = offload.cpu(process_photo, data, item.content_type, max_pixels=current_app.config["MEDIA_MAX_PIXELS"])
    renditions = {}
    for r in photo.renditions:
        key = f"{item.prefix}{r.name}.jpg"
        media_bucket.put_bytes(key, r.data, r.content_type)
        renditions[r.name] = {"key": key, "width": r.width, "height": r.height, "bytes": len(r.data),
                              "content_type": r.content_type}
    _finish(item.id, renditions=renditions, width=photo.width, height=photo.height, blurhash=photo.blurhash,
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


def _video_ffmpeg(item: MediaItem) -> None:
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
    _finish(item.id, renditions=outputs, **_video_facts(info))


def _video_facts(info: vid.VideoInfo) -> dict[str, Any]:
    return {"width": info.width, "height": info.height, "duration_s": info.duration_s, "taken_at": info.taken_at,
            "capture_lat": info.lat, "capture_lng": info.lng}


def _mediaconvert() -> Any:
    return boto3.client("mediaconvert", endpoint_url=current_app.config["MEDIACONVERT_ENDPOINT_URL"],
                        region_name=current_app.config["AWS_REGION"])


def _submit_mediaconvert(item: MediaItem) -> None:
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


def finish_transcode(media_id: int) -> str:
    """A MediaConvert job completed: record what it wrote under the item's prefix and make the item ready."""
    item = db.session.get(MediaItem, media_id)
    if item is None or item.state != PROCESSING:
        return "skipped"
    outputs = mc.outputs_from_keys(item.prefix, list(media_bucket.keys(item.prefix)))
    if "hls" not in outputs:
        lifecycle.fail(item.id, "The video could not be converted; try another file.")
        return "failed"
    _finish(item.id, renditions=outputs)
    return READY
