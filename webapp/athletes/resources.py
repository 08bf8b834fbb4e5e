"""An athlete's totals and records (stats) and the signed-in athlete's heart-rate zones."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from domain.athletes.stats import athlete_stats
from domain.athletes.zones import heart_rate_zones
from webapp.auth import current_user

blp = Blueprint("athletes", __name__, url_prefix="/api/v1", description="Athlete totals, records and zones")


class TotalsSchema(ma.Schema):
    count = ma.fields.Integer()
    distance_m = ma.fields.Float()
    moving_time_s = ma.fields.Float()
    elapsed_time_s = ma.fields.Float()
    elevation_gain_m = ma.fields.Float()


class StatsSchema(ma.Schema):
    recent = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(TotalsSchema), metadata={
        "description": "The last 4 weeks, per sport type (sports without activities are absent)"})
    ytd = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(TotalsSchema), metadata={
        "description": "Since 1 January in the athlete's time zone, per sport type"})
    all = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(TotalsSchema),
                         metadata={"description": "All time, per sport type"})
    biggest_ride_distance_m = ma.fields.Float()
    biggest_climb_elevation_gain_m = ma.fields.Float()


class ZoneSchema(ma.Schema):
    min = ma.fields.Integer()
    max = ma.fields.Integer(metadata={"description": "-1: no upper bound"})


class ZonesSchema(ma.Schema):
    max_heart_rate = ma.fields.Integer()
    source = ma.fields.String(metadata={"enum": ["recorded", "age", "default"]})
    zones = ma.fields.List(ma.fields.Nested(ZoneSchema))


@blp.route("/users/<int:user_id>/stats")
class UserStats(MethodView):
    @blp.response(200, StatsSchema)
    def get(self, user_id: int) -> dict[str, Any]:
        """The athlete's totals per sport (recent 4 weeks, year to date, all time) over the activities the viewer
        may see, each counted as the viewer is shown it"""
        return athlete_stats(current_user(), user_id)


@blp.route("/me/zones")
class MyZones(MethodView):
    @blp.response(200, ZonesSchema)
    def get(self) -> dict[str, Any]:
        """The signed-in athlete's heart-rate zones (from their highest recorded heart rate, else their age)"""
        return heart_rate_zones(current_user())
