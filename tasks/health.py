"""Health jobs: the hydration reminders beat job."""

from __future__ import annotations

from celery import shared_task

from domain.health import hydration
from models.errors import TRANSIENT_ERRORS
from tasks.app import AppTask
from tasks.locks import single_run


@shared_task(name="health.hydration_reminders", base=AppTask, ignore_result=True, acks_late=True,
             autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, max_retries=3)
@single_run("hydration-reminders", ttl_s=300)
def hydration_reminders() -> int:
    """One pass over the athletes who track water, at the (development-clock-aware) now; safe to run twice:
    each reminder claims its slot row first."""
    return hydration.send_reminders()
