from __future__ import annotations

from datetime import date
from zoneinfo import available_timezones

import marshmallow as ma
from marshmallow import validate

from models.user import NOTIFICATION_CATEGORIES, SEXES, UNITS, VISIBILITIES, Preferences, User
from webapp.columns import ColumnLength

_TIMEZONES = frozenset(available_timezones())


class KnownTimeZone(validate.Validator):
    """An IANA time zone name. Not a ``OneOf``: that would put ~600 names (some differing only in case, which
    generated clients turn into clashing enum members) into the OpenAPI document; it says "string" instead."""

    def __call__(self, value: str) -> str:
        if value not in _TIMEZONES:
            raise ma.ValidationError("Unknown IANA time zone (e.g. Europe/Paris).")
        return value


_HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="Use HH:MM, 24-hour clock.")


class NotificationSettingsSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    locals().update({c: ma.fields.Boolean() for c in NOTIFICATION_CATEGORIES})


class PreferencesSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    units = ma.fields.String(validate=validate.OneOf(UNITS))
    language = ma.fields.String(validate=[ColumnLength(Preferences.language),
                                                validate.Regexp(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")])
    timezone = ma.fields.String(validate=[ColumnLength(Preferences.timezone), KnownTimeZone()], metadata={
        "description": "An IANA time zone name", "example": "Europe/Paris"})
    default_visibility = ma.fields.String(validate=validate.OneOf(VISIBILITIES))
    notifications = ma.fields.Nested(NotificationSettingsSchema)
    hide_start_end_m = ma.fields.Integer(
        validate=validate.Range(0, 5000),
        metadata={"description": "Hide the first and last N metres of every activity from others (0 = off)"})
    hide_from_leaderboards = ma.fields.Boolean()
    # Regexp's "$" also matches before a final newline: "22:00\n" would pass it and overflow varchar(5).
    quiet_hours_start = ma.fields.String(allow_none=True, validate=[ColumnLength(Preferences.quiet_hours_start), _HHMM])
    quiet_hours_end = ma.fields.String(allow_none=True, validate=[ColumnLength(Preferences.quiet_hours_end), _HHMM])


class ProfileSchema(ma.Schema):
    """The athlete's own profile (GET/PATCH /me)."""

    class Meta:
        example = {
            "id": 12, "email": "ann@example.com", "display_name": "Ann", "bio": "", "avatar_url": None,
            "sex": "F", "birth_year": 1990, "weight_kg": 58.0, "is_private": False,
            "preferences": {
                "units": "metric", "language": "en", "timezone": "Europe/Paris", "default_visibility": "everyone",
                "notifications": dict.fromkeys(NOTIFICATION_CATEGORIES, True), "hide_start_end_m": 0,
                "hide_from_leaderboards": False,
                "quiet_hours_start": "22:00", "quiet_hours_end": "07:00"},
            "follower_count": 40, "following_count": 38, "created_at": "2026-01-05T10:00:00+00:00"}
        unknown = ma.RAISE

    id = ma.fields.Integer(dump_only=True)
    email = ma.fields.String(dump_only=True)
    display_name = ma.fields.String(validate=ColumnLength(User.display_name, 1))
    bio = ma.fields.String(validate=validate.Length(0, 2000))
    avatar_url = ma.fields.Url(allow_none=True, schemes={"https", "http"}, validate=ColumnLength(User.avatar_url))
    sex = ma.fields.String(allow_none=True, validate=validate.OneOf(SEXES))
    birth_year = ma.fields.Integer(allow_none=True, validate=validate.Range(1900, date.today().year))
    weight_kg = ma.fields.Float(allow_none=True, validate=validate.Range(20, 400))
    is_private = ma.fields.Boolean(metadata={"description": "Followers must be approved; profile details hidden"})
    preferences = ma.fields.Nested(PreferencesSchema)
    follower_count = ma.fields.Integer(dump_only=True)
    following_count = ma.fields.Integer(dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)


class PublicProfileSchema(ma.Schema):
    """Another athlete's profile; private accounts show only the summary to non-followers."""

    class Meta:
        example = {
            "id": 13, "display_name": "Bob", "avatar_url": None, "is_private": False, "bio": "Trail runner",
            "sex": None, "follower_count": 40, "following_count": 38, "follow_status": "accepted",
            "follows_you": True, "details_visible": True}

    id = ma.fields.Integer()
    display_name = ma.fields.String()
    avatar_url = ma.fields.String(allow_none=True)
    is_private = ma.fields.Boolean()
    bio = ma.fields.String(allow_none=True)
    sex = ma.fields.String(allow_none=True)
    follower_count = ma.fields.Integer()
    following_count = ma.fields.Integer()
    follow_status = ma.fields.String(
        allow_none=True, metadata={"description": "The viewer's follow of this athlete: accepted, pending or null"})
    follows_you = ma.fields.Boolean()
    details_visible = ma.fields.Boolean(metadata={"description": "False when a private account hides its details"})


class AthleteSearchArgsSchema(ma.Schema):
    q = ma.fields.String(required=True, validate=validate.Length(2, 80),
                         metadata={"description": "Part of a display name (case-insensitive), at least 2 characters"})
    cursor = ma.fields.String(load_default=None)
    limit = ma.fields.Integer(load_default=20, validate=validate.Range(1, 50))


class AthleteResultSchema(ma.Schema):
    id = ma.fields.Integer()
    display_name = ma.fields.String()
    avatar_url = ma.fields.String(allow_none=True)
    is_private = ma.fields.Boolean(metadata={"description": "Following needs the athlete's approval"})
    follow_status = ma.fields.String(
        allow_none=True, metadata={"description": "The viewer's follow of this athlete: accepted, pending or null"})


class AthletePageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(AthleteResultSchema))
    next_cursor = ma.fields.String(allow_none=True, metadata={"description": "Pass back as ?cursor= for more"})
