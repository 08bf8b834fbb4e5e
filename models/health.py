"""Health records: the food catalogue, meals, water, sleep, device events, body metrics and health-app sync.

Every row but the shared catalogue belongs to one athlete (``user_id``, cascading on account deletion) and is
read by that athlete only; the rules are ``domain.health``'s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Computed,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base

MEAL_TYPES = ("breakfast", "lunch", "dinner", "snack")
SLEEP_SOURCES = ("manual", "estimated", "healthkit", "health_connect")
DEVICE_EVENT_TYPES = ("screen_on", "screen_off", "unlock")
#: Body metric kinds and the one unit each is stored in.
METRIC_UNITS = {
    "weight": "kg", "resting_heart_rate": "bpm", "hrv_rmssd": "ms", "hrv_sdnn": "ms", "body_fat": "%",
    "height": "cm", "steps": "count", "active_energy": "kcal",
}
SYNC_SOURCES = ("healthkit", "health_connect")
#: The nutrient columns of a food, per 100 g of edible portion (the names carry the unit).
NUTRIENTS = ("energy_kcal", "protein_g", "fat_g", "saturated_fat_g", "carbohydrate_g", "fiber_g", "sugars_g",
             "sodium_mg", "potassium_mg", "calcium_mg", "iron_mg", "water_g")


def _in(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class Food(Base):
    """A catalogue food (``user_id`` NULL: shared, read-only) or an athlete's own food, product or recipe."""

    __tablename__ = "foods"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: sr28, fdc, off (imported catalogues) or user.
    source: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str | None] = mapped_column(String(32))
    barcode: Mapped[str | None] = mapped_column(String(14))
    name: Mapped[str] = mapped_column(String(200))
    brand: Mapped[str | None] = mapped_column(String(120))
    food_group: Mapped[str | None] = mapped_column(String(80))
    #: Other names people type for it ("garbanzo" for chickpeas), searched with the name.
    common_names: Mapped[str | None] = mapped_column(String(200))
    is_recipe: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    #: Folded to ASCII lower case by the domain (PostgreSQL's unaccent is not everywhere); the head of the name
    #: (before the first comma: "Bananas" in "Bananas, raw") weighs most in the ranking.
    search_head: Mapped[str] = mapped_column(String(200), default="", server_default="")
    search_rest: Mapped[str] = mapped_column(String(400), default="", server_default="")
    #: Brand and other names: found, but weighing less than the name itself.
    search_extra: Mapped[str] = mapped_column(String(400), default="", server_default="")
    search_vector: Mapped[Any] = mapped_column(TSVECTOR, Computed(
        "setweight(to_tsvector('english'::regconfig, search_head), 'A') || "
        "setweight(to_tsvector('english'::regconfig, search_rest), 'B') || "
        "setweight(to_tsvector('english'::regconfig, search_extra), 'C')", persisted=True))
    energy_kcal: Mapped[float | None] = mapped_column(Float)
    protein_g: Mapped[float | None] = mapped_column(Float)
    fat_g: Mapped[float | None] = mapped_column(Float)
    saturated_fat_g: Mapped[float | None] = mapped_column(Float)
    carbohydrate_g: Mapped[float | None] = mapped_column(Float)
    fiber_g: Mapped[float | None] = mapped_column(Float)
    sugars_g: Mapped[float | None] = mapped_column(Float)
    sodium_mg: Mapped[float | None] = mapped_column(Float)
    potassium_mg: Mapped[float | None] = mapped_column(Float)
    calcium_mg: Mapped[float | None] = mapped_column(Float)
    iron_mg: Mapped[float | None] = mapped_column(Float)
    water_g: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("source IN ('sr28', 'fdc', 'off', 'user')", name="source"),
        CheckConstraint("(user_id IS NULL) = (source <> 'user')", name="owner"),
        Index("ix_foods_search", "search_vector", postgresql_using="gin"),
        Index("uq_foods_catalogue_source", "source", "source_id", unique=True,
              postgresql_where=sql("user_id IS NULL")),
        Index("ix_foods_barcode", "barcode", postgresql_where=sql("barcode IS NOT NULL")),
        Index("ix_foods_user", "user_id", "id", postgresql_where=sql("user_id IS NOT NULL")),
    )


class FoodPortion(Base):
    """A household measure of a food: "1 cup, sliced" = 150 g."""

    __tablename__ = "food_portions"

    id: Mapped[int] = mapped_column(primary_key=True)
    food_id: Mapped[int] = mapped_column(ForeignKey("foods.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(SmallInteger)
    amount: Mapped[float] = mapped_column(Float)
    description: Mapped[str] = mapped_column(Text)
    grams: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        CheckConstraint("grams > 0 AND amount > 0", name="positive"),
        Index("ix_food_portions_food", "food_id", "seq"),
    )


class RecipeItem(Base):
    """One ingredient of a recipe (a food with ``is_recipe``), in grams."""

    __tablename__ = "recipe_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    recipe_id: Mapped[int] = mapped_column(ForeignKey("foods.id", ondelete="CASCADE"))
    food_id: Mapped[int | None] = mapped_column(ForeignKey("foods.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    grams: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_recipe_items_recipe", "recipe_id"),)


class HealthProfile(Base):
    """What the targets and reminders need beyond the profile: height, macro split, reminder and night windows."""

    __tablename__ = "health_profiles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    height_cm: Mapped[float | None] = mapped_column(Float)
    protein_pct: Mapped[int] = mapped_column(SmallInteger, default=20, server_default="20")
    carbohydrate_pct: Mapped[int] = mapped_column(SmallInteger, default=50, server_default="50")
    fat_pct: Mapped[int] = mapped_column(SmallInteger, default=30, server_default="30")
    water_goal_ml: Mapped[int | None] = mapped_column(Integer)
    reminders_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    reminder_every_h: Mapped[int] = mapped_column(SmallInteger, default=2, server_default="2")
    wake_start: Mapped[str] = mapped_column(String(5), default="08:00", server_default="08:00")
    wake_end: Mapped[str] = mapped_column(String(5), default="22:00", server_default="22:00")
    night_start: Mapped[str] = mapped_column(String(5), default="20:00", server_default="20:00")
    night_end: Mapped[str] = mapped_column(String(5), default="12:00", server_default="12:00")
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        CheckConstraint("protein_pct + carbohydrate_pct + fat_pct = 100", name="macro_split"),
        CheckConstraint("reminder_every_h BETWEEN 1 AND 12", name="reminder_every_h"),
    )


class Meal(Base):
    __tablename__ = "meals"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    meal_type: Mapped[str] = mapped_column(String(16))
    eaten_at: Mapped[datetime]
    notes: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="manual", server_default="manual")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        CheckConstraint(f"meal_type IN ({_in(MEAL_TYPES)})", name="meal_type"),
        Index("ix_meals_user_eaten", "user_id", "eaten_at", "id"),
    )


class MealItem(Base):
    """A food eaten, with its nutrients computed when logged (a later edit of an own food leaves history be)."""

    __tablename__ = "meal_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    meal_id: Mapped[int] = mapped_column(ForeignKey("meals.id", ondelete="CASCADE"))
    food_id: Mapped[int | None] = mapped_column(ForeignKey("foods.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    grams: Mapped[float] = mapped_column(Float)
    portion_id: Mapped[int | None] = mapped_column(ForeignKey("food_portions.id", ondelete="SET NULL"))
    quantity: Mapped[float | None] = mapped_column(Float)
    nutrients: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)

    __table_args__ = (Index("ix_meal_items_meal", "meal_id"),)


class WaterLog(Base):
    __tablename__ = "water_logs"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    ml: Mapped[int] = mapped_column(Integer)
    drink: Mapped[str] = mapped_column(String(32), default="water", server_default="water")
    drunk_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(16), default="manual", server_default="manual")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("ml > 0 AND ml <= 5000", name="ml"),
        Index("ix_water_logs_user_drunk", "user_id", "drunk_at", "id"),
    )


class SleepSession(Base):
    __tablename__ = "sleep_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    quality: Mapped[int | None] = mapped_column(SmallInteger)
    notes: Mapped[str | None] = mapped_column(Text)
    #: [{stage, start, end}] for imported sessions (HealthKit / Health Connect stage names mapped to ours).
    stages: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    #: Estimated sessions: ± minutes on each edge and a 0–1 confidence.
    uncertainty_min: Mapped[int | None] = mapped_column(SmallInteger)
    confidence: Mapped[float | None] = mapped_column(Float)
    #: The local date of the night (the morning's date), the key of the one estimate per night.
    night_of: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        CheckConstraint(f"source IN ({_in(SLEEP_SOURCES)})", name="source"),
        CheckConstraint("end_at > start_at AND end_at - start_at <= interval '24 hours'", name="span"),
        CheckConstraint("quality IS NULL OR quality BETWEEN 1 AND 5", name="quality"),
        Index("ix_sleep_sessions_user_start", "user_id", "start_at", "id"),
        Index("uq_sleep_sessions_estimate_night", "user_id", "night_of", unique=True,
              postgresql_where=sql("source = 'estimated'")),
    )


class DeviceEvent(Base):
    __tablename__ = "device_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint(f"type IN ({_in(DEVICE_EVENT_TYPES)})", name="type"),
        Index("uq_device_events_user_at_type", "user_id", "at", "type", unique=True),
    )


class BodyMetric(Base):
    __tablename__ = "body_metrics"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16))
    measured_at: Mapped[datetime]
    #: For a sum over a span (steps, active energy): its end.
    end_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(16), default="manual", server_default="manual")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"kind IN ({_in(list(METRIC_UNITS))})", name="kind"),
        Index("ix_body_metrics_user_kind_at", "user_id", "kind", "measured_at", "id"),
    )


class HealthSyncItem(Base):
    """One sample a health app sent, by its id there: what makes a re-sent batch a no-op and a deletion exact."""

    __tablename__ = "health_sync_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str] = mapped_column(String(128))
    sample_type: Mapped[str] = mapped_column(String(24))
    #: Where it was stored: sleep_sessions, body_metrics, water_logs, meals or uploads, and the row's id.
    record_table: Mapped[str] = mapped_column(String(24))
    record_id: Mapped[int | None]
    #: A hash of the sample as sent: the same id with other content updates the record.
    digest: Mapped[str] = mapped_column(String(64))
    #: The sync anchor after which this sample changed (the per-athlete counter of health_sync_states).
    changed_at_anchor: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"source IN ({_in(SYNC_SOURCES)})", name="source"),
        Index("uq_health_sync_items_user_source_id", "user_id", "source", "source_id", unique=True),
    )


class HealthSyncState(Base):
    __tablename__ = "health_sync_states"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    anchor: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: The platform's own token (Health Connect changes token, HealthKit anchor), echoed back to the app.
    platform_anchor: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class HydrationReminder(Base):
    """One reminder slot per athlete and local hour: the unique key that makes a second beat or a redelivered
    task send nothing twice."""

    __tablename__ = "hydration_reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: "2026-12-04T14" in the athlete's local time at the slot (an hour repeated by a DST change is one slot).
    slot: Mapped[str] = mapped_column(String(16))
    sent_at: Mapped[datetime]
    behind_ml: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("uq_hydration_reminders_user_slot", "user_id", "slot", unique=True),
        Index("ix_hydration_reminders_user_sent", "user_id", "sent_at"),
    )
