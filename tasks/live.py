"""Live-session upkeep on beat."""

from __future__ import annotations

import logging

from celery import shared_task
from flask import current_app

from domain.live.sessions import sweep_abandoned
from tasks.locks import single_run

log = logging.getLogger(__name__)


@shared_task(name="maintenance.sweep_live_sessions", ignore_result=True)
@single_run("sweep-live-sessions", ttl_s=120)
def sweep_live_sessions() -> int:
    """End live sessions idle for ``LIVE_ABANDON_AFTER_S`` or older than ``LIVE_MAX_DURATION_S``, each committed
    and then announced with ``live.ended`` on its channel. The athlete can still save an ended session."""
    cfg = current_app.config
    ended = sweep_abandoned(cfg["LIVE_ABANDON_AFTER_S"], cfg["LIVE_MAX_DURATION_S"])
    if ended:
        log.info("ended %d abandoned live sessions", ended)
    return ended
