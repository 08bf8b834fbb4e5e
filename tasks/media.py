"""The media chain's tasks (queue ``media``, a worker concurrency of its own so a transcode never delays the
activity pipeline): thin wrappers around domain.media, taking ids, safe to run twice."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ConnectionError as AwsConnectionError
from celery import Task, shared_task

from domain.algorithms.media import TranscodeError
from domain.media import lifecycle, processing
from models import db
from models.errors import TRANSIENT_ERRORS
from models.storage import StorageError
from tasks.app import AppTask, provide


class MediaTask(AppTask):
    abstract = True
    ignore_result = True
    # AwsConnectionError: MediaConvert (or S3 through boto3 directly) unreachable for a moment.
    autoretry_for = (*TRANSIENT_ERRORS, StorageError, TranscodeError, AwsConnectionError)
    retry_backoff = 5
    retry_backoff_max = 300
    retry_jitter = True
    max_retries = 5
    acks_late = True

    def on_failure(self, exc: BaseException, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                   einfo: Any) -> None:
        # Retries exhausted or an unexpected error: the item must not stay `processing` for ever.
        if self.name != "media.process" or not args:
            return
        with self.app.flask_app.app_context():
            try:
                lifecycle.fail(int(args[0]), "The file could not be processed; try uploading it again.")
            finally:
                db.session.remove()


@shared_task(name="media.process", base=MediaTask, bind=True, soft_time_limit=20 * 60, time_limit=25 * 60)
def process(self: Task, media_id: int) -> str:
    """Photo renditions, or a video transcode (ffmpeg here, or a MediaConvert job submitted)."""
    return processing.process(media_id)


@shared_task(name="media.finish_transcode", base=MediaTask, bind=True)
def finish_transcode(self: Task, media_id: int) -> str:
    """A MediaConvert job completed: record its outputs, the item becomes ready."""
    return processing.finish_transcode(media_id)


@shared_task(name="media.purge", base=MediaTask, bind=True)
def purge(self: Task) -> int:
    """Delete the objects of deleted items."""
    return lifecycle.purge_deleted()


@shared_task(name="media.sweep", base=MediaTask, bind=True)
def sweep(self: Task) -> dict[str, int]:
    """Items never uploaded, items stuck in `uploaded`, objects of deleted items."""
    return lifecycle.sweep()


provide(process)
provide(finish_transcode)
provide(purge)
