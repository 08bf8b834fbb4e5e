"""Posts, kudos and comments: what athletes say about activities and to each other."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy import text as sql
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base

#: Exactly one target per kudos/comment: an activity or a post.
ONE_TARGET = "(activity_id IS NULL) <> (post_id IS NULL)"


class Post(Base):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text, default="", server_default="")
    visibility: Mapped[str] = mapped_column(String(16))
    #: "Share an activity as a post": the caption is ``text``.
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    #: A post in a group's discussion (read by the group's audience, not fanned out to followers).
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    kudos_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    comment_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        CheckConstraint("visibility IN ('everyone', 'followers', 'only_me')", name="visibility"),
        Index("ix_posts_user_created", "user_id", "created_at", "id"),
        Index("ix_posts_group_created", "group_id", "created_at", "id", postgresql_where=sql("group_id IS NOT NULL")),
    )


class Kudos(Base):
    __tablename__ = "kudos"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint(ONE_TARGET, name="one_target"),
        # One kudos per person and object, enforced by the database (double taps, retries, races).
        Index("uq_kudos_activity_user", "activity_id", "user_id", unique=True,
              postgresql_where=sql("activity_id IS NOT NULL")),
        Index("uq_kudos_post_user", "post_id", "user_id", unique=True, postgresql_where=sql("post_id IS NOT NULL")),
    )


class Comment(Base):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint(ONE_TARGET, name="one_target"),
        Index("ix_comments_activity_created", "activity_id", "created_at", "id",
              postgresql_where=sql("activity_id IS NOT NULL")),
        Index("ix_comments_post_created", "post_id", "created_at", "id", postgresql_where=sql("post_id IS NOT NULL")),
    )
