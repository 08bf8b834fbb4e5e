"""Pipeline stages: thin tasks, each around one domain operation (the chain itself is declared in
tasks/pipeline.py; the upload's state transitions are domain.uploads.lifecycle)."""

from __future__ import annotations

import logging
from time import perf_counter
from typing import Any

from celery import Task, shared_task
from celery.exceptions import Ignore

from domain.activities import ingest as ingest_service
from domain.algorithms.track import ParseError
from domain.feed import fanout as feed_service
from domain.segments import efforts as segment_service
from domain.uploads import lifecycle
from models import db, metrics
from models.errors import TRANSIENT_ERRORS
from tasks.app import AppTask

log = logging.getLogger(__name__)

class PipelineTask(AppTask):
    """A stage of the upload chain: retries transient errors, and has the chain's one error path."""

    abstract = True
    #: A task that observes its stages' run times itself (tasks.signals then leaves it out).
    times_stages = False
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
        with self.app.flask_app.app_context():
            try:
                lifecycle.mark_failed_or_requeue(upload_id, exc)
            finally:
                db.session.remove()


@shared_task(name="pipeline.ingest", base=PipelineTask, bind=True, acks_late=True, times_stages=True)
def ingest(self: Task, upload_id: int, last: bool = False, publish: bool = False) -> int:
    """parse → normalize → privacy → metrics → store the activity and its streams; with ``publish``, the
    publish stage's work follows in this task (tasks.pipeline says why). Each stage's run time is observed
    on its own (``strava_pipeline_stage_duration_seconds``)."""
    started = perf_counter()
    upload = lifecycle.claim(upload_id, "ingest")
    if upload is None:
        return upload_id
    if publish and upload.activity_id is not None and upload.data_type != "health":
        # An earlier run stored the activity and stopped while publishing it: only the publishing is left.
        # (An Apple Health export's lead runs its ingest again: that run also stores the batch's other
        # workouts, which the stopped run may not have reached.)
        lifecycle.resume_stored(upload)
    else:
        outcome = ingest_service.ingest_upload(upload)
        if outcome in ("duplicate", "gone"):
            raise Ignore()  # the upload points at the existing activity, or is no more; nothing further to do
    metrics.PIPELINE_STAGE.labels("ingest").observe(perf_counter() - started)
    if publish and upload.activity_id is not None:
        started = perf_counter()
        _publish(upload.activity_id)
        done(upload_id, last)
        metrics.PIPELINE_STAGE.labels("publish").observe(perf_counter() - started)
        return upload_id
    return done(upload_id, last)


def done(upload_id: int, last: bool) -> int:
    """The last stage of the chain also marks the upload ready, committing what the stage left open: a
    separate message for that would cost a broker round trip per upload."""
    if last:
        lifecycle.mark_ready(upload_id)
    else:
        db.session.commit()
    return upload_id


def _publish(activity_id: int) -> None:
    """Segments (match → efforts → leaderboards → achievements), then the feed fan-out.

    The two stay separate domain operations, each idempotent (a retry runs both again). The awards, the
    fan-out's reads and the caller's ready mark share one transaction, which :func:`done` commits (the
    activity they describe is committed already: the feed may show it first)."""
    segment_service.process_activity(activity_id, commit=False)
    feed_service.fan_out_activity(activity_id)


@shared_task(name="pipeline.publish", base=PipelineTask, bind=True)
def publish(self: Task, upload_id: int, last: bool = False) -> int:
    """The publish stage on its own, for an upload whose activity another run stored (the other workouts of
    an Apple Health export) and for messages of the earlier two-task chain."""
    upload = lifecycle.claim(upload_id, "publish")
    if upload is None or upload.activity_id is None:
        return upload_id
    _publish(upload.activity_id)
    return done(upload_id, last)


# The two stages the chain had before `publish`: still consumed, so messages sent by an earlier release (queued
# while it was replaced) finish their uploads.
@shared_task(name="pipeline.segments", base=PipelineTask, bind=True)
def segments(self: Task, upload_id: int, last: bool = False) -> int:
    """Match segments → store efforts → update leaderboards → award achievements."""
    upload = lifecycle.claim(upload_id, "segments")
    if upload is None or upload.activity_id is None:
        return upload_id
    segment_service.process_activity(upload.activity_id)
    return done(upload_id, last)


@shared_task(name="pipeline.feed", base=PipelineTask, bind=True)
def feed(self: Task, upload_id: int, last: bool = False) -> int:
    """Fan the new activity out to the followers' feeds (or to the author's feed only, for huge accounts)."""
    upload = lifecycle.claim(upload_id, "feed")
    if upload is None or upload.activity_id is None:
        return upload_id
    feed_service.fan_out_activity(upload.activity_id)
    return done(upload_id, last)
