"""The Celery app, built from the Flask config; every task runs inside an app context.

Task modules use ``shared_task`` with explicit names (``pipeline.ingest``, ``maintenance.heartbeat``…) so
routes, Flower and the logs read the same whatever the module layout.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init
from flask import Flask

from models import db
from models.pubsub import pubsub
from models.redis_store import redis_store

TASK_MODULES = ["tasks.maintenance", "tasks.stages", "tasks.segment_tasks", "tasks.feed", "tasks.live",
                "tasks.push"]


class AppTask(Task):
    """Base of every task: runs inside the Flask app context and always hands the DB session back.

    A class of its own (not one made inside celery_init_app) so that stage bases such as
    ``tasks.stages.PipelineTask`` can extend it.
    """

    abstract = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        flask_app: Flask = self.app.flask_app  # type: ignore[attr-defined]
        with flask_app.app_context():
            try:
                return self.run(*args, **kwargs)
            finally:
                db.session.remove()


def celery_init_app(app: Flask) -> Celery:
    celery = Celery(app.import_name, task_cls=AppTask, include=TASK_MODULES)
    celery.config_from_object(app.config["CELERY"])
    celery.flask_app = app  # type: ignore[attr-defined]
    celery.set_default()
    app.extensions["celery"] = celery
    return celery


@worker_process_init.connect
def _reset_connections_after_fork(**_: Any) -> None:
    """A prefork child inherits the parent's pools; sockets shared across processes corrupt both."""
    db.dispose_after_fork()
    redis_store.reset_after_fork()
    pubsub.reset_after_fork()
