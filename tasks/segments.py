"""Segment tasks: re-matching a new segment against existing activities and rebuilding leaderboards; thin
wrappers around ``domain.segments.rematch``, retried on transient errors."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from domain import board_rebuilds, jobs
from domain.segments import rematch as segments
from models.errors import TRANSIENT_ERRORS
from tasks.app import AppTask, provide
from tasks.locks import single_run

_RETRIED: dict[str, Any] = {"base": AppTask, "acks_late": True, "ignore_result": True,
                            "autoretry_for": TRANSIENT_ERRORS, "retry_backoff": True, "retry_jitter": True,
                            "max_retries": 5}


@shared_task(name=jobs.SEGMENT_REMATCH, **_RETRIED)
def rematch(segment_id: int) -> int:
    """Fan a new segment out over the activities whose bounds overlap it, in batches."""
    return segments.fan_out_rematch(segment_id)


@shared_task(name=jobs.SEGMENT_REMATCH_BATCH, **_RETRIED)
def rematch_batch(segment_id: int, activity_ids: list[int]) -> int:
    return segments.rematch_activities(segment_id, activity_ids, rebuild=True)


@shared_task(name=jobs.SEGMENT_REBUILD_BOARDS, **_RETRIED)
def rebuild_boards(segment_ids: list[int]) -> int:
    return segments.rebuild_boards(segment_ids)


@shared_task(name="maintenance.sweep_boards", ignore_result=True)
@single_run("sweep-boards", ttl_s=300)
def sweep_boards() -> int:
    """Beat job: send again the board rebuilds whose message was lost (their segments are still marked)."""
    return board_rebuilds.sweep_stale()


for _task in (rematch, rematch_batch, rebuild_boards):
    provide(_task)
