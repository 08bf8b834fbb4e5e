"""Celery signal handlers every process connects (web, worker, beat): the task series of /metrics, the log
context of each task, and the request id carried from a web request into every task it causes.

The request id (and the athlete) ride in the message headers: ``before_task_publish`` adds them wherever a
task is sent from (a web request, or a task sending the next stage of a chain), and ``task_prerun`` binds
them for the task's log lines, so one upload reads as one id from its POST to its feed fan-out.
"""

from __future__ import annotations

import logging
import os
from time import perf_counter
from typing import Any

from celery import Task
from celery.signals import (
    before_task_publish,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_shutdown,
)
from flask import g, has_request_context
from prometheus_client import start_http_server

from models import logcontext, metrics

log = logging.getLogger(__name__)

#: Message headers of the origin of a task.
REQUEST_ID_HEADER = "request_id"
ATHLETE_ID_HEADER = "athlete_id"
_STATES = {"SUCCESS": "succeeded", "FAILURE": "failed", "RETRY": "retried"}

_started: dict[str, tuple[float, list[Any]]] = {}


def origin() -> tuple[str | None, int | None]:
    """The request id and athlete of what is running now: a web request, or a task that inherited them."""
    if has_request_context():
        return g.get("request_id"), getattr(g.get("user"), "id", None)
    return logcontext.request_id.get(), logcontext.athlete_id.get()


@setup_logging.connect
def _keep_app_logging(**_: Any) -> None:
    # Connected, so Celery leaves the root logger alone: create_app() already installed the handler with the
    # context filter and the JSON or text format (Celery's own would drop the task and request ids).
    return None


@before_task_publish.connect
def _carry_origin(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is None:
        return
    request_id, athlete_id = origin()
    if request_id and REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = request_id
    if athlete_id is not None and ATHLETE_ID_HEADER not in headers:
        headers[ATHLETE_ID_HEADER] = athlete_id


@task_prerun.connect
def _task_started(task_id: str = "", task: Task | None = None, **_: Any) -> None:
    if task is None:
        return
    request = task.request
    athlete = request.get(ATHLETE_ID_HEADER)
    tokens = logcontext.bind(request=request.get(REQUEST_ID_HEADER), athlete=int(athlete) if athlete else None,
                             task=task_id, name=task.name)
    _started[task_id] = (perf_counter(), tokens)
    metrics.TASKS.labels(task.name, "started").inc()


@task_postrun.connect
def _task_finished(task_id: str = "", task: Task | None = None, state: str | None = None, **_: Any) -> None:
    started = _started.pop(task_id, None)
    if task is None or started is None:
        return
    elapsed = perf_counter() - started[0]
    # Celery's own "Task … succeeded" line is turned off (webapp.logs): this one carries the ids.
    log.info("%s %s in %.3f s", task.name, (state or "done").lower(), elapsed)
    logcontext.unbind(started[1])
    metrics.TASKS.labels(task.name, _STATES.get(state or "", (state or "unknown").lower())).inc()
    metrics.TASK_DURATION.labels(task.name).observe(elapsed)
    if task.name.startswith("pipeline.") and not getattr(task, "times_stages", False):
        metrics.PIPELINE_STAGE.labels(task.name.removeprefix("pipeline.")).observe(elapsed)


@worker_init.connect
def _start_exporter(sender: Any = None, **_: Any) -> None:
    """A worker on a machine without a web process serves its own /metrics (``WORKER_METRICS_PORT``)."""
    app = getattr(getattr(sender, "app", None), "flask_app", None)
    if app is None or not app.config.get("WORKER_METRICS_PORT"):
        return
    port = int(app.config["WORKER_METRICS_PORT"])
    start_http_server(port, addr=app.config["WORKER_METRICS_HOST"], registry=metrics.registry())
    log.info("worker metrics on http://%s:%d/metrics", app.config["WORKER_METRICS_HOST"], port)


@worker_process_shutdown.connect
def _pool_process_gone(**_: Any) -> None:
    metrics.mark_process_dead(os.getpid())
