"""Tasks run on a real Celery worker, consuming from Redis, inside the Flask app context."""

from __future__ import annotations

import pytest


@pytest.fixture
def probe_task(celery_app):
    return celery_app.tasks["tests.probe"]


def test_task_runs_in_app_context_on_a_real_worker(celery_worker, probe_task, committed):
    result = probe_task.apply_async(queue="default").get(timeout=30)
    assert result == {"app": "webapp", "db": 42, "queue": "default"}


def test_heartbeat_runs_on_the_worker_and_takes_the_beat_lock(celery_worker, committed, redis_clean):
    from tasks.maintenance import HEARTBEAT_KEY, heartbeat

    assert heartbeat.apply_async(ignore_result=False).get(timeout=30) is not None
    assert float(redis_clean.get(HEARTBEAT_KEY)) > 0
    # While another beat's run holds the lock, a second run is skipped.
    redis_clean.set("lock:heartbeat", "other-beat", ex=30)
    assert heartbeat.apply_async(ignore_result=False).get(timeout=30) is None


def test_routes_send_stages_to_their_queues(celery_app):
    route = celery_app.amqp.router.route
    assert route({}, "pipeline.ingest")["queue"].name == "pipeline"
    assert route({}, "notify.push")["queue"].name == "notify"
    assert route({}, "maintenance.heartbeat")["queue"].name == "default"
