"""The social graph: follows (with requests for private accounts) and blocks. PostgreSQL is the truth."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, and_, exists, func, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base, db, table_of
from models.user import User

ACCEPTED = "accepted"
PENDING = "pending"


class Follow(Base):
    """``follower`` follows ``followee``; ``pending`` until a private followee accepts."""

    __tablename__ = "follows"

    follower_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    followee_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=ACCEPTED)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("status IN ('accepted', 'pending')", name="status"),
        CheckConstraint("follower_id <> followee_id", name="not_self"),
        Index("ix_follows_followee_status_created", "followee_id", "status", "created_at"),
        Index("ix_follows_follower_status_created", "follower_id", "status", "created_at"),
    )


class Block(Base):
    __tablename__ = "blocks"

    blocker_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    blocked_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("blocker_id <> blocked_id", name="not_self"),
        Index("ix_blocks_blocked", "blocked_id"),
    )


def is_blocked_either_way(a: int, b: int) -> bool:
    """True when either user blocked the other: they cannot see, follow or message each other."""
    cond = or_(
        and_(Block.blocker_id == a, Block.blocked_id == b),
        and_(Block.blocker_id == b, Block.blocked_id == a),
    )
    return bool(db.session.scalar(select(exists().where(cond))))


def follow_status(follower_id: int, followee_id: int) -> str | None:
    return db.session.scalar(
        select(Follow.status).where(Follow.follower_id == follower_id, Follow.followee_id == followee_id)
    )


def is_follower(follower_id: int, followee_id: int) -> bool:
    return follow_status(follower_id, followee_id) == ACCEPTED


def counts(user_id: int) -> tuple[int, int]:
    """(followers, following), accepted only; kept exact by a database trigger on ``follows``."""
    row = db.session.execute(select(User.follower_count, User.following_count).where(User.id == user_id)).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def accept_all_pending(user_id: int) -> list[int]:
    """Accept every waiting request (the account went public); returns the new followers."""
    return list(db.session.scalars(
        table_of(Follow).update()
        .where(Follow.followee_id == user_id, Follow.status == PENDING)
        .values(status=ACCEPTED)
        .returning(Follow.follower_id)
    ))
