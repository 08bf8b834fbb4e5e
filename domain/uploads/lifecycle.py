"""An upload's life after it was accepted: claimed by a stage, marked ready, failed with a sentence for the
athlete, or put back for the sweeper. Every transition is one conditional UPDATE, so a redelivered or
concurrent stage changes nothing twice.

    queued → processing (stage) → ready | duplicate | failed (error)
                   ↑___ transient failure / stuck ___|  (at most MAX_ATTEMPTS runs)

Every run of a stage is counted in ``attempts`` when it claims the upload, before any work. That is what
bounds a file that kills its worker (out of memory, a crash in native code): the broker hands the message back
after each death (acks_late + reject_on_worker_lost) and nothing else would ever stop it, so a claim past the
cap fails the upload with a sentence instead of running the stage again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded
from flask import current_app
from sqlalchemy import and_, bindparam, or_, select, text, update

from domain import jobs
from domain.algorithms.track import ParseError
from models import Upload, db
from models.db import returned_row, returning, table_of
from models.errors import TRANSIENT_ERRORS

log = logging.getLogger(__name__)

#: After this many stage runs (all stages, retries and redeliveries counted) an upload is given up on; the
#: ``UPLOAD_MAX_ATTEMPTS`` setting overrides it.
MAX_ATTEMPTS = 8
SWEEP_BATCH = 500

GAVE_UP = "We couldn't process this file after several attempts. Please try again later."
#: The previous run never finished: its worker died while reading this file.
KILLED_WORKER = ("This file could not be processed: reading it stopped our processing worker several times "
                 "(it may be too large or damaged). Please check the file, or split it into smaller ones.")


def max_attempts() -> int:
    try:
        return int(current_app.config.get("UPLOAD_MAX_ATTEMPTS", MAX_ATTEMPTS))
    except RuntimeError:  # outside an app context (a bare script)
        return MAX_ATTEMPTS


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
    if transient and upload.attempts < max_attempts():
        upload.status, upload.stage = "queued", None
        log.warning("upload %s: transient failure (%s); left queued for the sweeper", upload_id, exc)
    elif upload.activity_id is not None and upload.stage not in (None, "ingest"):
        # The activity exists and is the athlete's; a later stage (segments, feed) failing for good must not
        # report the upload as lost. Say what is missing instead, and leave the rest to operators.
        log.error("upload %s: stage %s failed after the activity was stored: %r", upload_id, upload.stage, exc)
        upload.error = f"Your activity is saved, but {_step(upload.stage)} could not be completed."
        upload.status, upload.stage = "ready", None
    else:
        upload.status, upload.stage, upload.error = "failed", None, user_message(exc)
        if not isinstance(exc, ParseError):
            log.error("upload %s failed: %r", upload_id, exc)
    db.session.commit()


#: How a failed step after ingest is named to the athlete.
_STEP_WORDS = {"publish": "segment matching or the feed", "stored": "segment matching or the feed",
               "segments": "segment matching", "feed": "the feed"}


def _step(stage: str | None) -> str:
    return _STEP_WORDS.get(stage or "", f"the {stage} step")


#: Prepared once: a claim runs at the start of every stage of every upload (see models.db.returning).
_CLAIM = returning(Upload, update(Upload).where(
    Upload.id == bindparam("claim_id"), Upload.status.in_(("queued", "processing")),
    Upload.attempts < bindparam("claim_cap")).values(
    status="processing", stage=bindparam("claim_stage"), attempts=Upload.attempts + 1, updated_at=text("now()")))


def claim(upload_id: int, stage: str) -> Upload | None:
    """Move the upload to `processing` at ``stage``; None when it is already finished (or gone), or when it used
    up its attempts (it is then failed here, see the module docstring)."""
    # The row comes back from the UPDATE itself (one round trip, not an UPDATE and a SELECT).
    claimed = returned_row(Upload, _CLAIM, {"claim_id": upload_id, "claim_stage": stage,
                                            "claim_cap": max_attempts()})
    db.session.commit()
    if claimed is None:
        _give_up(upload_id)
    return claimed


def resume_stored(upload: Upload) -> None:
    """A run that finds the activity stored by an earlier run (which stopped before the upload was ready)
    continues from there: the stage says `stored` again (its claim said `ingest`), so that a failure from here
    on keeps the activity (:func:`mark_failed_or_requeue`)."""
    upload.stage = "stored"
    db.session.commit()


def _give_up(upload_id: int) -> None:
    """Fail an upload that is still pending but used up its attempts (with its Apple Health batch, whose
    workouts are all read by the same run)."""
    upload = db.session.get(Upload, upload_id)
    if upload is None or upload.status not in ("queued", "processing") or upload.attempts < max_attempts():
        return
    if upload.activity_id is not None and upload.stage not in (None, "ingest"):
        upload.error = f"Your activity is saved, but {_step(upload.stage)} could not be completed."
        upload.status, upload.stage = "ready", None
        db.session.commit()
        return
    message = KILLED_WORKER if upload.status == "processing" else GAVE_UP
    log.error("upload %s: giving up after %d attempts (%s)", upload_id, upload.attempts, upload.status)
    upload.status, upload.stage, upload.error = "failed", None, message
    db.session.commit()
    if upload.batch_id and upload.data_type == "health" and upload.part is not None:
        fail_batch(upload, message)


def _batch_pending(lead: Upload) -> Any:
    return and_(Upload.user_id == lead.user_id, Upload.batch_id == lead.batch_id,
                Upload.storage_key == lead.storage_key, Upload.id != lead.id, Upload.activity_id.is_(None),
                Upload.status.in_(("queued", "processing")), or_(Upload.stage.is_(None), Upload.stage == "ingest"))


def claim_batch(lead: Upload) -> list[Upload]:
    """Claim, for ``lead``'s ingest run, the other workouts of its Apple Health export not stored yet. Workouts a
    crashed run had claimed are taken again: storing is idempotent."""
    ids = list(db.session.scalars(
        update(Upload).where(_batch_pending(lead))
        .values(status="processing", stage="ingest", attempts=Upload.attempts + 1, updated_at=text("now()"))
        .returning(Upload.id)))
    db.session.commit()
    return list(db.session.scalars(select(Upload).where(Upload.id.in_(ids)).order_by(Upload.part))) if ids else []


def fail_batch(lead: Upload, message: str) -> None:
    """Fail the workouts of ``lead``'s export that are not stored yet (the file cannot be read)."""
    db.session.execute(update(Upload).where(_batch_pending(lead))
                       .values(status="failed", stage=None, error=message, updated_at=text("now()")))
    db.session.commit()


_UPLOADS = table_of(Upload)
#: Core (no ORM bookkeeping of the session's objects: the stage is done with the upload) and prepared once.
_MARK_READY = update(_UPLOADS).where(_UPLOADS.c.id == bindparam("ready_id"), _UPLOADS.c.status == "processing").values(
    status="ready", stage=None, error=None, updated_at=text("now()"))


def mark_ready(upload_id: int) -> None:
    db.session.execute(_MARK_READY, {"ready_id": upload_id})
    db.session.commit()


def sweep_stuck(queued_after_s: float, processing_after_s: float) -> int:
    """Re-send uploads that were committed but never picked up (broker down at enqueue time, a message
    lost) or whose worker died mid-stage; fail those that used up their attempts. Stages are idempotent, so
    a second run is harmless. Returns how many were re-sent."""
    now = datetime.now(UTC)
    queued_before = now - timedelta(seconds=queued_after_s)
    processing_before = now - timedelta(seconds=processing_after_s)
    stuck = or_(and_(Upload.status == "queued", Upload.updated_at < queued_before),
                and_(Upload.status == "processing", Upload.updated_at < processing_before))
    rows = db.session.execute(select(Upload.id, Upload.attempts).where(stuck).order_by(Upload.id).limit(SWEEP_BATCH))
    resent = 0
    for upload_id, attempts in rows.all():
        if attempts >= max_attempts():
            _give_up(upload_id)
            continue
        # Touch first, so the next sweep doesn't resend it while this message is still in flight.
        db.session.execute(update(Upload).where(Upload.id == upload_id).values(
            status="queued", updated_at=text("now()")))
        db.session.commit()
        if jobs.send(jobs.INGEST_UPLOAD, upload_id):
            resent += 1
    db.session.commit()
    if resent:
        log.info("sweeper re-enqueued %d uploads", resent)
    return resent


