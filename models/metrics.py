"""The Prometheus series every process records (web, worker, beat), declared once so names never drift.

Multiprocess mode: when ``PROMETHEUS_MULTIPROC_DIR`` is set in a process's environment *before* it starts (the
stack, the Procfile and docker-compose set it), each gunicorn worker and each Celery pool process writes its
samples to files in that directory, and ``/metrics`` (webapp.metrics) or the worker's own exporter
(tasks.signals) adds them up. Without it (tests, a one-off script) the samples stay in this process.

Labels are kept to small, fixed sets (route templates, task names, queue names, error codes) so the number of
series stays bounded whatever the traffic.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import multiprocess as _multiprocess

#: Seconds: from a fast API call to a slow upload stage.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

HTTP_REQUESTS = Counter(
    "strava_http_requests_total", "HTTP requests answered, by route template, method and status.",
    ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "strava_http_request_duration_seconds", "Time to answer an HTTP request, by route template and method.",
    ["method", "route"], buckets=_LATENCY_BUCKETS)
OPEN_SOCKETS = Gauge(
    "strava_websocket_open", "WebSockets open now (summed over the live web processes).",
    multiprocess_mode="livesum")
PUBSUB_LAG = Histogram(
    "strava_pubsub_lag_seconds",
    "Publish-to-delivery time of a probe through Redis pub/sub to a web process's listener.", buckets=_LAG_BUCKETS)

TASKS = Counter(
    "strava_celery_tasks_total", "Celery task runs by task name and state (started, succeeded, failed, retried).",
    ["task", "state"])
TASK_DURATION = Histogram(
    "strava_celery_task_duration_seconds", "Run time of a Celery task, by task name.", ["task"],
    buckets=_LATENCY_BUCKETS)
PIPELINE_STAGE = Histogram(
    "strava_pipeline_stage_duration_seconds", "Run time of an upload pipeline stage (ingest, publish).",
    ["stage"], buckets=_LATENCY_BUCKETS)
PUSH_DELIVERIES = Counter(
    "strava_push_deliveries_total", "Push deliveries by outcome (sent, retry, failed, removed, skipped).",
    ["outcome"])
FCM_ERRORS = Counter(
    "strava_fcm_errors_total", "Errors FCM answered for a push, by error class.", ["code"])
BEAT_RUNS = Counter(
    "strava_beat_job_runs_total",
    "Periodic jobs by outcome: ran, or skipped because another run held the job (a second beat, a redelivery).",
    ["job", "outcome"])


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def registry() -> CollectorRegistry:
    """What a scrape reads: every process's files in multiprocess mode, else this process's own samples."""
    if multiprocess_dir():
        reg = CollectorRegistry()
        _multiprocess.MultiProcessCollector(reg)
        return reg
    return REGISTRY


def reset_multiprocess_dir() -> None:
    """Empty the directory at the start of a deployment's process tree: files of processes that are gone would
    otherwise be added to the new processes' counters (gunicorn's on_starting, the stack)."""
    path = multiprocess_dir()
    if not path:
        return
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for file in directory.glob("*.db"):
        file.unlink(missing_ok=True)


def mark_process_dead(pid: int) -> None:
    """A process left: its live gauges (open sockets) no longer count."""
    if multiprocess_dir():
        _multiprocess.mark_process_dead(pid)


@contextmanager
def timed(histogram: Histogram, *labels: str) -> Iterator[None]:
    started = perf_counter()
    try:
        yield
    finally:
        histogram.labels(*labels).observe(perf_counter() - started)
