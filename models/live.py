"""Live workout tracking: a session an athlete is recording right now, and the points it sent so far.

Points are one narrow row each under ``(session_id, seq)``: appended in order under a lock on the session row, so
``seq`` is dense and a resent batch (same client times) is recognised and skipped rather than stored twice. The
``hidden`` flag is whether non-owners may see the point (privacy zones, hidden start), computed when the point
arrives under the owner's privacy settings of that moment (``privacy_version``) and recomputed when they change.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import REAL

from models.activity import SPORT_CHECK
from models.db import Base

LIVE_STATUSES = ("live", "ended")


class LiveSession(Base):
    __tablename__ = "live_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    sport_type: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(255), default="", server_default="")
    visibility: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(8), default="live", server_default="live")
    #: Why it ended: "finished" (the athlete), "abandoned" (the sweeper), "max_duration".
    end_reason: Mapped[str | None] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    #: Server time of the last accepted batch (what the sweeper looks at), not a client clock.
    last_point_at: Mapped[datetime | None]
    #: Client time of the newest stored point: later batches must be newer (resends are skipped).
    last_point_time: Mapped[datetime | None]
    first_point_time: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    point_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: The athlete's distance: the device's own figure when it sends one, otherwise measured along the points.
    distance_m: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    #: Along the positions only (the hidden-start stretch is measured on it).
    along_m: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    #: What non-owners are told: summed only between consecutive visible points, so it never measures a
    #: hidden stretch.
    public_distance_m: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    last_lat: Mapped[float | None] = mapped_column(Float)
    last_lng: Mapped[float | None] = mapped_column(Float)
    last_hr: Mapped[int | None] = mapped_column(SmallInteger)
    #: Whether the newest stored point is visible to non-owners (public distance only joins visible pairs).
    last_visible: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    #: The owner's ``privacy_version`` the ``hidden`` flags were computed under.
    privacy_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    upload_id: Mapped[int | None] = mapped_column(ForeignKey("uploads.id", ondelete="SET NULL"))
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("status IN ('live', 'ended')", name="status"),
        CheckConstraint("visibility IN ('everyone', 'followers', 'only_me')", name="visibility"),
        CheckConstraint(SPORT_CHECK, name="sport_type"),
        # One live session per athlete at a time, decided by the database (two phones starting at once).
        Index("uq_live_sessions_user_live", "user_id", unique=True, postgresql_where=text("status = 'live'")),
        Index("ix_live_sessions_user_started", "user_id", "started_at"),
        # The sweeper's scan: live sessions by last activity.
        Index("ix_live_sessions_live_last", "last_point_at", postgresql_where=text("status = 'live'")),
    )


class LivePoint(Base):
    __tablename__ = "live_points"

    session_id: Mapped[int] = mapped_column(ForeignKey("live_sessions.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime]
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    ele: Mapped[float | None] = mapped_column(REAL)
    hr: Mapped[int | None] = mapped_column(SmallInteger)
    cadence: Mapped[int | None] = mapped_column(SmallInteger)
    power: Mapped[int | None] = mapped_column(SmallInteger)
    #: Distance the device reported (cumulative), when it reports one.
    distance_m: Mapped[float | None] = mapped_column(REAL)
    #: Distance along the positions from the session's first point.
    along_m: Mapped[float] = mapped_column(Float)
    hidden: Mapped[bool] = mapped_column(Boolean)
