from __future__ import annotations

import os

import pytest

from devstack.embedded import free_port


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json == {"status": "ok"}
    resp = client.get("/readyz")
    assert resp.status_code == 200
    checks = resp.json["checks"]
    assert (checks["postgres"], checks["redis"], checks["broker"]) == ("ok", "ok", "ok")
    assert set(checks["queues"]["waiting"]) == {"publish", "pipeline", "media", "notify", "analytics", "default"}
    assert checks["queues"]["status"] == "ok"


def test_readyz_reports_a_backlog_and_a_dead_broker_as_degraded(app, client, monkeypatch):
    """The web still takes work when the workers are behind or the broker is away (the work waits), so it stays
    ready; the backlog and the broker are reported for the operator."""
    import redis

    from webapp import health

    # A queue of its own: the session's worker would consume (and choke on) these stand-in messages.
    queue = f"readyz-backlog-{os.getpid()}"
    monkeypatch.setattr(health, "QUEUES", (*health.QUEUES, queue))
    broker = redis.Redis.from_url(app.config["CELERY_BROKER_URL"])
    monkeypatch.setitem(app.config, "READY_QUEUE_BACKLOG_MAX", 2)
    broker.rpush(queue, "a", "b")
    broker.rpush(queue + "\x06\x166", "c")  # a priority level of the same queue counts too
    try:
        resp = client.get("/readyz")
        assert resp.status_code == 200
        assert resp.json["status"] == "degraded"
        assert resp.json["checks"]["queues"]["waiting"][queue] == 3
        assert resp.json["checks"]["queues"]["status"] == "backlog"
    finally:
        broker.delete(queue, queue + "\x06\x166")
    dead = redis.Redis.from_url(f"redis://127.0.0.1:{free_port(20000)}/0", socket_connect_timeout=0.5)
    app.extensions["metrics.broker"] = dead
    try:
        resp = client.get("/readyz")
        assert resp.status_code == 200
        assert resp.json["status"] == "degraded"
        assert resp.json["checks"]["broker"].startswith("error")
    finally:
        app.extensions.pop("metrics.broker")


@pytest.mark.parametrize("broken", ["redis", "postgres"])
def test_readyz_is_503_when_a_dependency_is_down(monkeypatch, database_url, redis_url, broken, app):
    from webapp import create_app

    dead_port = free_port(20000)  # nothing listens there
    if broken == "redis":
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{dead_port}/0")
    else:
        monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg2://postgres@127.0.0.1:{dead_port}/nope")
    try:
        down = create_app("testing")
        resp = down.test_client().get("/readyz")
        assert resp.status_code == 503
        assert resp.json["status"] == "unavailable"
        assert resp.json["checks"][broken].startswith("error")
        other = "postgres" if broken == "redis" else "redis"
        assert resp.json["checks"][other] == "ok"
        assert down.test_client().get("/healthz").status_code == 200
    finally:
        monkeypatch.undo()
        create_app("testing")  # the shared engine/Redis handles point back at the real servers
