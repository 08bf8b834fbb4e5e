"""An athlete's gear (shoes and bikes): activities point at it, its distance is theirs summed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base

GEAR_KINDS = ("shoes", "bike")


class Gear(Base):
    __tablename__ = "gear"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(80))
    brand: Mapped[str | None] = mapped_column(String(80))
    model: Mapped[str | None] = mapped_column(String(80))
    #: Retired gear keeps its activities and distance but is no longer chosen by default.
    retired: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    #: Sports for which new activities get this gear unless told otherwise (one gear per sport and athlete).
    default_sport_types: Mapped[list[Any]] = mapped_column(JSONB, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        CheckConstraint("kind IN ('shoes', 'bike')", name="kind"),
        Index("ix_gear_user_id", "user_id"),
    )
