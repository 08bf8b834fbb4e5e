"""Operations smoke test against a running `make run`: PASS/FAIL per clause of "done when".

    make run 2>&1 | tee .data/run.log          # in one terminal (the log is what clause 3 reads)
    .venv/bin/python bench/smoke_ops.py        # in another

Clauses: /metrics serves the web, task, queue, push and beat series while the stack runs, and not to a request
that came through a proxy; /readyz reports the broker and the queue backlog; one upload can be followed by its
request id through the web and the worker log lines; every command of docs/operations.md's "Commands" block runs
(against this stack: they read .data/stack.env like any development command).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shlex
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smoke_support import Api, Failed, Report, run_steps, until  # noqa: E402

from tests.support.synthetic import synthetic_track, to_gpx  # noqa: E402

SERIES = [
    "strava_http_requests_total", "strava_http_request_duration_seconds_bucket", "strava_websocket_open",
    "strava_pubsub_lag_seconds_bucket", "strava_celery_tasks_total", "strava_celery_task_duration_seconds_bucket",
    "strava_pipeline_stage_duration_seconds_bucket", "strava_celery_queue_length", "strava_celery_unacked_messages",
    "strava_upload_oldest_queued_age_seconds", "strava_broker_up", "strava_push_deliveries_total",
    "strava_fcm_errors_total", "strava_beat_job_runs_total",
]


def stack_env(data_dir: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        for line in (data_dir / "stack.env").read_text().splitlines():
            key, sep, raw = line.partition("=")
            if sep and not key.startswith("#"):
                values[key.strip()] = (shlex.split(raw) or [""])[0]
    except OSError:
        pass
    return values


def documented_commands() -> list[str]:
    """The command lines of docs/operations.md's "Commands" block, optional arguments ([...]) left out."""
    text = (ROOT / "docs" / "operations.md").read_text()
    block = text.split("## Commands", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        command = re.sub(r"\s*#.*$", "", line).strip()
        command = re.sub(r"\s*\[[^\]]*\]", "", command)
        if command:
            commands.append(command)
    return commands


def upload_followed(api: Api, report: Report, token: str, log: Path) -> None:
    request_id = f"smoke-ops-{secrets.token_hex(4)}"
    gpx = to_gpx(synthetic_track(seed=int(time.time()) % 10_000, n_points=400, speed_mps=5.0))
    offset = log.stat().st_size if log.exists() else 0
    # Api.call sets only the Authorization header, and this one needs an X-Request-ID too.
    resp = requests.post(f"{api.base}/uploads", timeout=30,
                         files={"file": ("smoke-ops.gpx", gpx, "application/gpx+xml")},
                         headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id})
    if resp.status_code != 201:
        raise Failed(f"POST /uploads → {resp.status_code} {resp.text[:300]}")
    upload_id = int(resp.json()["id"])
    report.check("the upload's response echoes its request id", resp.headers.get("X-Request-ID") == request_id,
                 f"X-Request-ID {resp.headers.get('X-Request-ID')}")
    until(lambda: api.call("GET", f"/uploads/{upload_id}", token).json()["status"] in ("ready", "failed"), 120)
    if not log.exists():
        report.check("request id followed through the web and worker logs", False,
                     f"no log at {log} (run `make run 2>&1 | tee {log}`, or pass --log)")
        return

    def lines() -> list[str]:
        with log.open(errors="replace") as f:
            f.seek(offset)
            return [line for line in f if request_id in line]

    # The upload's task: ingest, then publish in the same task (its line is written when both are done).
    until(lambda: any("pipeline.ingest" in line for line in lines()), 30)
    found = lines()
    web = [line for line in found if f"upload {upload_id} accepted" in line]
    worker = [line for line in found if "pipeline.ingest" in line]
    report.check("request id followed through the web and worker logs",
                 bool(web) and bool(worker),
                 f"{request_id}: {len(found)} lines, web 'accepted' line {'found' if web else 'missing'}, "
                 f"worker task line {'found' if worker else 'missing'}")
    for line in (web[:1] + worker[:1]):
        print(f"      {line.strip()[:200]}")


def run(args: argparse.Namespace, report: Report) -> None:
    base = args.base_url.rstrip("/")
    api = Api(base, args.project, f"{int(time.time())}-{secrets.token_hex(3)}")
    token = api.token("ops")
    api.call("GET", "/me", token)

    upload_followed(api, report, token, Path(args.log))

    metrics = requests.get(f"{base}/metrics", timeout=10)
    report.require("/metrics answers on loopback", metrics.status_code == 200, f"HTTP {metrics.status_code}")
    text = metrics.text
    missing = [name for name in SERIES if not re.search(rf"^(# TYPE )?{name}\b", text, re.M)]
    report.check("/metrics serves every documented series", not missing,
                 f"missing {missing}" if missing else f"{len(SERIES)} series, {len(text.splitlines())} lines")
    ran = re.findall(r'^strava_celery_tasks_total\{state="succeeded",task="(pipeline\.\w+)"\} (\S+)', text, re.M) \
        or re.findall(r'^strava_celery_tasks_total\{task="(pipeline\.\w+)",state="succeeded"\} (\S+)', text, re.M)
    stages = set(re.findall(r'^strava_pipeline_stage_duration_seconds_count\{stage="(\w+)"\} [1-9]', text, re.M))
    report.check("/metrics counts the worker's pipeline task and times both stages (multiprocess)",
                 "pipeline.ingest" in {t for t, _ in ran} and stages >= {"ingest", "publish"},
                 f"{ran}, stages timed {sorted(stages)}")
    proxied = requests.get(f"{base}/metrics", headers={"X-Forwarded-For": "203.0.113.7"}, timeout=10)
    report.check("/metrics refuses a request that came through a proxy", proxied.status_code == 404,
                 f"HTTP {proxied.status_code}")

    ready = requests.get(f"{base}/readyz", timeout=10).json()
    checks = ready.get("checks", {})
    report.check("/readyz reports the broker and the queue backlog",
                 checks.get("broker") == "ok" and "waiting" in checks.get("queues", {}),
                 f"status {ready.get('status')}, broker {checks.get('broker')}, queues {checks.get('queues')}")

    env = {**os.environ, "STACK_DATA_DIR": str(Path(args.data_dir).resolve())}
    for command in documented_commands():
        argv = shlex.split(command)
        argv[0] = str(ROOT / ".venv" / "bin" / argv[0])
        out = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        tail = (out.stdout + out.stderr).strip().splitlines()[-1:] or [""]
        report.check(f"docs command: {command}", out.returncode == 0, f"exit {out.returncode}: {tail[0][:140]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data_dir = os.environ.get("STACK_DATA_DIR", str(ROOT / ".data"))
    port = stack_env(Path(data_dir)).get("PORT") or os.environ.get("PORT", "8000")
    parser.add_argument("--base-url", default=f"http://127.0.0.1:{port}", help="the API (make run: port 8000)")
    parser.add_argument("--data-dir", default=data_dir, help="make run's data directory (its stack.env)")
    parser.add_argument("--log", default=str(Path(data_dir) / "run.log"), help="make run's output, tee'd to a file")
    parser.add_argument("--project", default=os.environ.get("FIREBASE_PROJECT_ID", "demo-strava-plus-one"))
    args = parser.parse_args()
    try:
        requests.get(args.base_url.rstrip("/") + "/readyz", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        print(f"FAIL  stack reachable — {exc} (is `make run` going? API {args.base_url})")
        return 2
    report = Report()
    return run_steps(report, lambda: run(args, report))


if __name__ == "__main__":
    sys.exit(main())
