"""The production worker model (prefork pool, a separate process): hostile files don't leave their memory behind,
and a file that kills its worker is failed after a bounded number of deliveries instead of being redelivered
forever."""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest
from celery import Celery
from flask import Flask
from sqlalchemy import text

from models import Upload, db
from tests.support.processes import ROOT, stop, wait_until
from tests.support.synthetic import synthetic_track, to_gpx

pytestmark = pytest.mark.pipeline

_POINT = b'<trkpt lat="45.1234567" lon="7.1234567"><ele>100.5</ele><time>2024-01-01T00:00:00Z</time></trkpt>\n'


def gpx_points(n: int) -> bytes:
    return (b'<?xml version="1.0"?><gpx version="1.1" creator="x"><trk><trkseg>' + _POINT * n
            + b"</trkseg></trk></gpx>")


@pytest.fixture
def prefork(app: Flask, committed: None, redis_url: str) -> Iterator[SimpleNamespace]:
    """``celery worker --pool prefork -c 1`` in its own process, on a broker database of its own (so the suite's
    in-process worker never takes these messages), sharing the test database and object storage."""
    broker = redis_url.rsplit("/", 1)[0] + "/14"
    # Not the current app: the suite's shared tasks (and so every other test's uploads) must keep the suite's broker.
    Celery(broker=broker, set_as_current=False).connection_for_write().default_channel.client.flushdb()
    env = dict(os.environ, REDIS_URL=broker, UPLOAD_MAX_ATTEMPTS="3", LOG_LEVEL="WARNING")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "webapp.worker", "worker", "--pool", "prefork",
         "--concurrency", "1", "--queues", "pipeline", "--loglevel", "WARNING", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "-n", f"limits-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    sender = Celery(broker=broker, set_as_current=False)
    try:
        main = psutil.Process(proc.pid)
        assert wait_until(lambda: bool(main.children()), timeout=40), "the worker did not start its pool"
        yield SimpleNamespace(proc=proc, main=main, sender=sender,
                              pool=lambda: [c for c in main.children() if c.is_running()])
    finally:
        stop(proc, 20)


@pytest.fixture
def athlete(app: Flask, committed: None, make_token: Any) -> int:
    client = app.test_client()
    resp = client.get("/api/v1/me", headers={"Authorization": f"Bearer {make_token('limits@example.com')}"})
    body = resp.get_json()
    assert resp.status_code == 200 and body is not None, body
    return int(body["id"])


def stored_upload(user_id: int, data: bytes, data_type: str) -> int:
    """An accepted upload (file stored, row committed), as the API leaves it before enqueueing."""
    from models.storage import storage

    sha = hashlib.sha256(data).hexdigest()
    key = f"uploads/{user_id}/{sha}.{data_type}"
    storage.put(key, data)
    upload = Upload(user_id=user_id, storage_key=key, size_bytes=len(data), sha256=sha, data_type=data_type)
    db.session.add(upload)
    db.session.commit()
    return upload.id


def send_ingest(worker: SimpleNamespace, upload_id: int) -> None:
    worker.sender.send_task("pipeline.ingest", args=[upload_id], kwargs={"last": True}, queue="pipeline")


def upload_row(upload_id: int) -> Any:
    db.session.remove()
    return db.session.execute(text("SELECT status, error, attempts FROM uploads WHERE id = :i"),
                              {"i": upload_id}).one()


def wait_final(upload_id: int, timeout: float = 90) -> Any:
    assert wait_until(lambda: upload_row(upload_id).status in ("ready", "failed", "duplicate"), timeout, 0.1), \
        upload_row(upload_id)
    return upload_row(upload_id)


def test_failed_hostile_files_leave_no_memory_behind(prefork: SimpleNamespace, athlete: int) -> None:
    # Warm up: the pool process loads the parsers and metrics code once, as any first upload does.
    warm_up = stored_upload(athlete, to_gpx(synthetic_track(seed=8, n_points=2000)), "gpx")
    send_ingest(prefork, warm_up)
    assert wait_final(warm_up).status == "ready"
    (child,) = prefork.pool()
    baseline = child.memory_info().rss
    bombs = [
        ("gpx.gz", gzip.compress(gpx_points(3_000_000), 6)),  # ~1 MB → 290 MB, 3 M points
        ("gpx.gz", gzip.compress(b"<gpx>" + b" " * (400 << 20), 9)),  # a plain decompression bomb
        ("gpx.gz", gzip.compress(gpx_points(2_100_000), 6)),
    ]
    for kind, data in bombs * 2:
        upload_id = stored_upload(athlete, data, kind)
        send_ingest(prefork, upload_id)
        row = wait_final(upload_id)
        assert row.status == "failed" and row.error, row
    assert prefork.pool() == [child], "the pool process was replaced"
    rss = child.memory_info().rss
    print(f"pool process RSS: {baseline >> 20} MB before six hostile files, {rss >> 20} MB after")
    assert rss - baseline < 80 << 20, (baseline >> 20, rss >> 20)


def test_a_file_that_kills_its_worker_is_failed_after_bounded_deliveries(prefork: SimpleNamespace,
                                                                         athlete: int) -> None:
    # Big enough to parse for a second or more: the test kills the pool process while it does.
    upload_id = stored_upload(athlete, to_gpx(synthetic_track(seed=9, n_points=400_000)), "gpx")
    send_ingest(prefork, upload_id)
    kills = 0

    def running(delivery: int) -> bool:
        row = upload_row(upload_id)
        return bool(row.status == "processing" and row.attempts == delivery)

    while kills < 6:
        if not wait_until(functools.partial(running, kills + 1), timeout=60):
            break
        (child,) = prefork.pool()
        os.kill(child.pid, signal.SIGKILL)  # as the kernel's OOM killer would
        kills += 1
    row = wait_final(upload_id, timeout=60)
    assert row.status == "failed", row
    assert kills == 3  # UPLOAD_MAX_ATTEMPTS deliveries, each killed; the fourth fails it without running
    assert "stopped our processing worker" in row.error
    assert prefork.proc.poll() is None, "the worker itself must survive"
    # The worker is healthy afterwards: the next upload goes through.
    upload_ok = stored_upload(athlete, to_gpx(synthetic_track(seed=10, n_points=300)), "gpx")
    send_ingest(prefork, upload_ok)
    assert wait_final(upload_ok).status == "ready"
