"""Settings for every process (web, worker, beat, CLI), in classes per environment.

Everything is overridable from the environment (12-factor). A config is an *instance* built from a mapping
(``os.environ`` by default), so tests and the embedded stack can build one without mutating globals.
``APP_ENV`` picks the class: development (default), testing or production.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from config.beat import BEAT_SCHEDULE

DEFAULT_SECRET_KEY = "dev-secret-key-change-me"
DEFAULT_PRIVACY_SECRET = "dev-privacy-secret-change-me"
DEFAULT_FLOWER_AUTH = "admin:admin"

# The longest task (a 100 MB GPX parse) plus the longest retry back-off stays well below this, so Redis
# never redelivers a message that a healthy worker is still processing.
VISIBILITY_TIMEOUT_S = 2 * 60 * 60


class ConfigError(RuntimeError):
    """The settings are unsafe or inconsistent; the process must not start."""


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


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
    default_emulator_host = ""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        get = env.get
        self.DEBUG = _bool(get("FLASK_DEBUG"), self.debug)
        self.TESTING = self.testing
        self.APP_ENV = self.name
        self.SECRET_KEY = get("SECRET_KEY", DEFAULT_SECRET_KEY)
        self.PORT = int(get("PORT", "8000"))
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
        self.FIREBASE_AUTH_EMULATOR_HOST = get("FIREBASE_AUTH_EMULATOR_HOST", self.default_emulator_host)
        # Where the verifier fetches Google's signing certificates; only tests point it elsewhere.
        self.FIREBASE_CERTS_URL = get("FIREBASE_CERTS_URL", "")
        self.GOOGLE_APPLICATION_CREDENTIALS = get("GOOGLE_APPLICATION_CREDENTIALS", "")

        self.STORAGE_BACKEND = get("STORAGE_BACKEND", "local")  # local | s3
        self.STORAGE_LOCAL_DIR = get("STORAGE_LOCAL_DIR", os.path.abspath(".data/objects"))
        self.S3_BUCKET = get("S3_BUCKET", "strava-plus-one-uploads")
        self.S3_ENDPOINT_URL = get("S3_ENDPOINT_URL", "") or None
        self.AWS_REGION = get("AWS_REGION", "us-east-1")

        self.MAX_CONTENT_LENGTH = int(get("MAX_UPLOAD_BYTES", str(128 * 1024 * 1024)))
        self.PRIVACY_SECRET = get("PRIVACY_SECRET", DEFAULT_PRIVACY_SECRET)
        self.FLOWER_BASIC_AUTH = get("FLOWER_BASIC_AUTH", DEFAULT_FLOWER_AUTH)
        self.UPLOAD_SWEEP_AFTER_S = int(get("UPLOAD_SWEEP_AFTER_S", "120"))
        # A stage may run up to the hard time limit; only after that is its worker presumed dead and the
        # upload re-sent. Lower it to recover faster from crashes where tasks are known to be short.
        self.UPLOAD_STALE_PROCESSING_S = int(get("UPLOAD_STALE_PROCESSING_S", str(15 * 60 + 60)))
        self.RATE_LIMIT_WRITES_PER_MIN = int(get("RATE_LIMIT_WRITES_PER_MIN", "600"))
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

        self.API_TITLE = "Strava+1 API"
        self.API_VERSION = "v1"
        self.OPENAPI_VERSION = "3.0.3"
        self.OPENAPI_URL_PREFIX = "/api/v1"
        self.OPENAPI_JSON_PATH = "openapi.json"
        self.OPENAPI_SWAGGER_UI_PATH = "docs"
        self.OPENAPI_SWAGGER_UI_URL = "https://cdn.jsdelivr.net/npm/swagger-ui-dist/"
        self.OPENAPI_REDOC_PATH = "redoc"
        self.OPENAPI_REDOC_URL = "https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"
        self.API_SPEC_OPTIONS = {
            "components": {"securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer", "bearerFormat": "Firebase ID token"}}},
            "security": [{"bearerAuth": []}],
            "info": {"description": "REST API of the Strava+1 mobile apps. Every route under /api/v1 except "
                                    "the documentation needs `Authorization: Bearer <Firebase ID token>`."},
        }
        self.CELERY = self._celery_settings(env)

    def _celery_settings(self, env: Mapping[str, str]) -> dict[str, Any]:
        return {
            "broker_url": self.CELERY_BROKER_URL,
            "result_backend": self.CELERY_RESULT_BACKEND,
            "task_serializer": "json",
            "result_serializer": "json",
            "accept_content": ["json"],
            "timezone": "UTC",
            "enable_utc": True,
            "task_default_queue": "default",
            "task_routes": {
                "pipeline.*": {"queue": "pipeline"},
                "media.*": {"queue": "media"},
                "notify.*": {"queue": "notify"},
                "push.*": {"queue": "notify"},
            },
            # Crash safety: a message is acknowledged only once its task finished, and a worker killed
            # mid-task puts it back on the queue instead of losing it.
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": int(env.get("CELERY_PREFETCH", "4")),
            "task_time_limit": 15 * 60,
            "task_soft_time_limit": 10 * 60,
            "result_expires": 24 * 60 * 60,
            "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_S},
            "result_backend_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_S},
            "broker_connection_retry_on_startup": True,
            "worker_send_task_events": True,
            "task_send_sent_event": True,
            "beat_schedule": BEAT_SCHEDULE,
            "task_always_eager": False,
        }

    def validate(self) -> None:
        """Refuse settings that would be unsafe in this environment (overridden by production)."""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.isupper()}


class DevelopmentConfig(Config):
    name = "development"
    debug = False
    # The embedded stack runs Firebase Auth in emulator mode: tokens from `flask dev-token` are accepted
    # unsigned, exactly as the firebase-tools Auth emulator issues them.
    default_emulator_host = "127.0.0.1:9099"


class TestingConfig(Config):
    name = "testing"
    testing = True
    default_database_url = "postgresql+psycopg2://postgres@127.0.0.1:5432/strava_test"
    default_redis_url = "redis://127.0.0.1:6379/1"


class ProductionConfig(Config):
    name = "production"

    def validate(self) -> None:
        problems = []
        if self.FIREBASE_AUTH_EMULATOR_HOST:
            problems.append("FIREBASE_AUTH_EMULATOR_HOST is set: emulator auth accepts unsigned tokens")
        if self.DEBUG:
            problems.append("debug mode is on")
        if self.SECRET_KEY == DEFAULT_SECRET_KEY:
            problems.append("SECRET_KEY is the development default")
        if self.PRIVACY_SECRET == DEFAULT_PRIVACY_SECRET:
            problems.append("PRIVACY_SECRET is the development default")
        if self.FLOWER_BASIC_AUTH == DEFAULT_FLOWER_AUTH:
            problems.append("FLOWER_BASIC_AUTH is the development default")
        if self.FIREBASE_CERTS_URL:
            problems.append("FIREBASE_CERTS_URL overrides Google's signing certificates")
        if self.FCM_ENDPOINT:
            problems.append("FCM_ENDPOINT sends pushes somewhere other than FCM")
        if self.FIREBASE_PROJECT_ID.startswith("demo-"):
            problems.append("FIREBASE_PROJECT_ID is a demo project")
        if problems:
            raise ConfigError("refusing to start in production: " + "; ".join(problems))


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load_config(name: str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    env = os.environ if environ is None else environ
    name = name or env.get("APP_ENV", "development")
    try:
        cls = CONFIGS[name]
    except KeyError:
        raise ConfigError(f"unknown APP_ENV {name!r}; use one of {', '.join(CONFIGS)}") from None
    config = cls(env)
    config.validate()
    return config
