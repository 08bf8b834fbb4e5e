"""The upload chain, declared once so the whole flow reads in one place.

    ingest      parse → normalize → privacy → metrics → store    (the track never leaves memory;
                → the activity's training load                    for an Apple Health export, one run reads
                                                                  the file once and stores every workout,
                                                                  whose uploads then continue from `publish`
                                                                  on their own chains)
    publish     segments: match → efforts → leaderboards → achievements (one decode of the stream),
                then feed: fan-out to followers' feeds (hybrid for huge accounts); the upload becomes `ready`

An upload's chain is one task, `pipeline.ingest` with ``publish=True``, on the `pipeline` queue: the publish
stage runs in it right after the ingest stage has committed the activity. A second message would cost a broker
round trip, a claim and a dispatch through the worker's main process (that process alone spent ~1.3 ms more
CPU per upload with two messages), and could only wait: publishing never waits behind other uploads' parses.
A run that finds its activity already stored (its predecessor stopped while publishing) only publishes.
`pipeline.publish`, on its own `publish` queue, which the worker takes first (``queue_order_strategy:
priority``), publishes the other workouts of an Apple Health export, stored by their lead's run.

Push notifications are not a stage: a stage that notifies (achievements, KOMs) writes the notification rows in
its transaction, and their push delivery is scheduled after that commit (domain.notifications.outbox).

The last stage of the chain marks the upload `ready` (a message of its own would cost a broker round trip).

Stages pass the upload id only, load what they need, and are safe to run twice. One error
path: a stage that fails for good (a permanent error, or a transient one that exhausted its retries) marks
the upload `failed` with a message a person understands (tasks.stages.PipelineTask.on_failure); once the
activity is stored, it stays, and the upload is `ready` with a sentence saying what is missing.

Parse, privacy and metrics share one task on purpose: handing a parsed track between tasks would mean
writing it somewhere and reading it back, and each message costs ~1.25 ms of broker time on two cores.
They stay separate *functions* (domain.algorithms) so each is tested on its own.
"""

from __future__ import annotations

import logging

from celery import Task, chain
from celery.canvas import Signature

from domain import jobs
from tasks import stages

log = logging.getLogger(__name__)

#: Stages that run after the activity exists, in order, for an upload stored by another upload's run. Each
#: takes the upload id.
POST_INGEST_HOOKS: list[Task] = [
    # segment matching → efforts → leaderboards → achievements, then the fan-out to followers' feeds; on the
    # `publish` queue, which the worker serves before `pipeline`: they never wait behind a backlog of parses.
    stages.publish,
]


def _chain(steps: list[Task], upload_id: int) -> Signature:
    # The last stage marks the upload ready itself (no separate message for it).
    return chain(*[step.si(upload_id, last=i == len(steps) - 1) for i, step in enumerate(steps)])


def build_chain(upload_id: int) -> Signature:
    """Ingest, then publish in the same task (see the module docstring); the task marks the upload ready."""
    return stages.ingest.si(upload_id, last=True, publish=True)


def enqueue(upload_id: int) -> bool:
    """Send the chain for a committed upload. False when the broker is unreachable: the upload stays
    `queued` and the sweeper (maintenance.sweep_uploads) sends it again, so the 201 still holds."""
    try:
        build_chain(upload_id).apply_async()
        return True
    except Exception:
        log.warning("could not enqueue upload %s; the sweeper will retry", upload_id, exc_info=True)
        return False


def build_after_ingest(upload_id: int) -> Signature:
    """The chain without its ingest stage, for an upload whose activity is already stored (the other workouts
    of an Apple Health export: one ingest run reads the file once and stores them all)."""
    return _chain(POST_INGEST_HOOKS, upload_id)


def _send(upload_id: int, countdown: float | None = None) -> None:
    build_chain(upload_id).apply_async(countdown=countdown)


def _send_after_ingest(upload_id: int, countdown: float | None = None) -> None:
    build_after_ingest(upload_id).apply_async(countdown=countdown)


jobs.provide(jobs.INGEST_UPLOAD, _send)
jobs.provide(jobs.UPLOAD_AFTER_INGEST, _send_after_ingest)
