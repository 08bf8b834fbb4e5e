"""The whole-account export task (queue ``default``): a thin wrapper around ``domain.exports.account``."""

from __future__ import annotations

from celery import shared_task

from domain import jobs
from domain.exports import account
from models.errors import TRANSIENT_ERRORS
from tasks.app import AppTask, provide


@shared_task(name=jobs.ACCOUNT_EXPORT, base=AppTask, acks_late=True, ignore_result=True,
             autoretry_for=TRANSIENT_ERRORS, retry_backoff=5, retry_backoff_max=300, retry_jitter=True,
             max_retries=5, soft_time_limit=3300, time_limit=3600)
def account_export_task(export_id: int) -> str:
    try:
        return account.build_export(export_id)
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:
        account.fail_export(export_id, "Your export could not be built. It has been logged; please try again.")
        raise exc from None


provide(account_export_task)
