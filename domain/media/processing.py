"""The media chain of one uploaded item: a photo's renditions, or a video's transcode (ffmpeg on the worker, or an
AWS Elemental MediaConvert job whose completion event finishes it).

Every step is safe to repeat: claiming is a conditional UPDATE, renditions are written under fixed keys (a retry
overwrites them), the MediaConvert submission carries a ClientRequestToken derived from the item, and "ready" is
written once. A file that is not what it claims ends the item as `failed` with a sentence (MediaRejected), never a
retry loop or a dead worker. The work itself is in ``domain.media.chains``.
"""

from __future__ import annotations

from types import ModuleType

from flask import current_app
from sqlalchemy import update

from domain.algorithms.media import MediaRejected
from domain.algorithms.media import mediaconvert as mc
from domain.media import lifecycle
from models import db
from models.media import PHOTO, PROCESSING, READY, UPLOADED, MediaItem
from models.media_storage import media_bucket


def _chains() -> ModuleType:
    # Imported when a chain runs, not with this module: the web processes load this module (through the task
    # definitions they send) and must not carry Pillow, libheif, FFmpeg's libraries and boto3 for nothing.
    from domain.media import chains

    return chains


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
        chains = _chains()
        if item.kind == PHOTO:
            chains.photo(item)
        elif current_app.config["MEDIA_TRANSCODER"] == "mediaconvert":
            chains.submit_mediaconvert(item)
        else:
            chains.video_ffmpeg(item)
    except MediaRejected as exc:
        db.session.rollback()
        lifecycle.fail(media_id, str(exc))
        return "failed"
    after = db.session.get(MediaItem, media_id)
    return after.state if after is not None else "gone"


def finish_transcode(media_id: int) -> str:
    """A MediaConvert job completed: record what it wrote under the item's prefix and make the item ready."""
    item = db.session.get(MediaItem, media_id)
    if item is None or item.state != PROCESSING:
        return "skipped"
    outputs = mc.outputs_from_keys(item.prefix, list(media_bucket.keys(item.prefix)))
    if "hls" not in outputs:
        lifecycle.fail(item.id, "The video could not be converted; try another file.")
        return "failed"
    lifecycle.mark_ready(item.id, renditions=outputs)
    return READY
