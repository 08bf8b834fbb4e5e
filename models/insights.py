"""Insights: what the analytics jobs derive from activities (and health records), all rebuildable from them.

Per-activity loads, the daily fitness series, weekly summaries and insight cards are derived data: deleting
them and running ``flask --app webapp insights-rebuild`` gives them back. Planned workouts and training
settings are the athlete's own input.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base


class TrainingSettings(Base):
    """What the load model needs of an athlete (each optional: docs/insights.md states the defaults), when
    their weekly summary is due, and the durable mark that their daily series needs a recompute."""

    __tablename__ = "training_settings"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    max_hr: Mapped[int | None] = mapped_column(SmallInteger)
    resting_hr: Mapped[int | None] = mapped_column(SmallInteger)
    threshold_hr: Mapped[int | None] = mapped_column(SmallInteger)
    ftp_w: Mapped[int | None] = mapped_column(SmallInteger)
    #: Weekly summary slot, local time in the athlete's time zone: 0 = Monday.
    summary_weekday: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    summary_time: Mapped[str] = mapped_column(String(5), default="08:00", server_default="08:00")
    #: The next slot as an instant (kept in step with the slot and the time zone): the beat tick's index.
    next_summary_at: Mapped[datetime | None]
    #: The earliest local day whose series is out of date (an activity added, changed or deleted); cleared by
    #: the recompute, re-sent by the sweeper if its message was lost.
    series_stale_from: Mapped[date | None] = mapped_column(Date)
    stale_since: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("max_hr IS NULL OR max_hr BETWEEN 100 AND 240", name="max_hr"),
        CheckConstraint("resting_hr IS NULL OR resting_hr BETWEEN 25 AND 120", name="resting_hr"),
        CheckConstraint("threshold_hr IS NULL OR threshold_hr BETWEEN 80 AND 230", name="threshold_hr"),
        CheckConstraint("ftp_w IS NULL OR ftp_w BETWEEN 30 AND 700", name="ftp_w"),
        CheckConstraint("summary_weekday BETWEEN 0 AND 6", name="summary_weekday"),
        Index("ix_training_settings_next_summary", "next_summary_at"),
        Index("ix_training_settings_stale", "stale_since", postgresql_where=text("stale_since IS NOT NULL")),
    )


class ActivityLoad(Base):
    """The training load of one activity and how it was measured (derived; one row per activity)."""

    __tablename__ = "activity_loads"

    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: The athlete's local day the load counts on (kept, so a deletion knows which day to recompute).
    day: Mapped[date] = mapped_column(Date)
    load: Mapped[float] = mapped_column(Float)
    #: power | heart_rate | rpe | estimated
    method: Mapped[str] = mapped_column(String(16))
    trimp: Mapped[float | None] = mapped_column(Float)
    hrss: Mapped[float | None] = mapped_column(Float)
    power_tss: Mapped[float | None] = mapped_column(Float)
    srpe: Mapped[float | None] = mapped_column(Float)
    #: Seconds in heart-rate zones 1–5, and the zones' lower bounds (bpm) they were counted against.
    hr_zones: Mapped[list[float] | None] = mapped_column(JSONB)
    zone_bounds: Mapped[list[float] | None] = mapped_column(JSONB)
    energy_kcal: Mapped[float | None] = mapped_column(Float)
    energy_method: Mapped[str | None] = mapped_column(String(32))
    computed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    #: Stored (by ingest or an edit) but not yet in the series: the next refresh of the athlete takes it.
    pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (Index("ix_activity_loads_user_day", "user_id", "day"),
                      Index("ix_activity_loads_pending", "user_id", postgresql_where=text("pending")))


class TrainingDay(Base):
    """One day of an athlete's series (derived). Days after the last stored one decay without load."""

    __tablename__ = "training_days"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    load: Mapped[float] = mapped_column(Float)
    fitness: Mapped[float] = mapped_column(Float)
    fatigue: Mapped[float] = mapped_column(Float)
    form: Mapped[float] = mapped_column(Float)
    ramp: Mapped[float | None] = mapped_column(Float)
    acwr: Mapped[float | None] = mapped_column(Float)
    monotony: Mapped[float | None] = mapped_column(Float)
    strain: Mapped[float | None] = mapped_column(Float)


class PlannedWorkout(Base):
    __tablename__ = "planned_workouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    sport_type: Mapped[str] = mapped_column(String(16))
    planned_at: Mapped[datetime]
    duration_s: Mapped[int | None] = mapped_column(Integer)
    distance_m: Mapped[float | None] = mapped_column(Float)
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    remind_before_min: Mapped[int | None] = mapped_column(Integer)
    #: planned_at − remind_before_min, kept with the row: the beat scan's index.
    remind_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    completed_activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        CheckConstraint("remind_before_min IS NULL OR remind_before_min BETWEEN 0 AND 10080", name="remind_before"),
        CheckConstraint("duration_s IS NULL OR duration_s > 0", name="duration"),
        CheckConstraint("distance_m IS NULL OR distance_m > 0", name="distance"),
        Index("ix_planned_workouts_user_planned", "user_id", "planned_at", "id"),
        Index("ix_planned_workouts_due", "remind_at", postgresql_where=text("reminded_at IS NULL")),
    )


class WeeklySummary(Base):
    """One athlete's summary of one local week (Monday to Sunday): exactly one per (athlete, week)."""

    __tablename__ = "weekly_summaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    week_start: Mapped[date] = mapped_column(Date)
    timezone: Mapped[str] = mapped_column(String(64))
    totals: Mapped[dict[str, Any]] = mapped_column(JSONB)
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (UniqueConstraint("user_id", "week_start", name="uq_weekly_summaries_user_week"),)


class Insight(Base):
    """A rule-based card with the numbers behind it; ``key`` deduplicates (one card per rule and occasion)."""

    __tablename__ = "insights"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(160))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    dismissed_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("user_id", "key", name="uq_insights_user_key"),
        Index("ix_insights_user_created", "user_id", "created_at", "id"),
    )
