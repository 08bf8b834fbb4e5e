"""The activity aggregate: uploads, activities, their compact streams, and privacy zones."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base

UPLOAD_STATUSES = ("queued", "processing", "ready", "failed", "duplicate")
DATA_TYPES = ("gpx", "gpx.gz", "tcx", "tcx.gz", "fit", "fit.gz", "health")
#: Every sport an activity, segment or live session can have: (family, name shown to people). The family groups
#: sports for lists and totals (a trail run is a run); the order is the order clients list them in.
SPORTS: dict[str, tuple[str, str]] = {
    "running": ("run", "Run"), "trail_running": ("run", "Trail Run"), "virtual_run": ("run", "Virtual Run"),
    "cycling": ("ride", "Ride"), "mountain_biking": ("ride", "Mountain Bike Ride"),
    "gravel_ride": ("ride", "Gravel Ride"), "e_bike_ride": ("ride", "E-Bike Ride"),
    "virtual_ride": ("ride", "Virtual Ride"),
    "swimming": ("swim", "Swim"),
    "walking": ("walk", "Walk"), "hiking": ("walk", "Hike"),
    "rowing": ("water", "Row"), "kayaking": ("water", "Kayak"), "canoeing": ("water", "Canoe"),
    "paddleboarding": ("water", "Stand-Up Paddle"),
    "alpine_skiing": ("winter", "Alpine Ski"), "nordic_skiing": ("winter", "Nordic Ski"),
    "backcountry_ski": ("winter", "Backcountry Ski"), "snowboarding": ("winter", "Snowboard"),
    "snowshoeing": ("winter", "Snowshoe"),
    "strength": ("fitness", "Strength Training"), "yoga": ("fitness", "Yoga"), "workout": ("fitness", "Workout"),
    "elliptical": ("fitness", "Elliptical"),
    "other": ("other", "Activity"),
}
SPORT_TYPES = tuple(SPORTS)
SPORT_FAMILIES = tuple(dict.fromkeys(family for family, _ in SPORTS.values()))
#: The CHECK constraint of every ``sport_type`` column (migration 0016 sets it in the database).
SPORT_CHECK = "sport_type IN (" + ", ".join(f"'{sport}'" for sport in SPORT_TYPES) + ")"


class Upload(Base):
    """One uploaded file. Committed (with its bytes already in object storage) before any task runs."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    stage: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    data_type: Mapped[str | None] = mapped_column(String(8))
    filename: Mapped[str | None] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    external_id: Mapped[str | None] = mapped_column(String(255))
    batch_id: Mapped[str | None] = mapped_column(String(36))
    #: Which workout of a multi-workout file (an Apple Health export) this upload is; None for one-activity files.
    part: Mapped[int | None] = mapped_column(Integer)
    # What the athlete asked for at upload time; applied when the activity is created.
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    sport_type: Mapped[str | None] = mapped_column(String(16))
    visibility: Mapped[str | None] = mapped_column(String(16))
    # Strava's upload flags (API v3); None when the athlete did not say.
    trainer: Mapped[bool | None] = mapped_column(Boolean)
    commute: Mapped[bool | None] = mapped_column(Boolean)
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id", ondelete="SET NULL", use_alter=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        CheckConstraint("status IN ('queued', 'processing', 'ready', 'failed', 'duplicate')", name="status"),
        # The Idempotency-Key contract: one upload per (user, key), enforced by the database.
        Index("uq_uploads_user_idempotency_key", "user_id", "idempotency_key", unique=True,
              postgresql_where=text("idempotency_key IS NOT NULL")),
        Index("ix_uploads_status_updated", "status", "updated_at"),
        Index("ix_uploads_user_created", "user_id", "created_at"),
    )


class Activity(Base):
    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    upload_id: Mapped[int | None] = mapped_column(ForeignKey("uploads.id", ondelete="SET NULL"), unique=True)
    gear_id: Mapped[int | None] = mapped_column(ForeignKey("gear.id", ondelete="SET NULL"))
    source_sha256: Mapped[str | None] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    sport_type: Mapped[str] = mapped_column(String(16))
    visibility: Mapped[str] = mapped_column(String(16))
    manual: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    start_time: Mapped[datetime]
    #: IANA name of the zone the activity started in (from its first position, else the athlete's profile),
    #: and the start as a wall-clock time there: what "Morning Run" and Strava's ``start_date_local`` mean.
    timezone: Mapped[str | None] = mapped_column(String(64))
    start_date_local: Mapped[datetime | None] = mapped_column(DateTime(timezone=False))
    trainer: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    commute: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    device: Mapped[str | None] = mapped_column(String(255))

    distance_m: Mapped[float] = mapped_column(Float, default=0.0)
    elapsed_time_s: Mapped[float] = mapped_column(Float, default=0.0)
    moving_time_s: Mapped[float] = mapped_column(Float, default=0.0)
    elevation_gain_m: Mapped[float | None] = mapped_column(Float)
    elevation_loss_m: Mapped[float | None] = mapped_column(Float)
    avg_speed_mps: Mapped[float | None] = mapped_column(Float)
    max_speed_mps: Mapped[float | None] = mapped_column(Float)
    avg_hr: Mapped[float | None] = mapped_column(Float)
    max_hr: Mapped[float | None] = mapped_column(Float)
    avg_cadence: Mapped[float | None] = mapped_column(Float)
    avg_power: Mapped[float | None] = mapped_column(Float)
    max_power: Mapped[float | None] = mapped_column(Float)
    avg_temp: Mapped[float | None] = mapped_column(Float)
    perceived_exertion: Mapped[int | None] = mapped_column(SmallInteger)
    notes: Mapped[str | None] = mapped_column(Text)
    # Splits, laps and best efforts: read whole with the activity, never queried inside.
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)

    has_gps: Mapped[bool] = mapped_column(Boolean, default=False)
    point_count: Mapped[int] = mapped_column(Integer, default=0)
    # The owner's view of the map.
    start_lat: Mapped[float | None] = mapped_column(Float)
    start_lng: Mapped[float | None] = mapped_column(Float)
    end_lat: Mapped[float | None] = mapped_column(Float)
    end_lng: Mapped[float | None] = mapped_column(Float)
    min_lat: Mapped[float | None] = mapped_column(Float)
    min_lng: Mapped[float | None] = mapped_column(Float)
    max_lat: Mapped[float | None] = mapped_column(Float)
    max_lng: Mapped[float | None] = mapped_column(Float)
    polyline: Mapped[str | None] = mapped_column(Text)
    summary_polyline: Mapped[str | None] = mapped_column(Text)
    # Everyone else's view, with privacy zones and the hidden start/end removed (see domain.algorithms.privacy).
    # ``public`` holds start/end latlng, bounds, polylines and the distance offset of the visible part.
    public: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    privacy_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    kudos_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    comment_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        CheckConstraint("visibility IN ('everyone', 'followers', 'only_me')", name="visibility"),
        CheckConstraint(SPORT_CHECK, name="sport_type"),
        CheckConstraint("perceived_exertion IS NULL OR perceived_exertion BETWEEN 1 AND 10", name="rpe"),
        # Two concurrent uploads of the same file make exactly one activity: the second insert conflicts.
        Index("uq_activities_user_sha256", "user_id", "source_sha256", unique=True,
              postgresql_where=text("source_sha256 IS NOT NULL")),
        Index("ix_activities_user_start", "user_id", "start_time", "id"),
        Index("ix_activities_gear_id", "gear_id", postgresql_where=text("gear_id IS NOT NULL")),
        # Re-matching a new segment looks for activities whose bounds overlap it.
        Index("ix_activities_box", text("box(point(min_lng, min_lat), point(max_lng, max_lat))"),
              postgresql_using="gist", postgresql_where=text("min_lat IS NOT NULL")),
    )


class ActivityStream(Base):
    """The whole recorded track of one activity as one compressed columnar blob (domain.algorithms.streams)."""

    __tablename__ = "activity_streams"

    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True)
    point_count: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class PrivacyZone(Base):
    __tablename__ = "privacy_zones"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    lat: Mapped[float] = mapped_column(Float)
    lng: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[float] = mapped_column(Float)
    # The disc actually filtered: displaced once at creation and grown to contain the athlete's disc
    # (domain.algorithms.privacy.persistent_zone). Never returned by the API.
    hidden_lat: Mapped[float] = mapped_column(Float)
    hidden_lng: Mapped[float] = mapped_column(Float)
    hidden_radius_m: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("radius_m BETWEEN 200 AND 1600", name="radius"),
        CheckConstraint("lat BETWEEN -90 AND 90 AND lng BETWEEN -180 AND 180", name="position"),
    )


class ActivityShare(Base):
    """A public link to one activity (``/a/<token>``): anyone holding the token sees the non-owner view."""

    __tablename__ = "activity_shares"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"), index=True)
    # 32 random bytes, URL-safe: unguessable. Only a live (not revoked) share opens the page.
    share_token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[datetime | None]

    __table_args__ = (
        # At most one live link per activity: sharing twice returns the same link.
        Index("uq_activity_shares_live", "activity_id", unique=True, postgresql_where=text("revoked_at IS NULL")),
    )


class AccountExport(Base):
    """One whole-account export (a zip in object storage), built by a task on the ``default`` queue."""

    __tablename__ = "account_exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    storage_key: Mapped[str | None] = mapped_column(String(255))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'ready', 'failed')", name="status"),
        # One export at a time per athlete: a second request while one runs gets that one.
        Index("uq_account_exports_running", "user_id", unique=True,
              postgresql_where=text("status IN ('queued', 'running')")),
    )
