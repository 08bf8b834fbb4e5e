"""Metrics and logs of a real upload: /metrics serves the series the dashboard reads, and one request id
follows the upload from its POST through every pipeline stage on the worker."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest

from tests.support.processes import wait_until
from tests.support.synthetic import synthetic_track, to_gpx
from tests.support.uploads import upload, wait_for
from webapp.logs import ContextFilter, json_formatter

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ride_gpx() -> bytes:
    return to_gpx(synthetic_track(seed=17, n_points=600, speed_mps=6.0))


@pytest.fixture
def json_lines():
    """Every log line of this process (web views and the worker thread alike) as parsed JSON objects."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_one_upload_is_followed_by_its_request_id_from_post_to_feed(live_client, live_login, ride_gpx, json_lines):
    headers, _ = live_login("tracer")
    resp = upload(live_client, {**headers, "X-Request-ID": "trace-upload-17"}, ride_gpx, "ride.gpx")
    assert resp.status_code == 201
    assert resp.headers["X-Request-ID"] == "trace-upload-17"
    assert wait_for(live_client, headers, resp.json["id"])["status"] == "ready"

    def traced() -> list[dict[str, str]]:
        return [line for line in json_lines() if line.get("request_id") == "trace-upload-17"]

    # The chain's task (ingest, then publish in the same task) carries the id. Its line is written when the
    # task returns, just after the commit that made the upload ready: waited for.
    wait_until(lambda: any(line["task_name"] == "pipeline.ingest" for line in traced()), timeout=10)
    lines = traced()
    web = [line for line in lines if line["task_id"] == "-"]
    assert any(f"upload {resp.json['id']} accepted" in line["message"] for line in web), lines
    stages = {line["task_name"] for line in lines if line["task_id"] != "-"}
    assert "pipeline.ingest" in stages, lines
    athlete = {line["athlete_id"] for line in lines if line["task_id"] != "-"}
    assert len(athlete) == 1 and athlete != {"-"}
    for line in lines:
        assert {"ts", "level", "logger", "message"} <= set(line)
    # Another request's lines do not carry this id.
    other = live_client.get("/api/v1/uploads", headers={**headers, "X-Request-ID": "another-request"})
    assert other.status_code == 200
    assert not [line for line in json_lines() if line.get("request_id") == "trace-upload-17"
                and "GET" in line["message"]]


def scrape(client) -> str:
    resp = client.get("/metrics")
    assert resp.status_code == 200, resp.data[:200]
    assert resp.content_type.startswith("text/plain")
    return resp.get_data(as_text=True)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample (labels matched as a subset), or 0 when absent."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def test_metrics_serve_the_web_and_task_series_after_an_upload(live_client, live_login, ride_gpx):
    headers, _ = live_login("metered")
    before = scrape(live_client)
    resp = upload(live_client, headers, ride_gpx, "metered.gpx")
    assert resp.status_code == 201
    assert wait_for(live_client, headers, resp.json["id"])["status"] == "ready"
    # The task counts itself when it returns, just after the commit that made the upload ready: waited for.
    succeeded_before = sample(before, "strava_celery_tasks_total", task="pipeline.ingest", state="succeeded")
    wait_until(lambda: sample(scrape(live_client), "strava_celery_tasks_total", task="pipeline.ingest",
                              state="succeeded") > succeeded_before, timeout=10)
    after = scrape(live_client)

    route = "/api/v1/uploads"
    grew = sample(after, "strava_http_requests_total", method="POST", route=route, status="201") - \
        sample(before, "strava_http_requests_total", method="POST", route=route, status="201")
    assert grew == 1
    assert sample(after, "strava_http_request_duration_seconds_count", method="POST", route=route) >= 1
    # Route templates, never raw paths: one series for every upload id.
    assert 'route="/api/v1/uploads/<int:upload_id>"' in after
    assert f'route="/api/v1/uploads/{resp.json["id"]}"' not in after
    task = "pipeline.ingest"  # the upload's one task: ingest, then publish
    assert sample(after, "strava_celery_tasks_total", task=task, state="succeeded") > \
        sample(before, "strava_celery_tasks_total", task=task, state="succeeded")
    assert sample(after, "strava_celery_tasks_total", task=task, state="started") >= 1
    assert sample(after, "strava_celery_task_duration_seconds_count", task=task) >= 1
    for stage in ("ingest", "publish"):  # each stage's own duration, publish timed inside the task
        assert sample(after, "strava_pipeline_stage_duration_seconds_count", stage=stage) > \
            sample(before, "strava_pipeline_stage_duration_seconds_count", stage=stage)
    for queue in ("publish", "pipeline", "media", "notify", "analytics", "default"):
        assert re.search(rf'^strava_celery_queue_length{{queue="{queue}"}} \d', after, re.M)
    assert re.search(r"^strava_upload_oldest_queued_age_seconds \d", after, re.M)
    assert re.search(r"^strava_broker_up 1\.0$", after, re.M)
    for name in ("strava_websocket_open", "strava_pubsub_lag_seconds", "strava_push_deliveries_total",
                 "strava_fcm_errors_total", "strava_beat_job_runs_total", "strava_celery_unacked_messages"):
        assert f"# TYPE {name}" in after, name


def test_every_dashboard_series_is_served(live_client):
    """docs/grafana-dashboard.json is importable (JSON, panels with queries) and names only served series."""
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(exprs) >= 8
    served = set(re.findall(r"^# TYPE (\w+) (\w+)", scrape(live_client), re.M))
    names = {name for name, _ in served}
    names |= {f"{name}_{suffix}" for name, kind in served if kind == "histogram"
              for suffix in ("bucket", "sum", "count")}
    names |= {f"{name}_total" for name, kind in served if kind == "counter"}
    used = {m for expr in exprs for m in re.findall(r"\b(strava_\w+)", expr)}
    assert used, exprs
    assert used <= names, used - names
