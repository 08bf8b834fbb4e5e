"""`make run`: the whole stack on one machine — API, worker, beat and Flower — on embedded defaults.

Starts a real PostgreSQL and Redis itself unless ``DATABASE_URL`` / ``REDIS_URL`` are set, keeps their data
(and uploaded files) under ``.data/`` so a second run finds everything again, applies the migrations, starts
the four processes, prints where everything is, and stops all it started on Ctrl-C or SIGTERM.

Push: without FCM credentials (``GOOGLE_APPLICATION_CREDENTIALS``) or an ``FCM_ENDPOINT``, it also runs the local
FCM stand-in (``devstack.fcm_standin``) in this process and points the web and worker processes at it, so pushes
go through the real firebase-admin client and can be watched (``GET /_sent`` on the stand-in, and one log line
per push here).

Auth: the stack opts in to Firebase emulator mode for itself (``FIREBASE_AUTH_EMULATOR_HOST``, which no config
defaults), so ``flask dev-token`` tokens are accepted; the config refuses that mode unless the API listens on
loopback only, so the stack binds the API and Flower to 127.0.0.1 (``WEB_BIND_HOST``, ``FLOWER_ADDRESS``).

While it runs, the settings other commands need (the servers' URLs, emulator mode) are in ``.data/stack.env``
(``write_stack_env``), which a development config reads for what its own environment does not set: ``flask
db-check``, ``alembic``, ``flask dev-token`` and the rebuild commands in another terminal reach these servers.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from config import WORKER_QUEUES, ConfigError, load_config
from devstack.embedded import EmbeddedPostgres, EmbeddedRedis, create_database, free_port
from devstack.fcm_standin import FcmServer, Request
from devstack.s3_standin import S3Standin, provision

BIN = Path(sys.executable).parent
# What another terminal's commands need to reach this stack (config.running_stack_env reads them back).
STACK_ENV_KEYS = (
    "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "PUBSUB_REDIS_URL",
    "STORAGE_BACKEND", "STORAGE_LOCAL_DIR", "S3_BUCKET", "S3_ENDPOINT_URL", "FCM_ENDPOINT",
    "FIREBASE_PROJECT_ID", "FIREBASE_AUTH_EMULATOR_HOST", "MEDIA_BUCKET", "MEDIA_S3_ENDPOINT_URL",
    "MEDIA_EVENTS_QUEUE_URL",
)


def _say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def processes(env: dict[str, str], data_dir: Path) -> dict[str, list[str]]:
    celery = [str(BIN / "celery"), "-A", "webapp.worker"]
    return {
        # 2 gevent processes on one port serve REST and the sockets (config/gunicorn.py reads PORT,
        # WEB_CONCURRENCY, WEB_WORKER_CLASS; see docs/realtime.md for the model and its sizing).
        "web": [str(BIN / "gunicorn"), "--config", "python:config.gunicorn", "webapp:create_app()"],
        # Cores + 1 pool processes (docs/operations.md): a pool process waits on PostgreSQL and the broker for part
        # of every upload, and a third one on two cores puts that idle time to work.
        "worker": [*celery, "worker", "--queues", ",".join(WORKER_QUEUES), "--concurrency",
                   env.get("WORKER_CONCURRENCY", "3"), "--loglevel", "INFO", "--hostname", "worker@%h"],
        # Media (photo renditions, ffmpeg transcodes) on its own worker and concurrency: a transcode never
        # holds up the activity pipeline.
        "worker-media": [*celery, "worker", "--queues", "media", "--concurrency",
                         env.get("MEDIA_WORKER_CONCURRENCY", "1"), "--loglevel", "INFO", "--hostname",
                         "media@%h", "--max-tasks-per-child", "50"],
        "beat": [*celery, "beat", "--loglevel", "INFO", "--schedule", str(data_dir / "celerybeat-schedule")],
        "flower": [*celery, "flower", "--port=" + env.get("FLOWER_PORT", "5555"),
                   "--address=" + env.get("FLOWER_ADDRESS", "127.0.0.1"),
                   "--basic-auth=" + env.get("FLOWER_BASIC_AUTH", "admin:admin"),
                   # Never switch the workers' task events on by itself (docs/operations.md, "Flower").
                   "--enable_events=False"],
        **({"media-events": [str(BIN / "flask"), "--app", "webapp", "media-events"]}
           if env.get("MEDIA_EVENTS_QUEUE_URL") else {}),
    }


def write_stack_env(path: Path, env: Mapping[str, str], *, pid: int) -> None:
    """Write ``KEY='value'`` lines (shell syntax) for the ``STACK_ENV_KEYS`` that ``env`` sets, and this stack's
    pid, by which readers tell a running stack from a stale file. Owner-only (the URLs may hold passwords), and
    replaced in one step so a reader never sees half of it."""
    lines = ["# Written by `make run` (devstack/stack.py) while it runs, removed when it stops. Development commands",
             "# read it for the variables they do not set; `set -a; . .data/stack.env; set +a` exports them.",
             f"STACK_PID={pid}"]
    lines += [f"{key}={shlex.quote(env[key])}" for key in STACK_ENV_KEYS if env.get(key)]
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    partial.replace(path)


def busy_ports(env: Mapping[str, str]) -> list[tuple[str, int]]:
    """The fixed ports the stack would listen on (the API, Flower, an explicitly chosen FCM stand-in port) that
    something else already holds on 127.0.0.1. The embedded PostgreSQL, Redis and a default FCM stand-in take the
    next free port by themselves."""
    wanted = [("PORT", env.get("PORT", "8000")), ("FLOWER_PORT", env.get("FLOWER_PORT", "5555"))]
    if env.get("EMBEDDED_FCM_PORT", "0") not in ("", "0"):
        wanted.append(("EMBEDDED_FCM_PORT", env["EMBEDDED_FCM_PORT"]))
    busy = []
    for name, value in wanted:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers themselves bind
            try:
                probe.bind((env.get("WEB_BIND_HOST", "127.0.0.1") if name == "PORT" else "127.0.0.1", int(value)))
            except OSError:
                busy.append((name, int(value)))
    return busy


def wants_fcm_standin(env: dict[str, str]) -> bool:
    """Development without a push target: no endpoint, no service account (production refuses FCM_ENDPOINT)."""
    return (env.get("APP_ENV") != "production" and not env.get("FCM_ENDPOINT")
            and not env.get("GOOGLE_APPLICATION_CREDENTIALS"))


def wants_s3_standin(env: dict[str, str]) -> bool:
    """Development without a media bucket of its own: run the S3-compatible server (production never does)."""
    return env.get("APP_ENV") != "production" and not env.get("MEDIA_S3_ENDPOINT_URL")


def start_s3_standin(env: dict[str, str], data_dir: Path) -> S3Standin:
    s3 = S3Standin(port=int(env.get("EMBEDDED_S3_PORT", "0")), log_path=data_dir / "s3-standin.log")
    s3.start()
    # The stand-in accepts any credentials; boto3 only needs some to sign with.
    env.setdefault("AWS_ACCESS_KEY_ID", "embedded")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "embedded")
    env.setdefault("MEDIA_BUCKET", "strava-plus-one-media")
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update({k: env[k] for k in saved})
    try:
        env["MEDIA_EVENTS_QUEUE_URL"] = provision(s3.url, env["MEDIA_BUCKET"], "media-events",
                                                  env.get("AWS_REGION", "us-east-1"))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    env["MEDIA_S3_ENDPOINT_URL"] = s3.url
    return s3


def _log_push(request: Request) -> None:
    note = (request.message.get("notification") or {})
    answer = "" if request.answer == "ok" else f" → answered {request.answer}"
    _say(f"push to {request.token[:24]}: {note.get('title', '')!r} {note.get('body', '')!r}{answer}")


def start_fcm_standin(env: dict[str, str], data_dir: Path) -> FcmServer:
    port = int(env.get("EMBEDDED_FCM_PORT", "0")) or free_port(9190)
    # The last 10,000 requests are plenty to inspect and bound the memory of a long development run.
    fcm = FcmServer(port=port, keep=10_000, on_request=_log_push)
    env["FCM_ENDPOINT"] = fcm.url
    # Scripts (bench/smoke_realtime.py) find the stand-in here when the port was not the default.
    (data_dir / "fcm-standin.url").write_text(fcm.url + "\n")
    return fcm


def main() -> int:
    data_dir = Path(os.environ.get("STACK_DATA_DIR", ".data")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("APP_ENV", "development")
    env.setdefault("STORAGE_LOCAL_DIR", str(data_dir / "objects"))
    env.setdefault("FLOWER_BASIC_AUTH", "admin:admin")
    # Emulator mode (unsigned `flask dev-token` tokens) is this stack's own opt-in, on loopback only; set
    # FIREBASE_AUTH_EMULATOR_HOST= (empty) to run the stack with real token checks instead.
    env.setdefault("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    env.setdefault("WEB_BIND_HOST", "127.0.0.1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Our numpy work is many small arrays: BLAS helper threads only oversubscribe the cores that the worker
    # processes already share.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    # /metrics of the web adds up every process's samples (web workers, Celery pool) from this directory,
    # emptied at each start so the counters of a previous run are not added in.
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(data_dir / "metrics"))
    try:  # refuse unsafe settings (emulator mode on a public bind) before starting anything
        load_config(environ=env)
    except ConfigError as exc:
        _say(str(exc))
        return 2

    busy = busy_ports(env)
    if busy:  # say which, before starting anything: never a stack that half-starts and stops without a word
        _say("; ".join(f"port {port} ({name}) is in use: set {name} to a free port" for name, port in busy))
        return 2

    pg = redis = None
    if not env.get("DATABASE_URL"):
        pg = EmbeddedPostgres(data_dir / "postgres")
        pg.start()
        create_database(pg.url("postgres"), "strava")
        env["DATABASE_URL"] = pg.url("strava")
        _say(f"embedded PostgreSQL: {env['DATABASE_URL']} (data in {pg.data_dir})")
    if not env.get("REDIS_URL"):
        redis = EmbeddedRedis(data_dir / "redis", port=int(env.get("EMBEDDED_REDIS_PORT", "0")))
        env["REDIS_URL"] = redis.start()
        _say(f"embedded Redis: {env['REDIS_URL']} (data in {redis.data_dir})")
    s3 = start_s3_standin(env, data_dir) if wants_s3_standin(env) else None
    if s3 is not None:
        _say(f"S3 + SQS stand-in: {s3.url} (bucket {env['MEDIA_BUCKET']}, events on {env['MEDIA_EVENTS_QUEUE_URL']})")
    fcm = start_fcm_standin(env, data_dir) if wants_fcm_standin(env) else None
    if fcm is not None:
        _say(f"FCM stand-in: {fcm.url} (FCM_ENDPOINT for the web and worker processes)")

    metrics_dir = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(_sig: int | None = None, _frame: FrameType | None = None) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        _say("stopping…")
        for proc in children.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 20
        for proc in children.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        (data_dir / "stack.env").unlink(missing_ok=True)
        if fcm is not None:
            fcm.stop()
            (data_dir / "fcm-standin.url").unlink(missing_ok=True)
        if s3 is not None:
            s3.stop()
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.stop()
        _say("stopped")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        _say("applying migrations")
        subprocess.run([str(BIN / "flask"), "--app", "webapp", "db-upgrade"], env=env, check=True)
        # The food catalogue, on first start only (the command is a no-op once it is loaded).
        subprocess.run([str(BIN / "flask"), "--app", "webapp", "foods-import"], env=env, check=True)
        for name, cmd in processes(env, data_dir).items():
            # Own process group: a terminal Ctrl-C reaches only us, and we stop the children in order.
            children[name] = subprocess.Popen(cmd, env=env, start_new_session=True)
        write_stack_env(data_dir / "stack.env", env, pid=os.getpid())
        port = env.get("PORT", "8000")
        _say(f"API        http://127.0.0.1:{port}/api/v1  (health /healthz, readiness /readyz)")
        _say(f"WebSocket  ws://127.0.0.1:{port}/api/v1/ws  (2 gevent web processes; docs/realtime.md)")
        _say(f"OpenAPI    http://127.0.0.1:{port}/api/v1/openapi.json  Swagger UI /api/v1/docs  ReDoc /api/v1/redoc")
        _say(f"Flower     http://127.0.0.1:{env.get('FLOWER_PORT', '5555')}  (basic auth from FLOWER_BASIC_AUTH)")
        _say(f"objects    {env['STORAGE_LOCAL_DIR']}")
        if env.get("MEDIA_S3_ENDPOINT_URL"):
            _say(f"media      {env['MEDIA_S3_ENDPOINT_URL']} bucket {env.get('MEDIA_BUCKET', '')} (S3 API; events → "
                 "media-events)")
        if fcm is not None:
            _say(f"push       {fcm.url}/_sent  (what the local FCM stand-in received; ?token=… filters)")
        elif env.get("FCM_ENDPOINT"):
            _say(f"push       FCM_ENDPOINT={env['FCM_ENDPOINT']}")
        else:
            _say("push       FCM through firebase-admin credentials")
        _say("a token:   .venv/bin/flask --app webapp dev-token you@example.com  (emulator mode, loopback only)")
        _say(f"commands   flask db-check, alembic, flask leaderboards-rebuild… in another terminal use "
             f"{data_dir / 'stack.env'}")
        _say("Ctrl-C stops everything")
        while not stopping:
            for name, proc in children.items():
                if proc.poll() is not None and not stopping:
                    _say(f"{name} exited with {proc.returncode}; shutting down")
                    stop()
                    return 1
            time.sleep(0.5)
        return 0
    except BaseException:
        stop()
        raise


if __name__ == "__main__":
    sys.exit(main())
