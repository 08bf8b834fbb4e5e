"""The Celery app, built from the Flask config; every task runs inside an app context.

Task modules use ``shared_task`` with explicit names (``pipeline.ingest``, ``maintenance.heartbeat``…) so
routes, Flower and the logs read the same whatever the module layout.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import Celery, Task
from celery import current_app as current_celery
from celery.signals import worker_process_init
from flask import Flask

from config import ALL_QUEUES
from domain import jobs
from domain.segments import warmup
from models import db
from tasks import memory, signals  # noqa: F401  (signals: connects the metrics and log-context handlers)

#: Every module that defines tasks; ``tasks.registry`` imports them all (web and worker alike, so that every
#: job the domain names has its sender registered in both).
TASK_MODULES = ["tasks.maintenance", "tasks.stages", "tasks.segments", "tasks.feed", "tasks.live", "tasks.push",
                "tasks.media", "tasks.health", "tasks.analytics", "tasks.exports"]

log = logging.getLogger(__name__)

#: Publishing a task: ride out a broker blip, but never hold a web request for long when it is down.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


class AppTask(Task):
    """Base of every task: runs inside the Flask app context and always hands the DB session back.

    A class of its own (not one made inside celery_init_app) so that stage bases such as
    ``tasks.stages.PipelineTask`` can extend it.
    """

    abstract = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        flask_app: Flask = self.app.flask_app
        with flask_app.app_context():
            try:
                return self.run(*args, **kwargs)
            finally:
                db.session.remove()

    def after_return(self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        # The failure's exception outlives the task (Celery keeps it for its events and logs), and through its
        # traceback every frame's locals: the inflated file, the half-parsed points. Clear those frames, then
        # give the memory back.
        if einfo is not None:
            memory.clear_traceback(getattr(einfo.exception, "exc", einfo.exception))
        memory.release_if_grown()


#: How long a pool process's start waits for its warm-up. Celery gives a new pool process a few seconds
#: (worker_proc_alive_timeout) to report ready; a warm-up stuck on an unreachable database must not make it
#: miss that, so the warm-up runs on a thread of its own and is left to finish in the background after this.
WARM_UP_WAIT_S = 2.0


@worker_process_init.connect
def _pool_process_ready(**_: Any) -> None:
    memory.tune_allocator()  # first: the warm-up's own allocations follow the same thresholds
    warm_pool_process()
    memory.reserve_heap()  # here, on the thread that will run the tasks (the warm-up has one of its own)
    memory.set_baseline()  # after the warm-up: what it loaded is part of the process, not growth


def warm_pool_process(wait_s: float = WARM_UP_WAIT_S) -> bool:
    """Do a new pool process's first-use work (``domain.segments.warmup``, and the first publish's set-up)
    before it takes its first task, so that task runs as fast as later ones. Never raises: a failed warm-up
    is logged and the process starts cold. Returns whether the warm-up finished (successfully) in time."""
    celery = current_celery._get_current_object()
    flask_app: Flask | None = getattr(celery, "flask_app", None)
    if flask_app is None:
        return False
    outcome: dict[str, Any] = {}
    try:
        # No I/O. Both are done already in a pool process Celery forked; the result backend is per thread,
        # so it is loaded here, on the thread that runs the tasks, not on the warm-up's.
        celery.finalize()
        _ = celery.backend
    except Exception:
        log.warning("pool process warm-up: the Celery app did not load", exc_info=True)

    def run() -> None:
        started = time.perf_counter()
        try:
            with flask_app.app_context():
                outcome["steps"] = warmup.warm_up()
                _warm_publishing(celery)
        except Exception as exc:  # any failure only costs the first task its speed
            outcome["error"] = exc
        finally:
            outcome["ms"] = (time.perf_counter() - started) * 1000.0

    thread = threading.Thread(target=run, name="warm-up", daemon=True)
    thread.start()
    thread.join(wait_s)
    if thread.is_alive():
        log.warning("pool process warm-up still running after %.1f s; starting without waiting for it", wait_s)
        return False
    if "error" in outcome:
        log.warning("pool process warm-up failed after %.0f ms; starting cold", outcome["ms"],
                    exc_info=outcome["error"])
        return False
    log.debug("pool process warmed up in %.0f ms (%s)", outcome["ms"],
              ", ".join(f"{k} {v:.0f} ms" for k, v in outcome["steps"].items()))
    return True


def _warm_publishing(celery: Celery) -> None:
    """Open the broker connection of the first task sent from this process (the producer pool is per process:
    Celery resets it after the fork), and build what Celery builds on a process's first send."""
    with celery.producer_or_acquire() as producer:
        producer.connection.ensure_connection(max_retries=1)
        # A connection's first message to a queue declares it (a queue length read and a binding written, the
        # same declaration the worker made at its start; ~2 ms): done here for every queue the app sends to.
        # amqp.queues makes the queue a route names (create_missing_queues), the same one a send would use.
        for name in ALL_QUEUES:
            producer.maybe_declare(celery.amqp.queues[name])
    # Celery builds its message sender, router and event dispatcher (importing celery.events) on the first send:
    # ~3 ms of the first task message a process sends. Built here, and one message made but not sent.
    amqp = celery.amqp
    _ = amqp.router, amqp.send_task_message
    amqp.create_task_message("warm-up", "warm-up", (), {})


def celery_init_app(app: Flask) -> Celery:
    celery = Celery(app.import_name, task_cls=AppTask, include=TASK_MODULES)
    celery.config_from_object(app.config["CELERY"])
    celery.flask_app = app
    celery.set_default()
    app.extensions["celery"] = celery
    return celery


def provide(task: Task, **options: Any) -> None:
    """Register ``task`` as the sender of the domain job of the same name (``domain.jobs``)."""

    def send(*args: Any, countdown: float | None = None) -> None:
        task.apply_async(args=args, countdown=countdown, retry=True, retry_policy=PUBLISH_RETRY, **options)

    jobs.provide(task.name, send)
