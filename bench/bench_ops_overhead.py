"""What metrics and JSON logging cost the ingest throughput (target ≤ 3 %).

The end-to-end ingest run of bench_ingest_e2e (gunicorn + a prefork Celery worker on a throwaway database,
client threads uploading distinct 1-hour GPX files, activities/s from the first 201 to the last ``ready``), in
two configurations, alternated so the machine's other load falls on both alike:

- **plain**: text logs at WARNING, metrics kept in each process's memory (no multiprocess files);
- **observed**: what production runs: JSON log lines at INFO (a line per request and per task, with the ids) and
  the multiprocess metric files every process writes for /metrics.

It also times the instrumentation itself in-process (the task signal handlers, the HTTP hooks, one JSON log
line), the part both configurations pay, against the CPU one upload costs.

    .venv/bin/python bench/bench_ops_overhead.py                 # 3 rounds of each, 150 uploads per round
    .venv/bin/python bench/bench_ops_overhead.py --rounds 1 --uploads 60
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest_e2e import generate_files, measure_throughput, pure_ingest_cpu, warm_up
from bench_ingest_stack import BIN, QUEUES, BenchStack, remove_tree, say

CONFIGS: dict[str, dict[str, str]] = {
    "plain": {"LOG_LEVEL": "WARNING", "LOG_JSON": "0"},
    "observed": {"LOG_LEVEL": "INFO", "LOG_JSON": "1"},
}


def start(stack: BenchStack, name: str, metrics_dir: Path, web_workers: int, concurrency: int) -> None:
    env_extra = dict(CONFIGS[name])
    if name == "observed":
        for stale in metrics_dir.glob("*.db"):
            stale.unlink()
        env_extra["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    stack.extra_env = env_extra
    stack.start_web(web_workers, 16)
    stack._worker_runs += 1
    cmd = [str(BIN / "celery"), "-A", "webapp.worker", "worker", "--queues", QUEUES, "--pool", "prefork",
           "--concurrency", str(concurrency), "--loglevel", env_extra["LOG_LEVEL"],
           "--hostname", f"overhead{stack._worker_runs}-{os.getpid()}@%h"]
    stack.worker = stack._spawn("worker", cmd, stack.env())


def instrumentation_cost_us() -> dict[str, float]:
    """Microseconds per call of what every upload runs: the task signals, the HTTP hooks, one JSON line."""
    from celery import Celery

    from models import metrics
    from tasks import signals
    from webapp import create_app
    from webapp.logs import ContextFilter, json_formatter

    create_app("testing")  # logging configured as the processes have it
    for handler in logging.getLogger().handlers:  # the lines are written, just not to the terminal
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(io.StringIO())
    celery = Celery(set_as_current=False)

    @celery.task(name="bench.noop")
    def noop() -> None:
        return None

    n = 20_000
    started = time.perf_counter()
    for i in range(n):
        signals._task_started(task_id=str(i), task=noop)
        signals._task_finished(task_id=str(i), task=noop, state="SUCCESS")
    task_us = (time.perf_counter() - started) / n * 1e6

    logger = logging.getLogger("bench.overhead")
    logger.propagate = False
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(ContextFilter())
    handler.setFormatter(json_formatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    started = time.perf_counter()
    for i in range(n):
        logger.info("pipeline.ingest %s in %.3f s", "success", i / 1e3)
    log_us = (time.perf_counter() - started) / n * 1e6

    started = time.perf_counter()
    for _ in range(n):
        metrics.HTTP_REQUESTS.labels("POST", "/api/v1/uploads", "201").inc()
        metrics.HTTP_LATENCY.labels("POST", "/api/v1/uploads").observe(0.012)
    http_us = (time.perf_counter() - started) / n * 1e6
    return {"task": task_us, "log": log_us, "http": http_us}


def per_upload(costs: dict[str, float], files: list[Path]) -> None:
    """The instrumentation one upload pays, against the CPU its ingest costs at the least."""
    pure = sum(pure_ingest_cpu(files))
    # 3 stages (task signals + a line each), the POST's and ~3 status polls' HTTP series, the web's "accepted"
    # line and Celery's 3 "received" lines.
    us = 3 * costs["task"] + 4 * costs["http"] + 4 * costs["log"]
    print("instrumentation per call: task signals (start + finish, with their log line) "
          f"{costs['task']:.1f} µs, HTTP series {costs['http']:.1f} µs, one JSON log line {costs['log']:.1f} µs")
    print(f"per upload ≈ {us:.0f} µs against ≥ {pure * 1e3:.0f} ms of ingest CPU (parse + summarize alone): "
          f"{us / 1e6 / pure * 100:.2f} %")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="rounds of each configuration, alternated")
    ap.add_argument("--uploads", type=int, default=150, help="uploads per round")
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--points", type=int, default=3600)
    ap.add_argument("--web-workers", type=int, default=2)
    ap.add_argument("--worker-concurrency", type=int, default=2)
    ap.add_argument("--micro-only", action="store_true", help="only the in-process cost per upload")
    args = ap.parse_args(argv)
    if args.micro_only:
        with tempfile.TemporaryDirectory() as tmp:
            per_upload(instrumentation_cost_us(), generate_files(Path(tmp), list(range(9000, 9015)), args.points))
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="strava-overhead-"))
    stack = BenchStack(workdir, db_name="strava_bench_overhead", log_level="WARNING")
    rates: dict[str, list[float]] = {name: [] for name in CONFIGS}
    try:
        n_files = 3 + args.rounds * len(CONFIGS) * args.uploads
        say(f"generating {n_files} distinct {args.points}-point GPX files")
        files = generate_files(workdir / "gpx", list(range(5000, 5000 + n_files)), args.points)
        warm, rest = files[:3], files[3:]
        stack.open()
        metrics_dir = workdir / "metrics"
        metrics_dir.mkdir()
        chunk = 0
        for round_no in range(args.rounds):
            order = list(CONFIGS) if round_no % 2 == 0 else list(reversed(CONFIGS))
            for name in order:
                batch = rest[chunk * args.uploads:(chunk + 1) * args.uploads]
                chunk += 1
                tag = f"{name}{round_no}"
                start(stack, name, metrics_dir, args.web_workers, args.worker_concurrency)
                try:
                    warm_up(stack, warm, tag)
                    tp = measure_throughput(stack, batch, tag, args.clients, 600.0, 300.0)
                finally:
                    stack.stop_worker()
                    stack.stop_web()
                rates[name].append(tp.rate)
                say(f"round {round_no + 1} {name:9}: {tp.ready} ready, {tp.failed} failed, {tp.rate:.1f} activities/s")
        costs = instrumentation_cost_us()
        per_upload_files = files[:15]
        print()
        per_upload(costs, per_upload_files)
    finally:
        stack.close()
        remove_tree(workdir)

    plain, observed = statistics.mean(rates["plain"]), statistics.mean(rates["observed"])
    print(f"\ningest throughput, {args.rounds} alternated rounds of {args.uploads} uploads "
          f"({args.points}-point files, {args.clients} clients, {args.web_workers} web workers, "
          f"{args.worker_concurrency} worker processes):")
    for name, values in rates.items():
        print(f"  {name:9} {statistics.mean(values):6.1f} activities/s  (rounds: "
              f"{', '.join(f'{v:.1f}' for v in values)})")
    overhead = (plain - observed) / plain * 100 if plain else float("nan")
    print(f"  overhead of JSON logs + multiprocess metrics: {overhead:+.1f} % (target ≤ 3 %)")
    print("(the rounds spread more than the difference: the machine's other load dominates; see the per-upload "
          "cost above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
