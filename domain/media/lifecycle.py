"""The states of a media item and the one step both upload paths end in.

    pending ──(S3 event, or the client's "complete")──▶ uploaded ──(media.process)──▶ processing ──▶ ready
                                                                                         └──────────▶ failed

``mark_uploaded`` is that step: a conditional UPDATE from pending, so the S3 event, its redeliveries, the second
event a multipart upload can produce and the client's fallback all move the item once, and only the caller that
moved it sends the chain (after its commit). S3 events are also recorded by (bucket, key, ETag) and handled once.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert

from domain import jobs
from domain.algorithms.media.events import JobStateChange, ObjectCreated
from domain.errors import refuse
from domain.media import notify
from models import db, utcnow
from models.media import FAILED, PENDING, PROCESSING, READY, UPLOADED, MediaEvent, MediaItem, MediaPurge
from models.media_storage import media_bucket

log = logging.getLogger(__name__)

_ORIGINAL_KEY = re.compile(r"^media/\d+/[A-Za-z0-9_-]+/original$")


def mark_uploaded(media_id: int, etag: str | None) -> bool:
    """pending → uploaded, once; commits, then sends the chain. False when the item had already moved on."""
    moved = db.session.execute(
        update(MediaItem).where(MediaItem.id == media_id, MediaItem.state == PENDING)
        .values(state=UPLOADED, etag=etag or None, uploaded_at=utcnow(), multipart_upload_id=None)
        .returning(MediaItem.id)).first()
    db.session.commit()
    if moved is not None:
        jobs.send(jobs.MEDIA_PROCESS, media_id)
    return moved is not None


def fail(media_id: int, message: str) -> None:
    """The item failed for good, with a sentence for the athlete; its bytes are deleted now (a rejected file is
    not kept), the row stays so the athlete can read why. Tells the owner (socket frame, in-app notification)."""
    item = db.session.get(MediaItem, media_id, with_for_update=True)
    if item is None or item.state in (READY, FAILED):
        db.session.commit()
        return
    item.state, item.error, item.renditions = FAILED, message, {}
    notify.failed(item)
    db.session.commit()
    try:
        media_bucket.delete_prefix(item.prefix)
    except Exception:  # the sweep of failed items retries; the athlete's answer does not depend on it
        log.warning("could not delete the objects of failed media %s", media_id, exc_info=True)


def mark_ready(media_id: int, **values: Any) -> None:
    """processing → ready with the chain's outputs, once (a concurrent duplicate run changes nothing); the owner
    (and a chat message's members) hear of it after the commit."""
    done = db.session.execute(update(MediaItem).where(MediaItem.id == media_id, MediaItem.state == PROCESSING)
                              .values(state=READY, ready_at=utcnow(), error=None, **values)
                              .returning(MediaItem.id)).first()
    if done is not None:
        item = db.session.get(MediaItem, media_id, populate_existing=True)
        if item is not None:
            notify.ready(item)
    db.session.commit()


def complete_multipart(item: MediaItem) -> None:
    """Join the uploaded parts (the client's "complete"): S3 then reports the object like any other upload."""
    assert item.multipart_upload_id is not None
    parts = media_bucket.list_parts(item.original_key, item.multipart_upload_id)
    if not parts:
        refuse(409, "No part has been uploaded yet.")
    if sum(p["Size"] for p in parts) != item.size_bytes:
        refuse(409, f"The parts hold {sum(p['Size'] for p in parts)} bytes, not the {item.size_bytes} declared.")
    media_bucket.complete_multipart(item.original_key, item.multipart_upload_id, parts)


# --- events from the queue --------------------------------------------------------------------------------------

def handle_object_created(event: ObjectCreated) -> str:
    """One S3 "object created" notification; returns what was done (for logs and tests)."""
    if event.bucket != media_bucket.bucket or not _ORIGINAL_KEY.match(event.key):
        return "ignored"  # our own renditions, or another bucket's traffic
    first = db.session.execute(insert(MediaEvent).values(bucket=event.bucket, key=event.key, etag=event.etag)
                               .on_conflict_do_nothing().returning(MediaEvent.id)).first()
    if first is None:
        db.session.commit()
        return "duplicate"
    item = db.session.scalar(select(MediaItem).where(MediaItem.original_key == event.key))
    if item is None:
        db.session.commit()
        # Nobody asked for this object (its item was deleted before the upload finished): never keep it.
        media_bucket.delete_prefix(event.key.rsplit("/", 1)[0] + "/")
        return "unknown"
    if item.state != PENDING:
        db.session.commit()
        return "already"
    if event.size and event.size != item.size_bytes:
        db.session.commit()
        fail(item.id, f"The file is {event.size} bytes, not the {item.size_bytes} declared.")
        return "failed"
    return "uploaded" if mark_uploaded(item.id, event.etag) else "already"


def handle_job_change(event: JobStateChange) -> str:
    if event.media_id is None:
        return "ignored"
    item = db.session.get(MediaItem, event.media_id)
    if item is None or item.transcode_job_id not in (None, event.job_id) or item.state != PROCESSING:
        db.session.commit()
        return "ignored"
    db.session.commit()
    if event.status == "COMPLETE":
        jobs.send(jobs.MEDIA_FINISH_TRANSCODE, item.id)
        return "complete"
    if event.status in ("ERROR", "CANCELED"):
        log.warning("MediaConvert job %s of media %s: %s", event.job_id, item.id, event.error)
        fail(item.id, "The video could not be converted; try another file.")
        return "failed"
    return "progress"


# --- sweeping ------------------------------------------------------------------------------------------------

def purge_deleted(limit: int = 200) -> int:
    """Delete the objects of deleted items (rows the trigger wrote), oldest first; each row goes once its prefix
    is empty, so a crash only repeats work."""
    done = 0
    rows = list(db.session.scalars(select(MediaPurge).order_by(MediaPurge.id).limit(limit)
                                   .with_for_update(skip_locked=True)))
    for row in rows:
        media_bucket.delete_prefix(row.prefix)
        db.session.delete(row)
        done += 1
    db.session.commit()
    return done


def sweep() -> dict[str, int]:
    """Remove items never uploaded (aborting their multipart uploads through the purge), re-send the chain of
    items stuck in ``uploaded``, and fail items that used up their attempts."""
    cfg = current_app.config
    now = utcnow()
    stale = now - timedelta(seconds=cfg["MEDIA_UPLOAD_URL_TTL_S"] + cfg["MEDIA_PENDING_SWEEP_S"])
    removed = db.session.execute(delete(MediaItem).where(MediaItem.state == PENDING, MediaItem.created_at < stale)
                                 .returning(MediaItem.id)).all()
    db.session.execute(delete(MediaEvent).where(MediaEvent.received_at < now - timedelta(days=7)))
    # Long enough that an item merely waiting behind transcodes on the `media` queue is not sent twice.
    stuck = list(db.session.scalars(select(MediaItem.id).where(
        MediaItem.state == UPLOADED, MediaItem.uploaded_at < now - timedelta(seconds=cfg["MEDIA_RESEND_AFTER_S"]))
        .limit(500)))
    db.session.commit()
    for media_id in stuck:
        jobs.send(jobs.MEDIA_PROCESS, media_id)
    purged = purge_deleted()
    return {"removed_pending": len(removed), "resent": len(stuck), "purged": purged}
