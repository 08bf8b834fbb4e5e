from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from werkzeug.sansio.response import Response

from domain.insights import cards, loads, planned, recovery, service, summaries, trends
from webapp.auth import current_user
from webapp.insights.schemas import (
    FitnessArgsSchema,
    FitnessPageSchema,
    InsightArgsSchema,
    InsightPageSchema,
    InsightSchema,
    PageArgsSchema,
    PlannedArgsSchema,
    PlannedWorkoutCreateSchema,
    PlannedWorkoutPageSchema,
    PlannedWorkoutPatchSchema,
    PlannedWorkoutSchema,
    RecoveryArgsSchema,
    RecoverySchema,
    TrainingSettingsPatchSchema,
    TrainingSettingsSchema,
    TrendArgsSchema,
    TrendsSchema,
    WeeklySummaryPageSchema,
)

blp = Blueprint("insights", __name__, url_prefix="/api/v1",
                description="Training load, fitness and form, insight cards, weekly summaries, planned workouts "
                            "(the athlete's own; nobody else's)")


@blp.route("/me/fitness")
class Fitness(MethodView):
    @blp.arguments(FitnessArgsSchema, location="query")
    @blp.response(200, FitnessPageSchema)
    def get(self, args: dict[str, Any]) -> Response:
        """Your daily training load, fitness, fatigue and form (one item per local day)"""
        # Built as plain JSON-ready values by the domain and sent as they are: five years are 1,826 items, and
        # dumping them through the schema again would cost several times the rest of the request.
        return current_app.json.response(service.fitness(current_user(), args.get("from_"), args.get("to")))


@blp.route("/me/training-settings")
class TrainingSettings(MethodView):
    @blp.response(200, TrainingSettingsSchema)
    def get(self) -> dict[str, Any]:
        """Your heart-rate and power settings and weekly-summary slot (unset values use the stated defaults)"""
        return service.settings(current_user())

    @blp.arguments(TrainingSettingsPatchSchema)
    @blp.response(200, TrainingSettingsSchema)
    def patch(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Set max, resting and threshold heart rate, FTP, or when your weekly summary arrives"""
        return service.update_settings(current_user(), changes)


@blp.route("/me/insights")
class Insights(MethodView):
    @blp.arguments(InsightArgsSchema, location="query")
    @blp.response(200, InsightPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Your insight cards, newest first, with the numbers behind each"""
        return cards.listing(current_user(), args["cursor"], args["limit"], args["include_dismissed"])


@blp.route("/me/insights/<int:insight_id>/dismiss")
class DismissInsight(MethodView):
    @blp.response(200, InsightSchema)
    def post(self, insight_id: int) -> dict[str, Any]:
        """Dismiss a card (it stays out of the list)"""
        return cards.serialize(cards.dismiss(current_user(), insight_id))


@blp.route("/me/summaries/weekly")
class WeeklySummaries(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, WeeklySummaryPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Your weekly summaries, newest week first"""
        return summaries.listing(current_user(), args["cursor"], args["limit"])


@blp.route("/me/planned-workouts")
class PlannedWorkouts(MethodView):
    @blp.arguments(PlannedArgsSchema, location="query")
    @blp.response(200, PlannedWorkoutPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Your planned workouts, soonest first (optionally between `from` and `to`)"""
        return planned.listing(current_user(), {**args, "from": args.get("from_")})

    @blp.arguments(PlannedWorkoutCreateSchema)
    @blp.response(201, PlannedWorkoutSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Plan a workout, with a reminder `remind_before_min` minutes before it"""
        return planned.serialize(planned.create(current_user(), data))


@blp.route("/me/planned-workouts/<int:plan_id>")
class PlannedWorkoutById(MethodView):
    @blp.response(200, PlannedWorkoutSchema)
    def get(self, plan_id: int) -> dict[str, Any]:
        """One of your planned workouts"""
        return planned.serialize(planned.get_own(current_user(), plan_id))

    @blp.arguments(PlannedWorkoutPatchSchema)
    @blp.response(200, PlannedWorkoutSchema)
    def patch(self, changes: dict[str, Any], plan_id: int) -> dict[str, Any]:
        """Move or change a planned workout (a moved reminder fires again at its new time)"""
        return planned.serialize(planned.update(current_user(), plan_id, changes))

    @blp.response(204)
    def delete(self, plan_id: int) -> None:
        """Delete a planned workout"""
        planned.delete(current_user(), plan_id)


@blp.route("/me/trends")
class Trends(MethodView):
    @blp.arguments(TrendArgsSchema, location="query")
    @blp.response(200, TrendsSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Your last 12 weeks or months: volume per sport, speed, heart-rate efficiency, best-effort progression"""
        return trends.trends(current_user(), args["period"])


@blp.route("/me/recovery")
class Recovery(MethodView):
    @blp.arguments(RecoveryArgsSchema, location="query")
    @blp.response(200, RecoverySchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """How recovered you are on a day: a status and its reasons (sleep, resting HR, HRV, load) against your
        own baselines"""
        user = current_user()
        return recovery.recovery(user, args["date"] or loads.today_for(user))
