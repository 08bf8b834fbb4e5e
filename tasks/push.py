"""Push delivery tasks (queue ``notify``): thin wrappers around ``domain.notifications.push``."""

from __future__ import annotations

from celery import Task, shared_task
from flask import current_app

from domain import jobs
from domain.notifications import push
from domain.notifications.fcm import fcm_app
from models import db
from models.errors import TRANSIENT_ERRORS
from tasks.app import AppTask, provide
from tasks.locks import single_run


@shared_task(name=jobs.PUSH_DELIVER_USER, bind=True, base=AppTask, acks_late=True, ignore_result=True,
             max_retries=push.MAX_RETRIES)
def deliver_user(self: Task, user_id: int) -> dict[str, int]:
    """Plan and send the user's pushes; retries (only the undelivered devices) on transient errors."""
    base_s = float(current_app.config.get("PUSH_RETRY_BASE_S", 5))
    try:
        while push.plan_user(user_id)[0] == push.PLAN_BATCH:
            pass
        outcome = push.send_pending(user_id, fcm_app(current_app.config))
    except TRANSIENT_ERRORS as exc:
        db.session.rollback()
        raise self.retry(exc=exc, countdown=push.backoff_s(self.request.retries, base_s)) from exc
    if outcome.retry:
        if self.request.retries < push.MAX_RETRIES:
            raise self.retry(countdown=push.backoff_s(self.request.retries, base_s))
        push.give_up(user_id)
    return vars(outcome)


@shared_task(name=jobs.PUSH_DELIVER_USERS, base=AppTask, acks_late=True, ignore_result=True)
def deliver_users(user_ids: list[int]) -> int:
    """Fan-out of one commit's push scheduling (e.g. a group chat message): a ``push.deliver_user`` run per
    user, each with its own retries. The web process sends this one task instead of one per recipient."""
    for user_id in user_ids:
        deliver_user.apply_async(args=[int(user_id)])
    return len(user_ids)


@shared_task(name="push.sweep", base=AppTask, ignore_result=True)
@single_run("sweep-push", ttl_s=300)
def sweep() -> int:
    """Beat job: re-send users whose notifications stayed undelivered or whose deliveries stayed pending
    (broker down when they were committed, a lost retry), fail deliveries a dead run left ``sending``, and
    delete finished delivery rows past KEEP_DELIVERIES. Returns how many users were re-sent."""
    users = push.sweep(float(current_app.config.get("PUSH_SWEEP_AFTER_S", 60)))
    for user_id in users:
        deliver_user.apply_async(args=[user_id])
    return len(users)


provide(deliver_user)
provide(deliver_users)
