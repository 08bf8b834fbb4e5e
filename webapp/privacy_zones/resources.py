from __future__ import annotations

import secrets
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import validate
from sqlalchemy import func, select

from domain.algorithms.privacy import Zone, persistent_zone
from domain.privacy import public_view, settings
from models import PrivacyZone, User, db
from webapp.auth import current_user

blp = Blueprint("privacy_zones", __name__, url_prefix="/api/v1",
                description="Privacy zones: places no one else ever sees on your maps")

MAX_ZONES = 10


class PrivacyZoneSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    id = ma.fields.Integer(dump_only=True)
    lat = ma.fields.Float(required=True, validate=validate.Range(-90, 90))
    lng = ma.fields.Float(required=True, validate=validate.Range(-180, 180))
    radius_m = ma.fields.Float(required=True, validate=validate.Range(200, 1600))
    created_at = ma.fields.DateTime(dump_only=True)


class PrivacyZoneCreateSchema(PrivacyZoneSchema):
    """The body that creates a zone (a schema of its own: a request schema is never a response schema too)."""


def privacy_changed(user: User) -> None:
    """Every activity's public view must be recomputed: reads recompute stale ones at once (see
    domain.privacy.public_view.current_public), a background task catches up the rest."""
    settings.bump_privacy_version(user)
    db.session.commit()
    public_view.enqueue_refresh(user.id)


@blp.route("/me/privacy-zones")
class PrivacyZones(MethodView):
    @blp.response(200, PrivacyZoneSchema(many=True))
    def get(self) -> list[PrivacyZone]:
        """Your privacy zones"""
        return list(db.session.scalars(
            select(PrivacyZone).where(PrivacyZone.user_id == current_user().id).order_by(PrivacyZone.id)))

    @blp.arguments(PrivacyZoneCreateSchema)
    @blp.response(201, PrivacyZoneSchema)
    def post(self, data: dict[str, Any]) -> PrivacyZone:
        """Add a privacy zone (radius 200–1600 m); applies to all your activities, past and future"""
        user = current_user()
        count = db.session.scalar(select(func.count()).where(PrivacyZone.user_id == user.id)) or 0
        if count >= MAX_ZONES:
            abort(422, message=f"At most {MAX_ZONES} privacy zones.")
        # Displaced once, with fresh randomness, so that no number of activities reveals the centre.
        hidden = persistent_zone(Zone(data["lat"], data["lng"], data["radius_m"]), secrets.randbits(128))
        zone = PrivacyZone(user_id=user.id, lat=data["lat"], lng=data["lng"], radius_m=data["radius_m"],
                           hidden_lat=hidden.lat, hidden_lng=hidden.lng, hidden_radius_m=hidden.radius_m)
        db.session.add(zone)
        privacy_changed(user)
        return zone


@blp.route("/me/privacy-zones/<int:zone_id>")
class PrivacyZoneById(MethodView):
    @blp.response(204)
    def delete(self, zone_id: int) -> None:
        """Remove a privacy zone"""
        user = current_user()
        zone = db.session.get(PrivacyZone, zone_id)
        if zone is None or zone.user_id != user.id:
            abort(404, message="Privacy zone not found.")
        db.session.delete(zone)
        privacy_changed(user)
