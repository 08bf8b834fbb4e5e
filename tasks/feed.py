"""Feed tasks: thin wrappers around ``domain.feed.fanout``, retried on transient errors."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from domain import jobs
from domain.feed import fanout
from models.errors import TRANSIENT_ERRORS
from tasks.app import AppTask, provide

_TASK_OPTIONS: dict[str, Any] = {
    "base": AppTask, "acks_late": True, "ignore_result": True, "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 2, "retry_backoff_max": 120, "retry_jitter": True, "max_retries": 6,
}


@shared_task(name=jobs.FEED_BACKFILL, **_TASK_OPTIONS)
def backfill_task(follower_id: int, followee_id: int) -> int:
    return fanout.backfill_follow(follower_id, followee_id)


@shared_task(name=jobs.FEED_REMOVE_AUTHOR, **_TASK_OPTIONS)
def remove_author_task(follower_id: int, author_id: int) -> int:
    return fanout.remove_author(follower_id, author_id)


@shared_task(name=jobs.FEED_ITEM_CHANGED, **_TASK_OPTIONS)
def item_changed_task(kind: str, item_id: int) -> int:
    return fanout.item_changed(kind, item_id)


@shared_task(name=jobs.FEED_ITEM_REMOVED, **_TASK_OPTIONS)
def item_removed_task(kind: str, item_id: int, author_id: int) -> None:
    fanout.item_removed(kind, item_id, author_id)


@shared_task(name=jobs.FEED_REBUILD, **_TASK_OPTIONS)
def rebuild_task(user_id: int) -> int:
    return fanout.rebuild_user_feed(user_id)


for _task in (backfill_task, remove_author_task, item_changed_task, item_removed_task, rebuild_task):
    provide(_task)
