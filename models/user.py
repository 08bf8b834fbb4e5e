"""The athlete aggregate: account, profile and preferences."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, SmallInteger, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.db import Base

SEXES = ("M", "F", "X")
VISIBILITIES = ("everyone", "followers", "only_me")
UNITS = ("metric", "imperial")
NOTIFICATION_CATEGORIES = ("kudos", "comments", "follows", "chat", "reminders", "weekly_summary", "achievements")


def default_notification_settings() -> dict[str, bool]:
    return {category: True for category in NOTIFICATION_CATEGORIES}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    firebase_uid: Mapped[str] = mapped_column(String(128), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(80), default="", server_default="")
    bio: Mapped[str] = mapped_column(Text, default="", server_default="")
    avatar_url: Mapped[str | None] = mapped_column(String(2048))
    sex: Mapped[str | None] = mapped_column(String(1))
    birth_year: Mapped[int | None] = mapped_column(SmallInteger)
    weight_kg: Mapped[float | None]
    is_private: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # Bumped whenever privacy zones or start/end hiding change, so read paths can tell that an activity's
    # stored public view was computed under older rules and must be recomputed before anyone sees it.
    privacy_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Accepted follows, kept in step by the follow service; the feed's hybrid fan-out reads it.
    follower_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    following_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    preferences: Mapped[Preferences] = relationship(
        back_populates="user", uselist=False, cascade="all, delete-orphan", passive_deletes=True,
        lazy="joined",
    )

    __table_args__ = (
        CheckConstraint("sex IS NULL OR sex IN ('M', 'F', 'X')", name="sex"),
        CheckConstraint("birth_year IS NULL OR birth_year BETWEEN 1900 AND 2100", name="birth_year"),
        CheckConstraint("weight_kg IS NULL OR (weight_kg > 0 AND weight_kg < 500)", name="weight"),
    )


class Preferences(Base):
    __tablename__ = "user_preferences"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    units: Mapped[str] = mapped_column(String(8), default="metric", server_default="metric")
    language: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    default_visibility: Mapped[str] = mapped_column(String(16), default="everyone", server_default="everyone")
    notifications: Mapped[dict[str, Any]] = mapped_column(JSONB, default=default_notification_settings)
    hide_start_end_m: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    hide_from_leaderboards: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    quiet_hours_start: Mapped[str | None] = mapped_column(String(5))  # "22:00", local time
    quiet_hours_end: Mapped[str | None] = mapped_column(String(5))

    user: Mapped[User] = relationship(back_populates="preferences")

    __table_args__ = (
        CheckConstraint("units IN ('metric', 'imperial')", name="units"),
        CheckConstraint("default_visibility IN ('everyone', 'followers', 'only_me')", name="default_visibility"),
        CheckConstraint("hide_start_end_m BETWEEN 0 AND 5000", name="hide_start_end_m"),
    )
