"""The Flask application factory: `flask --app webapp …`, `gunicorn 'webapp:create_app()'`."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from config import load_config
from models import db
from models.media_storage import media_bucket
from models.pubsub import pubsub
from models.redis_store import redis_store
from models.storage import storage
from webapp.extensions import sock


# Each register_* step imports what it registers inside the step (the app-factory pattern): importing this
# package loads only the factory, and a step's blueprints, handlers and the Celery app load when an app is made.
# These are the only imports inside functions in the product packages; none of them hides an import cycle
# (.importlinter checks the graph with them included).
def create_app(config_name: str | None = None, **overrides: Any) -> Flask:
    config = load_config(config_name)
    app = Flask(__name__)
    app.config.from_mapping(config.as_dict())
    app.config.update(overrides)
    if isinstance(app.json, DefaultJSONProvider):  # the provider Flask makes unless told otherwise
        app.json.sort_keys = False

    register_logging(app)
    register_metrics(app)
    register_services(app)
    register_api(app)
    register_auth(app)
    register_input_guard(app)
    register_http_caching(app)
    register_realtime(app)
    register_celery(app)
    register_cli(app)
    return app


def register_logging(app: Flask) -> None:
    from webapp.logs import configure_logging, register_request_ids

    configure_logging(app.config["LOG_LEVEL"], json_logs=app.config["LOG_JSON"])
    register_request_ids(app)


def register_metrics(app: Flask) -> None:
    from webapp.metrics import register_metrics as _register

    _register(app)


def register_services(app: Flask) -> None:
    db.configure(app.config["DATABASE_URL"], pool_size=app.config["DATABASE_POOL_SIZE"])
    redis_store.configure(app.config["REDIS_URL"])
    pubsub.configure(app.config["PUBSUB_REDIS_URL"], prefix=app.config["PUBSUB_PREFIX"])
    storage.configure(
        app.config["STORAGE_BACKEND"], local_dir=app.config["STORAGE_LOCAL_DIR"], bucket=app.config["S3_BUCKET"],
        endpoint_url=app.config["S3_ENDPOINT_URL"], region=app.config["AWS_REGION"],
    )
    media_bucket.configure(app.config["MEDIA_BUCKET"], endpoint_url=app.config["MEDIA_S3_ENDPOINT_URL"],
                           region=app.config["AWS_REGION"], sqs_endpoint_url=app.config["MEDIA_SQS_ENDPOINT_URL"])

    @app.teardown_appcontext
    def _remove_session(_exc: BaseException | None) -> None:
        db.session.remove()


def register_api(app: Flask) -> None:
    from webapp import docs, health
    from webapp.activities.resources import blp as activities_blp
    from webapp.athletes.resources import blp as athletes_blp
    from webapp.body_metrics.resources import blp as body_metrics_blp
    from webapp.chat.resources import blp as chat_blp
    from webapp.devices.resources import blp as devices_blp
    from webapp.errors import ErrorSchema, register_error_handlers
    from webapp.exports.resources import blp as exports_blp
    from webapp.exports.resources import downloads as downloads_blp
    from webapp.feed.resources import blp as feed_blp
    from webapp.follows.resources import blp as follows_blp
    from webapp.foods.resources import blp as foods_blp
    from webapp.gear.resources import blp as gear_blp
    from webapp.groups.resources import blp as groups_blp
    from webapp.health_sync.resources import blp as health_sync_blp
    from webapp.insights.resources import blp as insights_blp
    from webapp.interactions.resources import blp as interactions_blp
    from webapp.live.resources import blp as live_blp
    from webapp.meals.resources import blp as meals_blp
    from webapp.media.resources import blp as media_blp
    from webapp.notifications.resources import blp as notifications_blp
    from webapp.openapi import build_api
    from webapp.posts.resources import blp as posts_blp
    from webapp.privacy_zones.resources import blp as privacy_zones_blp
    from webapp.profiles.resources import blp as profiles_blp
    from webapp.segments.resources import blp as segments_blp
    from webapp.share.api import blp as shares_blp
    from webapp.share.pages import blp as share_pages_blp
    from webapp.sleep.resources import blp as sleep_blp
    from webapp.strava_v3.resources import blp as strava_v3_blp
    from webapp.uploads.resources import blp as uploads_blp
    from webapp.water.resources import blp as water_blp

    api = build_api(app, error_schema=ErrorSchema, schema_name_resolver=schema_name)
    sock.init_app(app)
    for blp in (profiles_blp, follows_blp, uploads_blp, activities_blp, privacy_zones_blp, segments_blp,
                groups_blp, posts_blp, interactions_blp, notifications_blp, feed_blp, live_blp, chat_blp,
                devices_blp, insights_blp, exports_blp, shares_blp, athletes_blp, gear_blp, media_blp):
        api.register_blueprint(blp)
    for blp in (foods_blp, meals_blp, water_blp, sleep_blp, body_metrics_blp, health_sync_blp):  # health
        api.register_blueprint(blp)
    app.register_blueprint(health.blp)
    app.register_blueprint(docs.blp)
    # Outside the OpenAPI document: Strava's API (its own shapes), the public share pages and signed downloads.
    for plain in (strava_v3_blp, share_pages_blp, downloads_blp):
        app.register_blueprint(plain)
    register_error_handlers(app)


def schema_name(schema: type | object) -> str:
    """OpenAPI component names: ``ProfileSchema`` → ``Profile``; a partial (PATCH) variant → ``ProfilePatch``."""
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__.removesuffix("Schema")
    return name + "Patch" if getattr(schema, "partial", False) else name


def register_auth(app: Flask) -> None:
    from webapp.auth import register_auth as _register
    from webapp.ratelimit import register_rate_limit

    _register(app)
    register_rate_limit(app)  # after auth: the budget is per athlete


def register_input_guard(app: Flask) -> None:
    # After auth and the rate limit: a stranger's or an over-budget client's body is never read.
    from webapp.inputs import register_input_guard as _register

    _register(app)


def register_http_caching(app: Flask) -> None:
    from webapp.httpcache import register_http_caching as _register

    _register(app)


def register_realtime(app: Flask) -> None:
    # Importing a feature's frames module registers its socket frame handlers (``@handler``).
    from webapp.chat import frames as chat_frames  # noqa: F401
    from webapp.live import frames as live_frames  # noqa: F401
    from webapp.realtime import register_realtime as _register
    from webapp.realtime.asyncapi import register_asyncapi

    _register(app)
    register_asyncapi(app, schema_name)


def register_celery(app: Flask) -> None:
    from tasks import registry  # noqa: F401  (loads every task module, so the domain's jobs have senders)
    from tasks.app import celery_init_app

    celery_init_app(app)


def register_cli(app: Flask) -> None:
    from webapp.cli import register_cli as _register

    _register(app)
