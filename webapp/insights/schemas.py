from __future__ import annotations

from datetime import UTC

import marshmallow as ma
from marshmallow import validate

from models.activity import SPORT_TYPES
from models.insights import TrainingSettings
from webapp.columns import ColumnLength
from webapp.openapi import omittable


class StrictSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class FitnessArgsSchema(StrictSchema):
    from_ = ma.fields.Date(data_key="from", load_default=None, metadata={
        "description": "First day (the athlete's local date); default: 89 days before `to`"})
    to = ma.fields.Date(load_default=None, metadata={"description": "Last day; default: today (local)"})


class FitnessDaySchema(ma.Schema):
    date = ma.fields.Date(required=True)
    # ``load`` would shadow Schema.load: the field is named apart and keeps its wire name.
    load_ = ma.fields.Float(data_key="load", attribute="load", required=True,
                            metadata={"description": "The day's training load (TSS scale)"})
    fitness = ma.fields.Float(required=True, metadata={"description": "42-day exponentially weighted load (CTL)"})
    fatigue = ma.fields.Float(required=True, metadata={"description": "7-day exponentially weighted load (ATL)"})
    form = ma.fields.Float(required=True, metadata={"description": "fitness − fatigue (TSB)"})
    ramp = ma.fields.Float(allow_none=True, metadata={"description": "fitness − fitness 7 days before"})
    acwr = ma.fields.Float(allow_none=True, metadata={
        "description": "Acute:chronic ratio (fatigue / fitness): a trend only, not an injury predictor"})
    monotony = ma.fields.Float(allow_none=True, metadata={"description": "Mean / sd of the last 7 daily loads"})
    strain = ma.fields.Float(allow_none=True, metadata={"description": "7-day load × monotony"})


class FitnessPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(FitnessDaySchema), required=True)
    today = ma.fields.Date(required=True, metadata={"description": "Today in the athlete's time zone"})


class TrainingSettingsPatchSchema(StrictSchema):
    max_hr = ma.fields.Integer(allow_none=True, validate=validate.Range(100, 240))
    resting_hr = ma.fields.Integer(allow_none=True, validate=validate.Range(25, 120))
    threshold_hr = ma.fields.Integer(allow_none=True, validate=validate.Range(80, 230))
    ftp_w = ma.fields.Integer(allow_none=True, validate=validate.Range(30, 700))
    summary_weekday = ma.fields.Integer(validate=validate.Range(0, 6), metadata={"description": "0 = Monday"})
    summary_time = ma.fields.String(validate=[ColumnLength(TrainingSettings.summary_time, 5),
                                              validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$")],
                                    metadata={"description": "HH:MM, local time"})


class TrainingSettingsSchema(ma.Schema):
    max_hr = ma.fields.Integer(allow_none=True, required=True)
    resting_hr = ma.fields.Integer(allow_none=True, required=True)
    threshold_hr = ma.fields.Integer(allow_none=True, required=True)
    ftp_w = ma.fields.Integer(allow_none=True, required=True)
    summary_weekday = ma.fields.Integer(required=True)
    summary_time = ma.fields.String(required=True)
    next_summary_at = ma.fields.DateTime(allow_none=True, required=True)
    defaults = ma.fields.Dict(required=True, metadata={"description": "What is used where a value is not set"})


class PageArgsSchema(StrictSchema):
    cursor = ma.fields.String(load_default=None, metadata={"description": "next_cursor of the previous page"})
    limit = ma.fields.Integer(load_default=20, validate=validate.Range(1, 100))


class InsightArgsSchema(PageArgsSchema):
    include_dismissed = ma.fields.Boolean(load_default=False)


class InsightSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    kind = ma.fields.String(required=True, metadata={"description": "fitness_trend, ramp, fatigue, longest"})
    title = ma.fields.String(required=True)
    body = ma.fields.String(required=True)
    evidence = ma.fields.Dict(required=True, metadata={"description": "The numbers behind the card"})
    created_at = ma.fields.DateTime(required=True)
    dismissed = ma.fields.Boolean(required=True)


class InsightPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(InsightSchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)


class WeeklySummarySchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    week_start = ma.fields.Date(required=True, metadata={"description": "First local day of the 7 covered"})
    timezone = ma.fields.String(required=True)
    totals = ma.fields.Dict(required=True, metadata={
        "description": "count, distance_m, moving_time_s, elevation_gain_m, and by_sport"})
    change_vs_4_weeks_pct = ma.fields.Dict(required=True)
    four_week_average = ma.fields.Dict(required=True)
    prs = ma.fields.Integer(required=True)
    achievements = ma.fields.Integer(required=True)
    load_ = ma.fields.Float(data_key="load", attribute="load", required=True)
    fitness = ma.fields.Float(allow_none=True, required=True)
    form = ma.fields.Float(allow_none=True, required=True)
    sleep = ma.fields.Dict(allow_none=True, metadata=omittable(
        description="nights (counted, one per night) and avg_minutes; null without sleep records"))
    nutrition = ma.fields.Dict(allow_none=True, metadata=omittable(
        description="days_logged and avg_kcal_per_logged_day; null without meals"))
    created_at = ma.fields.DateTime(required=True)


class WeeklySummaryPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(WeeklySummarySchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)


class PlannedWorkoutCreateSchema(StrictSchema):
    sport_type = ma.fields.String(required=True, validate=validate.OneOf(SPORT_TYPES))
    planned_at = ma.fields.AwareDateTime(required=True, default_timezone=UTC)
    duration_s = ma.fields.Integer(allow_none=True, validate=validate.Range(60, 7 * 24 * 3600))
    distance_m = ma.fields.Float(allow_none=True, validate=validate.Range(1, 2_000_000))
    notes = ma.fields.String(allow_none=True, validate=validate.Length(0, 2000))
    remind_before_min = ma.fields.Integer(allow_none=True, validate=validate.Range(0, 10080))


class PlannedWorkoutPatchSchema(StrictSchema):
    sport_type = ma.fields.String(validate=validate.OneOf(SPORT_TYPES))
    planned_at = ma.fields.AwareDateTime(default_timezone=UTC)
    duration_s = ma.fields.Integer(allow_none=True, validate=validate.Range(60, 7 * 24 * 3600))
    distance_m = ma.fields.Float(allow_none=True, validate=validate.Range(1, 2_000_000))
    notes = ma.fields.String(allow_none=True, validate=validate.Length(0, 2000))
    remind_before_min = ma.fields.Integer(allow_none=True, validate=validate.Range(0, 10080))


class PlannedWorkoutSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    sport_type = ma.fields.String(required=True)
    planned_at = ma.fields.DateTime(required=True)
    duration_s = ma.fields.Integer(allow_none=True, required=True)
    distance_m = ma.fields.Float(allow_none=True, required=True)
    notes = ma.fields.String(required=True)
    remind_before_min = ma.fields.Integer(allow_none=True, required=True)
    remind_at = ma.fields.DateTime(allow_none=True, required=True)
    reminded_at = ma.fields.DateTime(allow_none=True, required=True)
    completed_activity_id = ma.fields.Integer(allow_none=True, required=True)
    status = ma.fields.String(required=True, metadata={"description": "planned, done or missed"})
    created_at = ma.fields.DateTime(required=True)


class PlannedArgsSchema(PageArgsSchema):
    from_ = ma.fields.AwareDateTime(data_key="from", load_default=None, default_timezone=UTC)
    to = ma.fields.AwareDateTime(load_default=None, default_timezone=UTC)


class PlannedWorkoutPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(PlannedWorkoutSchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)


class TrendArgsSchema(StrictSchema):
    period = ma.fields.String(load_default="week", validate=validate.OneOf(("week", "month")))


class TrendPeriodSchema(ma.Schema):
    period_start = ma.fields.Date(required=True)
    load_ = ma.fields.Float(data_key="load", attribute="load", required=True)
    sports = ma.fields.Dict(required=True, metadata={
        "description": "Per sport: count, distance_m, moving_time_s, elevation_gain_m, avg_speed_mps, "
                       "metres_per_heartbeat (heart-rate efficiency; null without heart rate)"})


class TrendsSchema(ma.Schema):
    period = ma.fields.String(required=True)
    timezone = ma.fields.String(required=True)
    items = ma.fields.List(ma.fields.Nested(TrendPeriodSchema), required=True)
    best_efforts = ma.fields.Dict(required=True, metadata={
        "description": "Per effort (1k, 5k, 10k, Half-Marathon): the best time (s) of each period that has one"})


class RecoveryArgsSchema(StrictSchema):
    date = ma.fields.Date(load_default=None, metadata={"description": "Local date; default today"})


class RecoveryReasonSchema(ma.Schema):
    factor = ma.fields.String(required=True, metadata={
        "description": "sleep, sleep_regularity, resting_heart_rate, hrv or load"})
    notable = ma.fields.Boolean(required=True, metadata={"description": "Counts against recovery"})
    direction = ma.fields.String(required=True, metadata={"description": "worse, ok or better"})
    value = ma.fields.Float(required=True)
    baseline = ma.fields.Float(required=True, metadata={"description": "The athlete's own baseline or need"})
    smallest_worthwhile_change = ma.fields.Float(metadata=omittable(
        description="The band around the baseline inside which a change is normal day-to-day variation"))
    unit = ma.fields.String(required=True)
    text = ma.fields.String(required=True)


class RecoverySchema(ma.Schema):
    date = ma.fields.Date(required=True)
    status = ma.fields.String(required=True, metadata={"description": "recovered, fair, strained or unknown"})
    reasons = ma.fields.List(ma.fields.Nested(RecoveryReasonSchema), required=True)
