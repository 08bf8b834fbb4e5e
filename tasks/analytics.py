"""Analytics tasks (the ``analytics`` queue): thin wrappers around ``domain.insights``, retried on transient
errors; beat ticks for weekly summaries, planned-workout reminders and lost refreshes."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import shared_task

from domain import clock, jobs
from domain.insights import loads, planned, service, summaries
from models import db
from models.errors import TRANSIENT_ERRORS
from tasks.app import AppTask, provide
from tasks.locks import single_run

log = logging.getLogger(__name__)

_RETRIED: dict[str, Any] = {"base": AppTask, "acks_late": True, "ignore_result": True,
                            "autoretry_for": TRANSIENT_ERRORS, "retry_backoff": True, "retry_jitter": True,
                            "max_retries": 5}


@shared_task(name=jobs.ANALYTICS_REFRESH, **_RETRIED)
def refresh(user_id: int, activity_ids: list[int]) -> None:
    service.refresh(user_id, activity_ids)


@shared_task(name=jobs.ANALYTICS_REBUILD, **_RETRIED)
def rebuild(user_id: int) -> int:
    count = loads.rebuild(user_id)
    db.session.commit()
    return count


@shared_task(name="analytics.weekly_summaries", **_RETRIED)
def weekly_summaries(user_ids: list[int]) -> int:
    return summaries.run_chunk(user_ids)


@shared_task(name="analytics.weekly_summaries_tick", ignore_result=True)
@single_run("weekly-summaries-tick", ttl_s=120)
def weekly_summaries_tick() -> int:
    """Beat job: lease the athletes whose summary slot has come and send them in chunks."""
    started = time.monotonic()
    now = clock.now()
    scheduled = summaries.schedule_missing(now)
    due = summaries.lease_due(now)
    for i in range(0, len(due), summaries.CHUNK):
        chunk = due[i:i + summaries.CHUNK]
        try:
            weekly_summaries.apply_async((chunk,), queue="analytics")
        except Exception:
            log.warning("could not send a weekly-summary chunk; its athletes are due again", exc_info=True)
            summaries.clear_leases(chunk)
    log.info("weekly summaries tick: %d athletes due, %d newly scheduled, %.3f s", len(due), scheduled,
             time.monotonic() - started)
    return len(due)


@shared_task(name="analytics.planned_reminders_tick", ignore_result=True)
@single_run("planned-reminders-tick", ttl_s=55)
def planned_reminders_tick() -> int:
    """Beat job: remind athletes of planned workouts whose reminder time has come."""
    started = time.monotonic()
    sent = planned.send_due_reminders()
    log.info("planned-workout reminders: %d sent, %.3f s", sent, time.monotonic() - started)
    return sent


@shared_task(name="analytics.sweep_stale", ignore_result=True)
@single_run("analytics-sweep", ttl_s=300)
def sweep_stale() -> int:
    """Beat job: resend the refresh of athletes whose series stayed marked stale (a lost message)."""
    return loads.sweep_stale()


for _task in (refresh, rebuild):
    provide(_task)
