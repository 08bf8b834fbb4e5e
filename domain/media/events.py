"""The media events consumer: long-polls the SQS queue that S3 notifications (and MediaConvert's job-state
events, through EventBridge) arrive on, and hands each event to the lifecycle.

A message is deleted only after every event in it was handled and committed; one that fails stays on the queue
and comes back after its visibility timeout (SQS's redrive policy moves a message that keeps failing to a
dead-letter queue in production). Handling is idempotent, so redeliveries change nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from domain.algorithms.media.events import JobStateChange, ObjectCreated, parse_message
from domain.media import lifecycle
from models import db
from models.media_storage import media_bucket

log = logging.getLogger(__name__)


def handle_body(body: str) -> list[str]:
    """Handle one queue message body; what was done with each event in it."""
    outcomes = []
    for event in parse_message(body):
        if isinstance(event, ObjectCreated):
            outcomes.append(lifecycle.handle_object_created(event))
        elif isinstance(event, JobStateChange):
            outcomes.append(lifecycle.handle_job_change(event))
    return outcomes


def poll_once(queue_url: str, *, wait_s: int = 20) -> int:
    """One long poll; the number of messages handled (and deleted)."""
    handled = 0
    for message in media_bucket.receive_events(queue_url, wait_s=wait_s):
        try:
            outcomes = handle_body(message["body"])
        except Exception:
            db.session.rollback()
            log.exception("media event %s failed; it will be delivered again", message["id"])
            continue
        finally:
            db.session.remove()
        log.info("media event %s: %s", message["id"], ", ".join(outcomes) or "nothing to do")
        media_bucket.delete_event(queue_url, message["receipt"])
        handled += 1
    return handled


def run(queue_url: str, *, stop: Callable[[], bool] = lambda: False, wait_s: int = 20) -> None:
    """Consume until ``stop()``; an unreachable queue is retried with a growing pause, never a crash."""
    pause = 1.0
    while not stop():
        try:
            poll_once(queue_url, wait_s=wait_s)
            pause = 1.0
        except Exception:
            log.warning("media events queue unreachable; retrying in %.0f s", pause, exc_info=True)
            time.sleep(pause)
            pause = min(pause * 2, 30.0)
