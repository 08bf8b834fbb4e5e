"""The social graph: follows (with requests for private accounts) and blocks. PostgreSQL is the truth."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, and_, exists, func, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base, db

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


def visibility_allows(visibility: str, *, is_owner: bool, blocked: bool, follower: bool, owner_private: bool) -> bool:
    """The one visibility rule of activities and posts, on facts the caller has at hand.

    The owner sees everything; nobody else sees ``only_me``, or anything across a block; ``followers``, and
    every item of a private account, need an accepted follow; ``everyone`` is everyone.
    """
    if is_owner:
        return True
    if visibility == "only_me" or blocked:
        return False
    if visibility == "followers" or owner_private:
        return follower
    return True


def can_see(viewer_id: int, owner_id: int, owner_private: bool, visibility: str) -> bool:
    """:func:`visibility_allows`, looking up the block and follow state (lazily: most items need neither)."""
    if viewer_id == owner_id:
        return True
    if visibility == "only_me" or is_blocked_either_way(viewer_id, owner_id):
        return False
    return visibility_allows(visibility, is_owner=False, blocked=False,
                             follower=(visibility == "followers" or owner_private) and is_follower(viewer_id, owner_id),
                             owner_private=owner_private)


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


def follower_ids(user_id: int) -> list[int]:
    return list(db.session.scalars(
        select(Follow.follower_id).where(Follow.followee_id == user_id, Follow.status == ACCEPTED)
    ))


def counts(user_id: int) -> tuple[int, int]:
    """(followers, following), accepted only; kept exact by a database trigger on ``follows``."""
    from models.user import User

    row = db.session.execute(select(User.follower_count, User.following_count).where(User.id == user_id)).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def accept_all_pending(user_id: int) -> list[int]:
    """Accept every waiting request (the account went public); returns the new followers."""
    return list(db.session.scalars(
        Follow.__table__.update()
        .where(Follow.followee_id == user_id, Follow.status == PENDING)
        .values(status=ACCEPTED)
        .returning(Follow.follower_id)
    ))
