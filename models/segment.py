"""The segment aggregate: segments, stars, efforts, and the achievements efforts (and activities) earn."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
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

from models.activity import SPORT_CHECK
from models.db import Base

#: PostgreSQL's built-in ``box`` over a row's bounds, GiST-indexed: bounding-box candidate search
#: without PostGIS (``&&`` is "overlaps"). Longitude is x, latitude y.
SEGMENT_BOX = "box(point(min_lng, min_lat), point(max_lng, max_lat))"


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    creator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source_activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(255))
    sport_type: Mapped[str] = mapped_column(String(16))
    distance_m: Mapped[float] = mapped_column(Float)
    elevation_gain_m: Mapped[float | None] = mapped_column(Float)
    avg_grade_pct: Mapped[float | None] = mapped_column(Float)
    max_grade_pct: Mapped[float | None] = mapped_column(Float)
    climb_category: Mapped[str | None] = mapped_column(String(2))
    min_lat: Mapped[float] = mapped_column(Float)
    min_lng: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    max_lng: Mapped[float] = mapped_column(Float)
    start_lat: Mapped[float] = mapped_column(Float)
    start_lng: Mapped[float] = mapped_column(Float)
    end_lat: Mapped[float] = mapped_column(Float)
    end_lng: Mapped[float] = mapped_column(Float)
    polyline: Mapped[str] = mapped_column(Text)
    #: Vertices as little-endian int32 pairs in 1e-7 degrees (lat, lng), read whole by the matcher.
    path: Mapped[bytes] = mapped_column(LargeBinary)
    #: The matcher's keys of ``path`` (domain.algorithms.matching.pack_segment), so a fresh worker process reads
    #: these instead of preparing every candidate again, and the path only of candidates that cross both gates;
    #: NULL (or stale) means "prepare from path".
    prepared: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    #: Elevation per vertex (float32 metres) when known.
    elevation: Mapped[bytes | None] = mapped_column(LargeBinary)
    effort_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    athlete_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    star_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Set (in the transaction of the change) when the leaderboards need rebuilding, cleared by the rebuild: a
    #: rebuild message lost on the way is sent again by the sweeper.
    boards_stale_since: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        Index("ix_segments_boards_stale", "boards_stale_since",
              postgresql_where=text("boards_stale_since IS NOT NULL")),
        CheckConstraint(SPORT_CHECK, name="sport_type"),
        Index("ix_segments_box", text(SEGMENT_BOX), postgresql_using="gist"),
        Index("ix_segments_popular", "athlete_count"),
    )


class SegmentStar(Base):
    __tablename__ = "segment_stars"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (Index("ix_segment_stars_user_created", "user_id", "created_at"),)


class SegmentEffort(Base):
    """One timed traversal of a segment. PostgreSQL is the truth; Redis boards are rebuilt from it."""

    __tablename__ = "segment_efforts"

    id: Mapped[int] = mapped_column(primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    start_index: Mapped[int] = mapped_column(Integer)
    end_index: Mapped[int] = mapped_column(Integer)
    start_time: Mapped[datetime]
    elapsed_time_s: Mapped[float] = mapped_column(Float)
    moving_time_s: Mapped[float] = mapped_column(Float)
    #: Starts or ends where the athlete's privacy settings hide the track: counts for the owner only.
    hidden_by_privacy: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    #: On the public boards (domain.segments.efforts.on_boards_sql), as of the effort's storage or the segment's
    #: last board rebuild; the segment's public counts count these (triggers of migration 0012).
    on_boards: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    pr_rank: Mapped[int | None] = mapped_column(SmallInteger)
    kom_rank: Mapped[int | None] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        # A re-run of the matching stage (or a re-match) inserts nothing twice.
        Index("uq_segment_efforts_activity_segment_start", "activity_id", "segment_id", "start_index", unique=True),
        Index("ix_segment_efforts_segment_elapsed", "segment_id", "elapsed_time_s"),
        Index("ix_segment_efforts_user_segment", "user_id", "segment_id", "elapsed_time_s"),
        Index("ix_segment_efforts_on_boards", "segment_id", "user_id", postgresql_where=text("on_boards")),
    )


class Achievement(Base):
    """A rule-based award. ``key`` names it uniquely per athlete so a re-run never awards it twice."""

    __tablename__ = "achievements"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    effort_id: Mapped[int | None] = mapped_column(ForeignKey("segment_efforts.id", ondelete="CASCADE"))
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    key: Mapped[str] = mapped_column(String(160))
    rank: Mapped[int | None] = mapped_column(SmallInteger)
    value: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        Index("uq_achievements_user_key", "user_id", "key", unique=True),
        Index("ix_achievements_activity", "activity_id"),
        Index("ix_achievements_user_created", "user_id", "created_at"),
    )
