"""Pipeline stages: thin tasks around tasks.lib (the chain itself is declared in tasks/pipeline.py)."""

from __future__ import annotations

import logging
from typing import Any

import redis
from billiard.exceptions import SoftTimeLimitExceeded
from celery import Task, shared_task
from celery.exceptions import Ignore
from sqlalchemy import text, update
from sqlalchemy.exc import OperationalError

from models import Upload, db
from models.storage import StorageError
from tasks import ingest as ingest_service
from tasks.app import AppTask
from tasks.lib.track import ParseError

log = logging.getLogger(__name__)

#: Worth retrying: the service will most likely answer again soon.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, StorageError,
)
#: After this many runs an upload that keeps failing transiently is given up on.
MAX_ATTEMPTS = 8


class PipelineTask(AppTask):
    """A stage of the upload chain: retries transient errors, and has the chain's one error path."""

    abstract = True
    # The chain passes ids, not results (immutable signatures): storing results would only cost Redis
    # writes and worker time on every stage of every upload.
    ignore_result = True
    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = 2
    retry_backoff_max = 300
    retry_jitter = True
    max_retries = 5
    # ParseError is the athlete's file, not our failure: logged without a traceback.
    throws = (ParseError,)

    def on_failure(self, exc: BaseException, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                   einfo: Any) -> None:
        upload_id = int(args[0]) if args else int(kwargs["upload_id"])
        with self.app.flask_app.app_context():  # type: ignore[attr-defined]
            try:
                mark_failed_or_requeue(upload_id, exc)
            finally:
                db.session.remove()


def user_message(exc: BaseException) -> str:
    if isinstance(exc, ParseError):
        return str(exc)
    if isinstance(exc, SoftTimeLimitExceeded):
        return "The file took too long to process. Try splitting it into shorter activities."
    if isinstance(exc, MemoryError):
        return "The file is too large to process."
    return "We couldn't process this file because of an internal error. It has been logged; please try again later."


def mark_failed_or_requeue(upload_id: int, exc: BaseException) -> None:
    """The chain's one error path. A transient error that exhausted its retries puts the upload back to
    `queued` for the sweeper (an accepted upload is never lost to an outage); anything else fails it."""
    upload = db.session.get(Upload, upload_id)
    if upload is None or upload.status in ("ready", "duplicate"):
        return
    transient = isinstance(exc, TRANSIENT_ERRORS)
    if transient and upload.attempts < MAX_ATTEMPTS:
        upload.status, upload.stage = "queued", None
        log.warning("upload %s: transient failure (%s); left queued for the sweeper", upload_id, exc)
    elif upload.activity_id is not None and upload.stage not in (None, "ingest"):
        # The activity exists and is the athlete's; a later stage (segments, feed) failing for good must not
        # report the upload as lost. Say what is missing instead, and leave the rest to operators.
        log.error("upload %s: stage %s failed after the activity was stored: %r", upload_id, upload.stage, exc)
        upload.error = f"Your activity is saved, but the {upload.stage} step could not be completed."
        upload.status, upload.stage = "ready", None
    else:
        upload.status, upload.stage, upload.error = "failed", None, user_message(exc)
        if not isinstance(exc, ParseError):
            log.error("upload %s failed: %r", upload_id, exc)
    db.session.commit()


def claim(upload_id: int, stage: str) -> Upload | None:
    """Move the upload to `processing` at ``stage``; None when it is already finished (or gone)."""
    row = db.session.execute(
        update(Upload)
        .where(Upload.id == upload_id, Upload.status.in_(("queued", "processing")))
        .values(status="processing", stage=stage, attempts=Upload.attempts + 1, updated_at=text("now()"))
        .returning(Upload.id)
    ).first()
    db.session.commit()
    return db.session.get(Upload, upload_id) if row else None


@shared_task(name="pipeline.ingest", base=PipelineTask, bind=True, acks_late=True)
def ingest(self: Task, upload_id: int, last: bool = False) -> int:
    """parse → normalize → privacy → metrics → store the activity and its streams."""
    upload = claim(upload_id, "ingest")
    if upload is None:
        return upload_id
    outcome = ingest_service.ingest_upload(upload)
    if outcome == "duplicate":
        raise Ignore()  # the upload points at the existing activity; nothing further to do
    return done(upload_id, last)


def mark_ready(upload_id: int) -> None:
    db.session.execute(
        update(Upload).where(Upload.id == upload_id, Upload.status == "processing")
        .values(status="ready", stage=None, error=None, updated_at=text("now()"))
    )
    db.session.commit()


def done(upload_id: int, last: bool) -> int:
    """The last stage of the chain also marks the upload ready: a separate message for that would cost a
    broker round trip per upload (brief §4.6)."""
    if last:
        mark_ready(upload_id)
    return upload_id


@shared_task(name="pipeline.finish", base=PipelineTask, bind=True)
def finish(self: Task, upload_id: int) -> int:
    """Kept for chains enqueued before stages marked the upload ready themselves."""
    mark_ready(upload_id)
    return upload_id


@shared_task(name="pipeline.segments", base=PipelineTask, bind=True)
def segments(self: Task, upload_id: int, last: bool = False) -> int:
    """Match segments → store efforts → update leaderboards → award achievements."""
    from tasks import segments as segment_service

    upload = claim(upload_id, "segments")
    if upload is None or upload.activity_id is None:
        return upload_id
    segment_service.process_activity(upload.activity_id)
    return done(upload_id, last)


@shared_task(name="pipeline.feed", base=PipelineTask, bind=True)
def feed(self: Task, upload_id: int, last: bool = False) -> int:
    """Fan the new activity out to the followers' feeds (or to the author's feed only, for huge accounts)."""
    from tasks import feed as feed_service

    upload = claim(upload_id, "feed")
    if upload is None or upload.activity_id is None:
        return upload_id
    feed_service.fan_out_activity(upload.activity_id)
    return done(upload_id, last)
