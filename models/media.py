"""Photos and videos: one row per item, the S3 events already handled, and the objects still to delete.

The bytes live in the media bucket under one prefix per item (``media/<owner>/<token>/``): the original, and
the renditions the chain writes beside it. A row knows its prefix, so deleting an item, its parent or its owner
(foreign-key cascades included) leaves a ``media_purges`` row behind, written by a database trigger in the same
transaction; the purge job (and its sweeper) then deletes every object under that prefix. No deletion path can
forget the objects, and a crash between the commit and the S3 calls only delays them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base

PHOTO = "photo"
VIDEO = "video"
KINDS = (PHOTO, VIDEO)

PENDING = "pending"
UPLOADED = "uploaded"
PROCESSING = "processing"
READY = "ready"
FAILED = "failed"
STATES = (PENDING, UPLOADED, PROCESSING, READY, FAILED)

ATTACH_TYPES = ("activity", "post", "message", "avatar")


class MediaItem(Base):
    __tablename__ = "media_items"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(12), default=PENDING, server_default=PENDING)
    #: A sentence for the athlete when ``state`` is failed.
    error: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    #: What it is attached to: at most one of activity, post, message; ``avatar`` has none of them.
    attach_type: Mapped[str | None] = mapped_column(String(8))
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    #: Order among the parent's items (several photos per activity or post).
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: ``media/<owner>/<random token>/``: everything of this item, and nothing else, is under it.
    prefix: Mapped[str] = mapped_column(String(128), unique=True)
    original_key: Mapped[str] = mapped_column(String(160))
    #: The S3 multipart upload of a large video, while it is open.
    multipart_upload_id: Mapped[str | None] = mapped_column(String(1024))
    #: The original as S3 stored it (the event that reported it).
    etag: Mapped[str | None] = mapped_column(String(128))
    #: {name: {key, width, height, bytes, content_type}}; for a video also ``hls`` {key, variants: [...]}.
    renditions: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=sql("'{}'::jsonb"))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration_s: Mapped[float | None] = mapped_column(Float)
    blurhash: Mapped[str | None] = mapped_column(String(64))
    taken_at: Mapped[datetime | None]
    #: Where it was taken (EXIF GPS of a photo, a video's location tag): shown to others only by the rule of
    #: domain.media.service.shown_location; never in any rendition's bytes.
    capture_lat: Mapped[float | None] = mapped_column(Float)
    capture_lng: Mapped[float | None] = mapped_column(Float)
    #: The MediaConvert job of a video (production); its ClientRequestToken is derived from the item id.
    transcode_job_id: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    uploaded_at: Mapped[datetime | None]
    ready_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("kind IN ('photo', 'video')", name="kind"),
        CheckConstraint("state IN ('pending', 'uploaded', 'processing', 'ready', 'failed')", name="state"),
        CheckConstraint("attach_type IS NULL OR attach_type IN ('activity', 'post', 'message', 'avatar')",
                        name="attach_type"),
        CheckConstraint("(activity_id IS NOT NULL)::int + (post_id IS NOT NULL)::int "
                        "+ (message_id IS NOT NULL)::int <= 1", name="one_parent"),
        CheckConstraint("size_bytes > 0", name="size_positive"),
        Index("ix_media_items_activity", "activity_id", "position", "id",
              postgresql_where=sql("activity_id IS NOT NULL")),
        Index("ix_media_items_post", "post_id", "position", "id", postgresql_where=sql("post_id IS NOT NULL")),
        Index("ix_media_items_message", "message_id", "position", "id",
              postgresql_where=sql("message_id IS NOT NULL")),
        Index("ix_media_items_user_created", "user_id", "created_at"),
        Index("ix_media_items_state_updated", "state", "updated_at"),
    )


class MediaEvent(Base):
    """An S3 object-created event already handled: S3 delivers at least once, and a multipart upload may
    report its object twice, so (bucket, key, ETag) is handled once."""

    __tablename__ = "media_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bucket: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(1024))
    etag: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (UniqueConstraint("bucket", "key", "etag", name="uq_media_events_object"),)


class MediaPurge(Base):
    """Objects to delete: every object under ``prefix`` (and any multipart upload still open there)."""

    __tablename__ = "media_purges"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (Index("ix_media_purges_created", "created_at"),)


#: Written by the migration: a deleted item (however it was deleted) leaves its prefix to purge.
PURGE_TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION media_items_purge_objects() RETURNS trigger AS $$
BEGIN
    INSERT INTO media_purges (prefix) VALUES (OLD.prefix);
    RETURN OLD;
END
$$ LANGUAGE plpgsql
"""
PURGE_TRIGGER = """
CREATE TRIGGER media_items_purge_objects AFTER DELETE ON media_items
FOR EACH ROW EXECUTE FUNCTION media_items_purge_objects()
"""
