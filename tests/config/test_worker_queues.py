"""Every way of starting the main worker takes its queues in config.WORKER_QUEUES's order (the order is the
priority: queue_order_strategy "priority"), and every queue a task is routed to is consumed by some worker."""

from __future__ import annotations

import re
from pathlib import Path

from config import ALL_QUEUES, WORKER_QUEUES, load_config
from devstack.stack import processes

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = ",".join(WORKER_QUEUES)


def test_procfile_compose_and_make_run_start_the_worker_with_the_configured_order(tmp_path: Path) -> None:
    procfile = (ROOT / "Procfile").read_text()
    assert re.search(rf"^worker: .*--queues {re.escape(EXPECTED)} ", procfile, re.M), procfile
    compose = (ROOT / "docker-compose.yml").read_text()
    assert re.search(rf'^  worker:\n(?:    .*\n)*?    command: \[.*"--queues", "{re.escape(EXPECTED)}"', compose, re.M)
    worker = processes({}, tmp_path)["worker"]
    assert worker[worker.index("--queues") + 1] == EXPECTED


def test_every_routed_queue_is_consumed_and_taken_in_priority_order() -> None:
    settings = load_config("testing").CELERY
    assert settings["broker_transport_options"]["queue_order_strategy"] == "priority"
    routed = {route["queue"] for route in settings["task_routes"].values()} | {settings["task_default_queue"]}
    assert routed <= set(ALL_QUEUES)
    # An activity already stored is published before the next file is parsed; analytics waits for a lull.
    assert WORKER_QUEUES.index("publish") < WORKER_QUEUES.index("pipeline") < WORKER_QUEUES.index("analytics")
