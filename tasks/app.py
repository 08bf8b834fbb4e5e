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
from models.redis_store import redis_store

TASK_MODULES = ["tasks.maintenance", "tasks.stages"]


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        """Runs the task inside the app context and always hands the DB session back."""

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                try:
                    return self.run(*args, **kwargs)
                finally:
                    db.session.remove()

    celery = Celery(app.import_name, task_cls=FlaskTask, include=TASK_MODULES)
    celery.config_from_object(app.config["CELERY"])
    celery.set_default()
    app.extensions["celery"] = celery
    return celery


@worker_process_init.connect
def _reset_connections_after_fork(**_: Any) -> None:
    """A prefork child inherits the parent's pools; sockets shared across processes corrupt both."""
    db.dispose_after_fork()
    redis_store.reset_after_fork()
