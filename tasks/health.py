"""Health jobs: the hydration reminders beat job, and importing the health records of an Apple Health export."""

from __future__ import annotations

import logging

from celery import shared_task

from domain import jobs
from domain.algorithms.track import ParseError
from domain.health import hydration
from domain.health_sync import export_import
from models.errors import TRANSIENT_ERRORS
from tasks.app import AppTask, provide
from tasks.locks import single_run

log = logging.getLogger(__name__)


@shared_task(name="health.hydration_reminders", base=AppTask, ignore_result=True, acks_late=True,
             autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, max_retries=3)
@single_run("hydration-reminders", ttl_s=300)
def hydration_reminders() -> int:
    """One pass over the athletes who track water, at the (development-clock-aware) now; safe to run twice:
    each reminder claims its slot row first."""
    return hydration.send_reminders()


@shared_task(name=jobs.HEALTH_IMPORT_EXPORT, base=AppTask, ignore_result=True, acks_late=True,
             autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, retry_jitter=True, max_retries=5)
def import_export(user_id: int, key: str) -> dict[str, int] | None:
    """Import the health records of a stored Apple Health export (idempotent: records are keyed by content)."""
    try:
        return export_import.import_stored(user_id, key)
    except ParseError as exc:  # the file itself: retrying can't help
        log.warning("health export %s of user %s unreadable: %s", key, user_id, exc)
        return None


provide(import_export)
