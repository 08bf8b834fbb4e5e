"""The /api/v3 routes: each validates Strava's parameters, calls the same domain operation as its /api/v1
counterpart, and translates the result (``webapp.strava_v3.translate``).

Authentication is the same Firebase ID token as a bearer token. Every request counts against the athlete's
15-minute and daily budgets (``X-RateLimit-Limit`` / ``X-RateLimit-Usage``: "15-minute,daily"; 429 past either).
Errors use Strava's shape: ``{"message": …, "errors": [{"resource", "field", "code"}]}``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from flask import Blueprint, Response, current_app, g, jsonify, request
from marshmallow import validate
from werkzeug.exceptions import HTTPException

from domain.activities import service as activities
from domain.athletes.stats import athlete_stats
from domain.athletes.zones import heart_rate_zones
from domain.errors import Refusal, refuse
from domain.segments import service as segments
from domain.social.profiles import own_profile
from domain.uploads import service as uploads
from domain.visibility import get_visible
from models import Activity, Upload, db
from models.ratelimit import window_counts
from webapp.activities.schemas import STREAM_KEYS
from webapp.auth import authenticate, bearer_token, current_user
from webapp.columns import ColumnLength
from webapp.inputs import body_limit
from webapp.strava_v3 import translate

blp = Blueprint("strava_v3", __name__, url_prefix="/api/v3")

WINDOWS_S = (15 * 60, 24 * 3600)
DATA_TYPES = ("gpx", "gpx.gz", "tcx", "tcx.gz", "fit", "fit.gz")
TITLES = {400: "Bad Request", 401: "Authorization Error", 403: "Forbidden", 404: "Resource Not Found",
          405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large", 422: "Unprocessable Entity",
          429: "Rate Limit Exceeded", 503: "Service Unavailable"}


# -- errors, auth and the budget -------------------------------------------------------------------------------

def _error(status: int, message: str, *, resource: str | None = None, field: str = "", code: str = "invalid",
           headers: dict[str, str] | None = None) -> Response:
    body = {"message": TITLES.get(status, "Error"),
            "errors": [{"resource": resource or g.get("v3_resource", "Application"), "field": field, "code": code,
                        "detail": message}]}
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _field_of(errors: Any) -> str:
    """The first field named in marshmallow-shaped errors ({"query": {"per_page": [...]}})."""
    while isinstance(errors, dict) and errors:
        key, errors = next(iter(errors.items()))
        if not isinstance(errors, dict):
            return str(key)
    return ""


@blp.errorhandler(Refusal)
def _refused(exc: Refusal) -> Response:
    db.session.rollback()
    code = {404: "not found", 429: "exceeded", 401: "invalid"}.get(exc.status, "invalid")
    return _error(exc.status, exc.message, field=_field_of(exc.errors), code=code, headers=exc.headers)


@blp.errorhandler(HTTPException)
def _http(exc: HTTPException) -> Response:
    data = getattr(exc, "data", None) or {}
    message = data.get("message") or exc.description or exc.name
    errors = data.get("errors") or data.get("messages")
    status = exc.code or 500
    field = "access_token" if status == 401 else _field_of(errors)
    code = {404: "not found", 429: "exceeded"}.get(status, "invalid")
    return _error(status, str(message), resource="Athlete" if status == 401 else None, field=field, code=code,
                  headers=dict(data.get("headers") or {}))


@blp.before_request
def _authenticate_and_count() -> Response | None:
    g.user = authenticate(bearer_token())
    limits = (int(current_app.config["STRAVA_RATE_LIMIT_15MIN"]), int(current_app.config["STRAVA_RATE_LIMIT_DAILY"]))
    g.v3_limits = limits
    usage = window_counts(f"strava-v3:{g.user.id}", WINDOWS_S)
    g.v3_usage = usage
    if usage is not None and any(used > limit for used, limit in zip(usage, limits, strict=True)):
        return _error(429, "Rate limit exceeded: see X-RateLimit-Limit and X-RateLimit-Usage.",
                      field="rate limit", code="exceeded")
    return None


@blp.after_request
def _rate_headers(response: Response) -> Response:
    limits = g.get("v3_limits")
    if limits is not None:
        response.headers["X-RateLimit-Limit"] = f"{limits[0]},{limits[1]}"
        usage = g.get("v3_usage")
        if usage is not None:
            response.headers["X-RateLimit-Usage"] = f"{usage[0]},{usage[1]}"
    return response


def _args(schema: ma.Schema, source: Any) -> dict[str, Any]:
    try:
        return schema.load(dict(source.items()))
    except ma.ValidationError as exc:
        field = _field_of(exc.messages)
        raise Refusal(400, f"Invalid {field or 'parameters'}: {exc.messages}", errors={"query": exc.messages}) from None


def _parameters() -> dict[str, Any]:
    """A write's parameters wherever the client put them: Strava takes them in the query string (stravalib sends
    them there), a form or a JSON body alike."""
    merged: dict[str, Any] = dict(request.args.items())
    merged.update(request.form.items())
    body = request.get_json(silent=True) if request.is_json else None
    if isinstance(body, dict):
        merged.update(body)
    return merged


def resource(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Name the Strava resource a view's errors are about ("Activity", "Upload", …)."""
    def mark(view: Callable[..., Any]) -> Callable[..., Any]:
        def named(*args: Any, **kwargs: Any) -> Any:
            g.v3_resource = name
            return view(*args, **kwargs)
        named.__name__ = view.__name__
        named.__doc__ = view.__doc__
        for attr in ("body_limit_config",):
            if hasattr(view, attr):
                setattr(named, attr, getattr(view, attr))
        return named
    return mark


# -- athlete ---------------------------------------------------------------------------------------------------

@blp.get("/athlete")
@resource("Athlete")
def get_athlete() -> Any:
    return jsonify(translate.athlete(own_profile(current_user())))


@blp.get("/athlete/zones")
@resource("Athlete")
def get_zones() -> Any:
    return jsonify(translate.zones(heart_rate_zones(current_user())))


@blp.get("/athletes/<int:athlete_id>/stats")
@resource("Athlete")
def get_stats(athlete_id: int) -> Any:
    return jsonify(translate.stats(athlete_stats(current_user(), athlete_id)))


class ActivityListArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    before = ma.fields.Integer(load_default=None, validate=validate.Range(0, 2**40))
    after = ma.fields.Integer(load_default=None, validate=validate.Range(0, 2**40))
    page = ma.fields.Integer(load_default=1, validate=validate.Range(1, 1_000_000))
    per_page = ma.fields.Integer(load_default=30, validate=validate.Range(1, 200))


def _epoch(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


@blp.get("/athlete/activities")
@resource("Activity")
def list_activities() -> Any:
    args = _args(ActivityListArgs(), request.args)
    user = current_user()
    items = activities.numbered_page(user, user.id, after=_epoch(args["after"]), before=_epoch(args["before"]),
                                     page=args["page"], per_page=args["per_page"])
    return jsonify([translate.activity(a, detailed=False) for a in items])


# -- activities ------------------------------------------------------------------------------------------------

@blp.get("/activities/<int:activity_id>")
@resource("Activity")
def get_activity(activity_id: int) -> Any:
    user = current_user()
    activity, owner = get_visible(user, activity_id)
    data = activities.serialize(user, activity, owner)
    return jsonify(translate.activity(data, detailed=True, efforts=segments.activity_efforts(user, activity_id)))


class ActivityUpdate(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # Strava's gear_id, hide_from_home…: accepted, nothing of ours to change

    name = ma.fields.String(validate=ColumnLength(Activity.name, 1))
    description = ma.fields.String(validate=validate.Length(0, 10000))
    sport_type = ma.fields.String(validate=validate.Length(1, 40))
    type = ma.fields.String(validate=validate.Length(1, 40))
    trainer = ma.fields.Boolean()
    commute = ma.fields.Boolean()
    visibility = ma.fields.String(validate=validate.OneOf(list(translate.VISIBILITY_FROM_STRAVA)))
    private = ma.fields.Boolean()


@blp.put("/activities/<int:activity_id>")
@resource("Activity")
def update_activity(activity_id: int) -> Any:
    args = _args(ActivityUpdate(), _parameters())
    changes: dict[str, Any] = {k: args[k] for k in ("name", "description", "trainer", "commute") if k in args}
    sport = args.get("sport_type") or args.get("type")
    if sport:
        changes["sport_type"] = translate.sport_from_strava(sport)
    if "visibility" in args:
        changes["visibility"] = translate.VISIBILITY_FROM_STRAVA[args["visibility"]]
    elif "private" in args:
        changes["visibility"] = "only_me" if args["private"] else "everyone"
    user = current_user()
    activity = activities.update(user, activity_id, changes)
    return jsonify(translate.activity(activities.serialize(user, activity, user), detailed=True,
                                      efforts=segments.activity_efforts(user, activity_id)))


class StreamArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    keys = ma.fields.String(load_default="")
    key_by_type = ma.fields.Boolean(load_default=False)
    resolution = ma.fields.String(load_default="high", validate=validate.OneOf(("low", "medium", "high")))
    series_type = ma.fields.String(load_default="distance", validate=validate.OneOf(("time", "distance")))


@blp.get("/activities/<int:activity_id>/streams")
@resource("Activity")
def get_streams(activity_id: int) -> Any:
    args = _args(StreamArgs(), request.args)
    wanted = [k.strip() for k in args["keys"].split(",") if k.strip()] or ["time", "distance"]
    # Strava ignores stream types it does not know; so do we. It always sends the series it was indexed by.
    keys = list(dict.fromkeys(k for k in [*wanted, args["series_type"]] if k in STREAM_KEYS))
    data = activities.streams(current_user(), activity_id, keys, args["resolution"])
    for stream in data.values():
        stream["series_type"] = args["series_type"]
    return jsonify(translate.streams(data, args["key_by_type"]))


# -- segments --------------------------------------------------------------------------------------------------

@blp.get("/segments/<int:segment_id>")
@resource("Segment")
def get_segment(segment_id: int) -> Any:
    return jsonify(translate.segment(segments.serialize(current_user(), segments.get(segment_id))))


@blp.get("/segment_efforts/<int:effort_id>")
@resource("SegmentEffort")
def get_segment_effort(effort_id: int) -> Any:
    return jsonify(translate.segment_effort(segments.effort(current_user(), effort_id)))


# -- uploads ---------------------------------------------------------------------------------------------------

class UploadForm(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    data_type = ma.fields.String(required=True, validate=validate.OneOf(DATA_TYPES))
    name = ma.fields.String(validate=ColumnLength(Upload.name, 1))
    description = ma.fields.String(validate=validate.Length(0, 10000))
    external_id = ma.fields.String(validate=ColumnLength(Upload.external_id, 1))
    trainer = ma.fields.Boolean()
    commute = ma.fields.Boolean()
    sport_type = ma.fields.String(validate=validate.Length(1, 40))
    activity_type = ma.fields.String(validate=validate.Length(1, 40))


@blp.post("/uploads")
@resource("Upload")
@body_limit("STRAVA_MAX_UPLOAD_BYTES")
def create_upload() -> Any:
    form = _args(UploadForm(), _parameters())
    storage_file = request.files.get("file")
    if storage_file is None:
        refuse(400, "A file is required (multipart field 'file').", errors={"files": {"file": ["Required."]}})
    data = storage_file.read()
    limit = int(current_app.config["STRAVA_MAX_UPLOAD_BYTES"])
    if len(data) > limit:
        refuse(413, f"The file is larger than {limit // (1024 * 1024)} MB.", errors={"files": {"file": ["Too large."]}})
    sport = form.get("sport_type") or form.get("activity_type")
    ours = {k: form.get(k) for k in ("name", "description", "external_id", "trainer", "commute")}
    ours["sport_type"] = translate.sport_from_strava(sport) if sport else None
    upload = uploads.accept_file(current_user(), data, storage_file.filename, ours, data_type=form["data_type"])
    response = jsonify(translate.upload(upload))
    response.status_code = 201
    return response


@blp.get("/uploads/<int:upload_id>")
@resource("Upload")
def get_upload(upload_id: int) -> Any:
    return jsonify(translate.upload(uploads.get_own_upload(current_user(), upload_id)))


@blp.route("/<path:unknown>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def unknown_route(unknown: str) -> Any:
    """Any other /api/v3 path: Strava's 404 (not the /api/v1 error shape)."""
    refuse(404, "No such route in this API (see docs/strava-api.md for what is offered).")
