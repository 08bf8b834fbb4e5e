"""Settings for every process (web, worker, beat, CLI), in classes per environment.

Everything is overridable from the environment (12-factor): each setting is the variable of its name (Celery's
as ``CELERY_<NAME>``), converted to the default's type, lists and dicts as JSON. A config is an *instance* built
from a mapping (``os.environ`` by default), so tests and the embedded stack can build one without mutating globals.
``APP_ENV`` picks the class: development (default), testing or production.

A development process configured from its own environment also reads the settings ``make run`` is using
(``.data/stack.env``, see ``running_stack_env``) for the variables it does not set itself, so commands in another
terminal reach the servers the stack started.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from config.beat import BEAT_SCHEDULE

DEFAULT_SECRET_KEY = "dev-secret-key-change-me"
DEFAULT_PRIVACY_SECRET = "dev-privacy-secret-change-me"
DEFAULT_FLOWER_AUTH = "admin:admin"

# The longest task (a 100 MB GPX parse) plus the longest retry back-off stays well below this, so Redis
# never redelivers a message that a healthy worker is still processing.
VISIBILITY_TIMEOUT_S = 2 * 60 * 60
#: The queues of the main worker, in the order it takes them (strictly: queue_order_strategy "priority"): a
#: stored activity's publish step, pushes, and the short jobs of `default` (board rebuilds, feed changes, the
#: sweepers beat sends) before the next parse; analytics last: under a backlog of uploads it waits, and its
#: refresh coalesces (one job takes every load stored meanwhile), so the wait costs nothing but freshness.
#: The Procfile, docker-compose.yml and `make run` start it with this list; media has a worker of its own.
WORKER_QUEUES = ("publish", "notify", "default", "pipeline", "analytics")
#: Every queue the app sends to (readiness and metrics watch their depths).
ALL_QUEUES = (*WORKER_QUEUES, "media")


class ConfigError(RuntimeError):
    """The settings are unsafe or inconsistent; the process must not start."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in _TRUE


def _typed(env: Mapping[str, str], name: str, default: Any) -> Any:
    """``name`` from ``env`` converted to the type of ``default`` (lists and dicts as JSON). Unset keeps the
    default, and so does an empty value except for strings, where empty is a value (it switches a feature off)."""
    raw = env.get(name)
    if raw is None or (raw == "" and not isinstance(default, str)):
        return default
    try:
        if isinstance(default, bool):
            word = raw.strip().lower()
            if word not in _TRUE | _FALSE:
                raise ValueError("expected 1/0, true/false, yes/no or on/off")
            return word in _TRUE
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, (dict, list)):
            value = json.loads(raw)
            if not isinstance(value, type(default)):
                raise ValueError(f"expected a JSON {'object' if isinstance(default, dict) else 'array'}")
            return value
    except ValueError as exc:  # json.JSONDecodeError is one too
        raise ConfigError(f"{name}={raw!r}: {exc}") from None
    return raw


def is_loopback(host: str) -> bool:
    """Only this machine can connect to ``host``. An empty host (like ``0.0.0.0`` and ``::``) is every interface;
    a host name other than localhost is refused, since what it resolves to can change under us."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _emulator_bind_problems(settings: Mapping[str, Any], hosts: Iterable[str]) -> list[str]:
    public = [host or "every interface" for host in hosts if not is_loopback(host)]
    if not settings["FIREBASE_AUTH_EMULATOR_HOST"] or not public or settings["WEB_PUBLISHED_ON_LOOPBACK"]:
        return []
    return [f"FIREBASE_AUTH_EMULATOR_HOST is set (emulator auth accepts unsigned tokens from anyone who can "
            f"connect) but the server listens on {', '.join(public)}, not on loopback only: listen on 127.0.0.1 "
            f"(WEB_BIND_HOST), or, in a container whose port is published on 127.0.0.1 only, say so with "
            f"WEB_PUBLISHED_ON_LOOPBACK=1"]


def check_listeners(settings: Mapping[str, Any], addresses: Iterable[object]) -> None:
    """Refuse emulator mode on what a server will really listen on, which its command line may have changed from
    WEB_BIND_HOST (``gunicorn -b``, ``flask run --host``). ``settings``: a config's (or a Flask app's) settings;
    ``addresses``: ``(host, port)`` pairs, Unix socket paths (this machine only) or inherited descriptors."""
    hosts = []
    for address in addresses:
        if isinstance(address, tuple):
            hosts.append(str(address[0]))
        elif not isinstance(address, str):  # a descriptor handed over: where it listens is unknown
            hosts.append(f"inherited socket {address!r}")
    problems = _emulator_bind_problems(settings, hosts)
    if problems:
        raise ConfigError(f"refusing to start in {settings['APP_ENV']}: " + "; ".join(problems))


def _alive(pid: int) -> bool:
    if os.name != "posix":  # elsewhere signal 0 is not a probe; keep the file rather than guess
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def running_stack_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings ``make run`` is using: ``devstack.stack`` writes them to ``<STACK_DATA_DIR>/stack.env``
    (``.data/stack.env``) while it runs, so that ``flask db-check``, ``alembic``, ``flask dev-token`` and the
    rebuild commands in another terminal talk to the servers it started. Empty when there is no such file or the
    stack that wrote it (``STACK_PID``) is gone: a stopped stack's URLs and its emulator mode do not outlive it."""
    env = os.environ if environ is None else environ
    path = Path(env.get("STACK_DATA_DIR") or ".data") / "stack.env"
    try:
        text = path.read_text()
    except OSError:
        return {}
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, raw = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        try:
            words = shlex.split(raw)  # the file is shell syntax too: `set -a; . .data/stack.env; set +a`
        except ValueError:
            continue
        values[key.strip()] = words[0] if words else ""
    pid = values.pop("STACK_PID", "")
    return values if pid.isdigit() and _alive(int(pid)) else {}


def normalize_database_url(url: str) -> str:
    """Accept the ``postgres://`` and ``postgresql://`` forms hosting platforms hand out; we run psycopg2."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


class Config:
    """Defaults shared by every environment."""

    name = "base"
    debug = False
    testing = False
    default_database_url = "postgresql+psycopg2://postgres@127.0.0.1:5432/strava"
    default_redis_url = "redis://127.0.0.1:6379/0"
    # Where gunicorn listens (config/gunicorn.py): every interface, as a container needs; development and
    # testing stay on this machine.
    default_bind_host = "0.0.0.0"
    default_transcoder = "ffmpeg"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        get = env.get
        self.DEBUG = _bool(get("FLASK_DEBUG"), self.debug)
        self.TESTING = self.testing
        self.APP_ENV = self.name
        self.SECRET_KEY = get("SECRET_KEY", DEFAULT_SECRET_KEY)
        self.PORT = int(get("PORT", "8000"))
        self.WEB_BIND_HOST = get("WEB_BIND_HOST", self.default_bind_host)
        # The web server listens on every interface of a container whose port the host publishes on 127.0.0.1
        # only (docker-compose's development setup): loopback-only in effect, which the app cannot see itself.
        self.WEB_PUBLISHED_ON_LOOPBACK = _typed(env, "WEB_PUBLISHED_ON_LOOPBACK", False)
        self.LOG_LEVEL = get("LOG_LEVEL", "INFO")
        self.LOG_JSON = _bool(get("LOG_JSON"), self.name == "production")

        self.DATABASE_URL = normalize_database_url(get("DATABASE_URL", self.default_database_url))
        self.DATABASE_POOL_SIZE = int(get("DATABASE_POOL_SIZE", "10"))
        self.REDIS_URL = get("REDIS_URL", self.default_redis_url)
        self.CELERY_BROKER_URL = get("CELERY_BROKER_URL", self.REDIS_URL)
        self.CELERY_RESULT_BACKEND = get("CELERY_RESULT_BACKEND", self.REDIS_URL)
        self.PUBSUB_REDIS_URL = get("PUBSUB_REDIS_URL", self.REDIS_URL)
        # Channel namespace (the Redis database index is appended): deployments sharing a server stay apart.
        self.PUBSUB_PREFIX = get("PUBSUB_PREFIX", "sp1")

        self.FIREBASE_PROJECT_ID = get("FIREBASE_PROJECT_ID", "demo-strava-plus-one")
        # Emulator mode accepts unsigned tokens, so no environment turns it on by default: `make run` opts in for
        # itself, and it is refused unless the server listens on loopback only (and always in production).
        self.FIREBASE_AUTH_EMULATOR_HOST = get("FIREBASE_AUTH_EMULATOR_HOST", "")
        # Where the verifier fetches Google's signing certificates; only tests point it elsewhere.
        self.FIREBASE_CERTS_URL = get("FIREBASE_CERTS_URL", "")
        self.GOOGLE_APPLICATION_CREDENTIALS = get("GOOGLE_APPLICATION_CREDENTIALS", "")

        self.STORAGE_BACKEND = get("STORAGE_BACKEND", "local")  # local | s3
        self.STORAGE_LOCAL_DIR = get("STORAGE_LOCAL_DIR", os.path.abspath(".data/objects"))
        self.S3_BUCKET = get("S3_BUCKET", "strava-plus-one-uploads")
        self.S3_ENDPOINT_URL = get("S3_ENDPOINT_URL", "") or None
        self.AWS_REGION = get("AWS_REGION", "us-east-1")

        self.MAX_CONTENT_LENGTH = int(get("MAX_UPLOAD_BYTES", str(128 * 1024 * 1024)))
        # Every route but the upload (which keeps MAX_CONTENT_LENGTH) accepts at most this (webapp/inputs.py):
        # a JSON body is parsed in one go on the event loop that also serves the process's sockets.
        self.MAX_JSON_BYTES = int(get("MAX_JSON_BYTES", str(1024 * 1024)))
        # POST /health/sync: a batch of up to 10,000 samples (about 2 MB of JSON).
        self.HEALTH_SYNC_MAX_BYTES = int(get("HEALTH_SYNC_MAX_BYTES", str(4 * 1024 * 1024)))
        self.PRIVACY_SECRET = get("PRIVACY_SECRET", DEFAULT_PRIVACY_SECRET)
        self.FLOWER_BASIC_AUTH = get("FLOWER_BASIC_AUTH", DEFAULT_FLOWER_AUTH)
        # /metrics (webapp.metrics): a bearer token, or else only these peers (never through a proxy).
        self.METRICS_TOKEN = get("METRICS_TOKEN", "")
        self.METRICS_ALLOW_FROM = get("METRICS_ALLOW_FROM", "127.0.0.0/8,::1/128")
        # A worker's own exporter (0: none; on one machine the web's /metrics already reads the workers' files).
        self.WORKER_METRICS_PORT = int(get("WORKER_METRICS_PORT", "0"))
        self.WORKER_METRICS_HOST = get("WORKER_METRICS_HOST", "127.0.0.1")
        # /readyz reports a queue holding more than this as a backlog ("degraded"; still ready: the web keeps
        # accepting work, which waits in the queue).
        self.READY_QUEUE_BACKLOG_MAX = int(get("READY_QUEUE_BACKLOG_MAX", "10000"))
        self.UPLOAD_SWEEP_AFTER_S = int(get("UPLOAD_SWEEP_AFTER_S", "120"))
        # A stage may run up to the hard time limit; only after that is its worker presumed dead and the
        # upload re-sent. Lower it to recover faster from crashes where tasks are known to be short.
        self.UPLOAD_STALE_PROCESSING_S = int(get("UPLOAD_STALE_PROCESSING_S", str(15 * 60 + 60)))
        self.RATE_LIMIT_WRITES_PER_MIN = int(get("RATE_LIMIT_WRITES_PER_MIN", "600"))
        # Uploads: the most activities one file (zip members, Apple Health workouts) may hold, and how many uploads
        # an account may create in 24 hours (each costs a parse and segment matching on the workers). A stage
        # run past UPLOAD_MAX_ATTEMPTS (retries and redeliveries after a worker died included) fails the upload.
        self.UPLOAD_MAX_ITEMS_PER_FILE = int(get("UPLOAD_MAX_ITEMS_PER_FILE", "1000"))
        self.UPLOAD_DAILY_QUOTA = int(get("UPLOAD_DAILY_QUOTA", "5000"))
        self.UPLOAD_MAX_ATTEMPTS = int(get("UPLOAD_MAX_ATTEMPTS", "8"))
        # Chat: message size, a per-sender send budget (a fixed window in Redis), typing-indicator spacing,
        # group size and the page of a catch-up (chat.sync).
        self.CHAT_MAX_BODY_CHARS = int(get("CHAT_MAX_BODY_CHARS", "4000"))
        self.CHAT_RATE_LIMIT_MESSAGES = int(get("CHAT_RATE_LIMIT_MESSAGES", "30"))
        self.CHAT_RATE_LIMIT_WINDOW_S = int(get("CHAT_RATE_LIMIT_WINDOW_S", "10"))
        self.CHAT_TYPING_INTERVAL_S = int(get("CHAT_TYPING_INTERVAL_S", "2"))
        self.CHAT_MAX_GROUP_MEMBERS = int(get("CHAT_MAX_GROUP_MEMBERS", "256"))
        self.CHAT_SYNC_PAGE = int(get("CHAT_SYNC_PAGE", "200"))
        # Live tracking: a session with no point for this long is ended by the sweeper; hard caps per session.
        self.LIVE_ABANDON_AFTER_S = int(get("LIVE_ABANDON_AFTER_S", str(15 * 60)))
        self.LIVE_MAX_DURATION_S = int(get("LIVE_MAX_DURATION_S", str(24 * 3600)))
        self.LIVE_MAX_POINTS = int(get("LIVE_MAX_POINTS", "100000"))
        self.LIVE_BATCHES_PER_MIN = int(get("LIVE_BATCHES_PER_MIN", "120"))
        # Push (FCM). FCM_ENDPOINT points firebase-admin at a local FCM stand-in (tests, development); with it,
        # or a service account (GOOGLE_APPLICATION_CREDENTIALS), pushes are sent, otherwise (development) they are
        # logged and marked skipped. A burst within the collapse window becomes one delivery run.
        self.FCM_ENDPOINT = get("FCM_ENDPOINT", "")
        self.PUSH_COLLAPSE_WINDOW_S = float(get("PUSH_COLLAPSE_WINDOW_S", "2"))
        self.PUSH_RETRY_BASE_S = float(get("PUSH_RETRY_BASE_S", "5"))
        self.PUSH_SWEEP_AFTER_S = int(get("PUSH_SWEEP_AFTER_S", "60"))
        # A notification the push stage first sees later than this (an outage) is too stale to push.
        self.PUSH_MAX_AGE_S = int(get("PUSH_MAX_AGE_S", str(6 * 3600)))
        # The ecosystem (docs/strava-api.md): Strava's upload size limit and request budgets on /api/v3 (per
        # athlete, 15-minute and daily windows, reported in X-RateLimit-Limit / X-RateLimit-Usage), the tile URL
        # template share pages draw maps on ("" = the route alone, no map service: development) and how long an
        # account export's download link lives.
        self.STRAVA_MAX_UPLOAD_BYTES = int(get("STRAVA_MAX_UPLOAD_BYTES", str(25 * 1024 * 1024)))
        self.STRAVA_RATE_LIMIT_15MIN = int(get("STRAVA_RATE_LIMIT_15MIN", "600"))
        self.STRAVA_RATE_LIMIT_DAILY = int(get("STRAVA_RATE_LIMIT_DAILY", "30000"))
        self.SHARE_TILE_URL = get("SHARE_TILE_URL", "")
        self.ACCOUNT_EXPORT_LINK_TTL_S = int(get("ACCOUNT_EXPORT_LINK_TTL_S", "3600"))

        self._media_settings(env)

        # The OpenAPI document and its viewers (flask-smorest). OPENAPI_URL_PREFIX moves the documents only; the
        # resources' routes are under /api/v1 whatever it says.
        self.API_TITLE = get("API_TITLE", "Strava+1 API")
        self.API_VERSION = get("API_VERSION", "v1")
        self.OPENAPI_VERSION = get("OPENAPI_VERSION", "3.0.3")
        self.OPENAPI_URL_PREFIX = get("OPENAPI_URL_PREFIX", "/api/v1")
        self.OPENAPI_JSON_PATH = get("OPENAPI_JSON_PATH", "openapi.json")
        self.OPENAPI_SWAGGER_UI_PATH = get("OPENAPI_SWAGGER_UI_PATH", "docs")
        # Response compression (flask-compress) and the web origins allowed to call the API and open the socket.
        self.COMPRESS_ALGORITHM = _typed(env, "COMPRESS_ALGORITHM", ["br", "gzip"])
        self.COMPRESS_MIN_SIZE = int(get("COMPRESS_MIN_SIZE", "500"))
        self.COMPRESS_STREAMS = _typed(env, "COMPRESS_STREAMS", False)
        self.CORS_ORIGINS = _typed(env, "CORS_ORIGINS", [])
        # The viewers' assets are served by the app itself, pinned (webapp/docs.py): the pages work offline.
        self.OPENAPI_SWAGGER_UI_URL = get("OPENAPI_SWAGGER_UI_URL", "/api/v1/docs-assets/swagger-ui/")
        self.OPENAPI_REDOC_PATH = get("OPENAPI_REDOC_PATH", "redoc")
        self.OPENAPI_REDOC_URL = get("OPENAPI_REDOC_URL", "/api/v1/docs-assets/redoc/redoc.standalone.js")
        self.API_SPEC_OPTIONS = _typed(env, "API_SPEC_OPTIONS", {
            "components": {"securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer", "bearerFormat": "Firebase ID token"}}},
            "security": [{"bearerAuth": []}],
            "info": {"description": "REST API of the Strava+1 mobile apps. Every route under /api/v1 except "
                                    "the documentation needs `Authorization: Bearer <Firebase ID token>`."},
        })
        self.CELERY = self._celery_settings(env)

    def _media_settings(self, env: Mapping[str, str]) -> None:
        """Photos and videos (docs/media.md): always through the S3 API, whatever STORAGE_BACKEND says."""
        get = env.get
        self.MEDIA_BUCKET = get("MEDIA_BUCKET", "strava-plus-one-media")
        # Empty: AWS itself. `make run` points it at its embedded S3-compatible server.
        self.MEDIA_S3_ENDPOINT_URL = get("MEDIA_S3_ENDPOINT_URL", "") or None
        # The S3 event notifications (and MediaConvert's job-state events) arrive on this SQS queue.
        self.MEDIA_EVENTS_QUEUE_URL = get("MEDIA_EVENTS_QUEUE_URL", "")
        self.MEDIA_SQS_ENDPOINT_URL = get("MEDIA_SQS_ENDPOINT_URL", "") or self.MEDIA_S3_ENDPOINT_URL
        # mediaconvert (AWS Elemental) or anything else: ffmpeg, the embedded default, on the `media` queue.
        self.MEDIA_TRANSCODER = get("MEDIA_TRANSCODER", self.default_transcoder)
        # Production runs ffmpeg on its own workers only when someone chose it knowingly (a CPU- and
        # attack-surface decision): MEDIA_TRANSCODER=ffmpeg alone is refused there.
        self.MEDIA_ALLOW_FFMPEG_IN_PRODUCTION = _typed(env, "MEDIA_ALLOW_FFMPEG_IN_PRODUCTION", False)
        self.MEDIACONVERT_ENDPOINT_URL = get("MEDIACONVERT_ENDPOINT_URL", "") or None
        self.MEDIACONVERT_ROLE_ARN = get("MEDIACONVERT_ROLE_ARN", "")
        self.MEDIACONVERT_QUEUE_ARN = get("MEDIACONVERT_QUEUE_ARN", "")
        self.MEDIA_PHOTO_MAX_BYTES = _typed(env, "MEDIA_PHOTO_MAX_BYTES", 25 * 1024 * 1024)
        self.MEDIA_VIDEO_MAX_BYTES = _typed(env, "MEDIA_VIDEO_MAX_BYTES", 1024 * 1024 * 1024)
        self.MEDIA_VIDEO_MAX_S = _typed(env, "MEDIA_VIDEO_MAX_S", 600.0)
        # Decoded pixels a photo may have (a decompression bomb declares far more than it holds).
        self.MEDIA_MAX_PIXELS = _typed(env, "MEDIA_MAX_PIXELS", 100_000_000)
        # Videos above this go up in parts (S3 multipart), each MEDIA_PART_BYTES (S3's minimum is 5 MiB).
        self.MEDIA_MULTIPART_THRESHOLD = _typed(env, "MEDIA_MULTIPART_THRESHOLD", 64 * 1024 * 1024)
        self.MEDIA_PART_BYTES = _typed(env, "MEDIA_PART_BYTES", 16 * 1024 * 1024)
        # Upload requests (pre-signed POST / part URLs) and read URLs expire after these many seconds.
        self.MEDIA_UPLOAD_URL_TTL_S = _typed(env, "MEDIA_UPLOAD_URL_TTL_S", 900)
        self.MEDIA_READ_URL_TTL_S = _typed(env, "MEDIA_READ_URL_TTL_S", 600)
        # Per athlete: items created in 24 hours, and bytes of originals kept.
        self.MEDIA_DAILY_QUOTA = _typed(env, "MEDIA_DAILY_QUOTA", 200)
        self.MEDIA_STORAGE_QUOTA_BYTES = _typed(env, "MEDIA_STORAGE_QUOTA_BYTES", 20 * 1024 * 1024 * 1024)
        # An item still `pending` this long after its upload URL expired is removed (and its multipart aborted).
        self.MEDIA_PENDING_SWEEP_S = _typed(env, "MEDIA_PENDING_SWEEP_S", 3600)
        # An item `uploaded` this long without being claimed lost its message: the sweeper sends it again.
        self.MEDIA_RESEND_AFTER_S = _typed(env, "MEDIA_RESEND_AFTER_S", 900)

    def _celery_settings(self, env: Mapping[str, str]) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "broker_url": self.CELERY_BROKER_URL,
            "result_backend": self.CELERY_RESULT_BACKEND,
            "task_serializer": "json",
            "result_serializer": "json",
            "accept_content": ["json"],
            "timezone": "UTC",
            "enable_utc": True,
            "task_default_queue": "default",
            "task_routes": {
                # Before the pattern below: an exact name wins over a glob.
                "pipeline.publish": {"queue": "publish"},
                "pipeline.*": {"queue": "pipeline"},
                "analytics.*": {"queue": "analytics"},
                "media.*": {"queue": "media"},
                "notify.*": {"queue": "notify"},
                "push.*": {"queue": "notify"},
            },
            # Crash safety: a message is acknowledged only once its task finished, and a worker killed
            # mid-task puts it back on the queue instead of losing it.
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": int(env.get("CELERY_PREFETCH", "4")),
            # Backstop for memory a task leaves behind (fragmented heap after a huge file): a pool process above
            # this resident size (KiB) is replaced once its current task is done.
            "worker_max_memory_per_child": int(env.get("CELERY_MAX_MEMORY_PER_CHILD_KB", str(768 * 1024))),
            "task_time_limit": 15 * 60,
            "task_soft_time_limit": 10 * 60,
            "result_expires": 24 * 60 * 60,
            # A worker takes its queues in the order of its --queues list, strictly (Kombu's default rotates
            # them): `publish` before `pipeline`, so a stored activity's segments and feed steps never wait
            # behind a backlog of parses; WORKER_QUEUES (above) is the order.
            "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_S,
                                         "queue_order_strategy": "priority"},
            "result_backend_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_S},
            "broker_connection_retry_on_startup": True,
            # Per-task events (sent, received, started, succeeded) cost ~20 ms of CPU per upload across the
            # worker, Redis and Flower: a third of what one activity may cost at 40/s on two cores. Off by
            # default; queues (Flower's broker page), workers (heartbeats) and the task series of /metrics do
            # not need them. CELERY_WORKER_SEND_TASK_EVENTS=true (or `celery -A webapp.worker control
            # enable_events` for a while) turns Flower's task pages on. See docs/operations.md.
            "worker_send_task_events": False,
            "task_send_sent_event": False,
            "beat_schedule": BEAT_SCHEDULE,
            "task_always_eager": False,
        }
        # Each is also a variable of its own, Celery's name in capitals (CELERY_TASK_TIME_LIMIT=1200), which
        # wins over the ones above (CELERY_PREFETCH…); routes, transport options and the schedule are JSON.
        return {key: _typed(env, f"CELERY_{key.upper()}", value) for key, value in settings.items()}

    def unsafe_settings(self) -> list[str]:
        """What makes these settings unsafe in this environment (production adds its own refusals)."""
        return _emulator_bind_problems(self.as_dict(), [self.WEB_BIND_HOST])

    def check_listeners(self, addresses: Iterable[object]) -> None:
        check_listeners(self.as_dict(), addresses)

    def validate(self) -> None:
        """Refuse settings that would be unsafe in this environment."""
        problems = self.unsafe_settings()
        if problems:
            raise ConfigError(f"refusing to start in {self.name}: " + "; ".join(problems))

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.isupper()}


class DevelopmentConfig(Config):
    name = "development"
    debug = False
    default_bind_host = "127.0.0.1"


class TestingConfig(Config):
    name = "testing"
    testing = True
    default_database_url = "postgresql+psycopg2://postgres@127.0.0.1:5432/strava_test"
    default_redis_url = "redis://127.0.0.1:6379/1"
    default_bind_host = "127.0.0.1"


class ProductionConfig(Config):
    name = "production"
    default_transcoder = "mediaconvert"

    def unsafe_settings(self) -> list[str]:
        problems = super().unsafe_settings()
        if self.FIREBASE_AUTH_EMULATOR_HOST:
            problems.append("FIREBASE_AUTH_EMULATOR_HOST is set: emulator auth accepts unsigned tokens")
        if self.DEBUG:
            problems.append("debug mode is on")
        if self.SECRET_KEY in ("", DEFAULT_SECRET_KEY):
            problems.append("SECRET_KEY is unset or the development default")
        if self.PRIVACY_SECRET in ("", DEFAULT_PRIVACY_SECRET):
            problems.append("PRIVACY_SECRET is unset or the development default")
        if self.FLOWER_BASIC_AUTH in ("", DEFAULT_FLOWER_AUTH):
            problems.append("FLOWER_BASIC_AUTH is unset or the development default")
        if self.FIREBASE_CERTS_URL:
            problems.append("FIREBASE_CERTS_URL overrides Google's signing certificates")
        if self.FCM_ENDPOINT:
            problems.append("FCM_ENDPOINT sends pushes somewhere other than FCM")
        if self.FIREBASE_PROJECT_ID.startswith("demo-"):
            problems.append("FIREBASE_PROJECT_ID is a demo project")
        # Anything but mediaconvert means ffmpeg on our own workers (domain.media.processing).
        if self.MEDIA_TRANSCODER != "mediaconvert" and not self.MEDIA_ALLOW_FFMPEG_IN_PRODUCTION:
            problems.append(f"MEDIA_TRANSCODER={self.MEDIA_TRANSCODER} transcodes with ffmpeg on the workers: set "
                            "MEDIA_ALLOW_FFMPEG_IN_PRODUCTION=1 to choose that knowingly, or use mediaconvert")
        return problems


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load_config(name: str | None = None, environ: Mapping[str, str] | None = None, *,
                validate: bool = True) -> Config:
    """The config of ``name`` (default: ``APP_ENV``) from ``environ`` (default: this process's environment),
    checked unless ``validate`` is false (gunicorn's settings file checks it once it knows its listeners)."""
    env = os.environ if environ is None else environ
    from_process = name is None and environ is None
    name = name or env.get("APP_ENV", "development")
    try:
        cls = CONFIGS[name]
    except KeyError:
        raise ConfigError(f"unknown APP_ENV {name!r}; use one of {', '.join(CONFIGS)}") from None
    if from_process and name == "development":
        # Only a process configured from its own environment: a config built from an explicit name or mapping
        # (tests, benchmarks, the stack itself) is exactly what its caller says.
        env = {**running_stack_env(), **os.environ}
    config = cls(env)
    if validate:
        config.validate()
    return config
