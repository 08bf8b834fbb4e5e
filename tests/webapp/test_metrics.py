"""/metrics is not public by accident, and in multiprocess mode it adds up every gunicorn worker's samples."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.processes import gunicorn


def test_metrics_answer_loopback_only_and_never_through_a_proxy(client):
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 404
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 404
    # A proxy on this machine makes every client look like loopback.
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404
    assert client.get("/metrics", headers={"Forwarded": "for=203.0.113.9"}).status_code == 404


def test_metrics_allow_list_is_a_setting(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_ALLOW_FROM", "10.0.0.0/8")
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert client.get("/metrics").status_code == 404  # loopback is no longer listed


def test_metrics_token_is_required_from_everyone_when_set(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "s3cret-scrape")
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape",
                                         "X-Forwarded-For": "203.0.113.9"}, environ_base={"REMOTE_ADDR": "1.2.3.4"})
    assert ok.status_code == 200
    assert b"strava_http_requests_total" in ok.data


def _served(port: int, route: str) -> float:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(float(m) for m in re.findall(
        rf'^strava_http_requests_total{{method="GET",route="{re.escape(route)}",status="200"}} (\S+)$', text, re.M))


@pytest.mark.usefixtures("app")
def test_gunicorn_workers_add_up_in_multiprocess_mode(database_url, redis_url, tmp_path):
    """Two gevent workers: /metrics answered by either counts the requests both served."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {**os.environ, "APP_ENV": "testing", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    def healthz(_: int) -> int:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5, headers={"Connection": "close"}
                            ).status_code

    with gunicorn("webapp:create_app()", env, workers=2) as port:
        sent = 0
        with ThreadPoolExecutor(16) as pool:
            # Concurrent connections until both workers have answered some (an idle worker may win every accept).
            while sent < 3200 and len(set(metrics_dir.glob("counter_*.db"))) < 2:
                assert set(pool.map(healthz, range(160))) == {200}
                sent += 160
        assert len(set(metrics_dir.glob("counter_*.db"))) == 2, "only one worker ever answered"
        assert _served(port, "/healthz") == sent
        assert _served(port, "/healthz") == sent  # whichever worker answers the scrape
