"""`make run`: the whole stack on one machine — API, worker, beat and Flower — on embedded defaults.

Starts a real PostgreSQL and Redis itself unless ``DATABASE_URL`` / ``REDIS_URL`` are set, keeps their data
(and uploaded files) under ``.data/`` so a second run finds everything again, applies the migrations, starts
the four processes, prints where everything is, and stops all it started on Ctrl-C or SIGTERM.

Push: without FCM credentials (``GOOGLE_APPLICATION_CREDENTIALS``) or an ``FCM_ENDPOINT``, it also runs the local
FCM stand-in (``devstack.fcm_standin``) in this process and points the web and worker processes at it, so pushes
go through the real firebase-admin client and can be watched (``GET /_sent`` on the stand-in, and one log line
per push here).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from devstack.embedded import EmbeddedPostgres, EmbeddedRedis, create_database, free_port
from devstack.fcm_standin import FcmServer, Request

BIN = Path(sys.executable).parent


def _say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def processes(env: dict[str, str], data_dir: Path) -> dict[str, list[str]]:
    celery = [str(BIN / "celery"), "-A", "webapp.worker"]
    return {
        # 2 gevent processes on one port serve REST and the sockets (config/gunicorn.py reads PORT,
        # WEB_CONCURRENCY, WEB_WORKER_CLASS; see docs/realtime.md for the model and its sizing).
        "web": [str(BIN / "gunicorn"), "--config", "python:config.gunicorn", "webapp:create_app()"],
        "worker": [*celery, "worker", "--queues", "pipeline,media,notify,default", "--concurrency",
                   env.get("WORKER_CONCURRENCY", "2"), "--loglevel", "INFO", "--hostname", "worker@%h"],
        "beat": [*celery, "beat", "--loglevel", "INFO", "--schedule", str(data_dir / "celerybeat-schedule")],
        "flower": [*celery, "flower", "--port=" + env.get("FLOWER_PORT", "5555"),
                   "--basic-auth=" + env.get("FLOWER_BASIC_AUTH", "admin:admin")],
    }


def wants_fcm_standin(env: dict[str, str]) -> bool:
    """Development without a push target: no endpoint, no service account (production refuses FCM_ENDPOINT)."""
    return (env.get("APP_ENV") != "production" and not env.get("FCM_ENDPOINT")
            and not env.get("GOOGLE_APPLICATION_CREDENTIALS"))


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
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Our numpy work is many small arrays: BLAS helper threads only oversubscribe the cores that the worker
    # processes already share.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")

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
    fcm = start_fcm_standin(env, data_dir) if wants_fcm_standin(env) else None
    if fcm is not None:
        _say(f"FCM stand-in: {fcm.url} (FCM_ENDPOINT for the web and worker processes)")

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
        if fcm is not None:
            fcm.stop()
            (data_dir / "fcm-standin.url").unlink(missing_ok=True)
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
        for name, cmd in processes(env, data_dir).items():
            # Own process group: a terminal Ctrl-C reaches only us, and we stop the children in order.
            children[name] = subprocess.Popen(cmd, env=env, start_new_session=True)
        port = env.get("PORT", "8000")
        _say(f"API        http://127.0.0.1:{port}/api/v1  (health /healthz, readiness /readyz)")
        _say(f"WebSocket  ws://127.0.0.1:{port}/api/v1/ws  (2 gevent web processes; docs/realtime.md)")
        _say(f"OpenAPI    http://127.0.0.1:{port}/api/v1/openapi.json  Swagger UI /api/v1/docs  ReDoc /api/v1/redoc")
        _say(f"Flower     http://127.0.0.1:{env.get('FLOWER_PORT', '5555')}  (basic auth from FLOWER_BASIC_AUTH)")
        _say(f"objects    {env['STORAGE_LOCAL_DIR']}")
        if fcm is not None:
            _say(f"push       {fcm.url}/_sent  (what the local FCM stand-in received; ?token=… filters)")
        elif env.get("FCM_ENDPOINT"):
            _say(f"push       FCM_ENDPOINT={env['FCM_ENDPOINT']}")
        else:
            _say("push       FCM through firebase-admin credentials")
        _say("a token:   .venv/bin/flask --app webapp dev-token you@example.com")
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
