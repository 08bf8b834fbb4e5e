"""The Celery app, built from the Flask config; every task runs inside an app context.

Task modules use ``shared_task`` with explicit names (``pipeline.ingest``, ``maintenance.heartbeat``…) so
routes, Flower and the logs read the same whatever the module layout.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init
from flask import Flask

from domain import jobs
from models import db
from tasks import memory, signals  # noqa: F401  (signals: connects the metrics and log-context handlers)

#: Every module that defines tasks; ``tasks.registry`` imports them all (web and worker alike, so that every
#: job the domain names has its sender registered in both).
TASK_MODULES = ["tasks.maintenance", "tasks.stages", "tasks.segments", "tasks.feed", "tasks.live", "tasks.push",
                "tasks.media", "tasks.health", "tasks.analytics", "tasks.exports"]

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


@worker_process_init.connect
def _pool_process_ready(**_: Any) -> None:
    memory.set_baseline()


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
