"""Push devices (FCM registration tokens per athlete) and the push deliveries made to them.

A delivery row is written, under a unique (notification, device) key, before anything is sent: it is the
record that makes a retried or redelivered task never send the same push to the same device twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base

PLATFORMS = ("ios", "android", "web")
#: Long enough for FCM registration tokens (~160 chars) and APNs / web push tokens, short enough to index.
MAX_TOKEN_LENGTH = 1024
#: A user's oldest devices beyond this many are dropped on registration (reinstalls leave dead tokens).
MAX_DEVICES_PER_USER = 20

#: Delivery states: ``pending`` (recorded, not sent yet), ``sending`` (claimed by a run that is sending it),
#: ``sent``, ``failed`` (permanent error, or retries ran out) and ``skipped`` (push not configured).
DELIVERY_STATES = ("pending", "sending", "sent", "failed", "skipped")
OPEN_STATES = ("pending", "sending")


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(MAX_TOKEN_LENGTH))
    platform: Mapped[str] = mapped_column(String(8))
    app_version: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        # A token identifies one app install: it belongs to whoever registered it last.
        Index("uq_devices_token", "token", unique=True),
        Index("ix_devices_user_id", "user_id"),
        CheckConstraint("platform IN ('ios', 'android', 'web')", name="platform"),
    )


class PushDelivery(Base):
    __tablename__ = "push_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The newest notification the push covers (a collapsed burst covers several; all are marked delivered
    #: in the transaction that writes this row, so no later run can regroup them into another push).
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"))
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    #: The rendered push (title, body, data, collapse and thread ids, badge): a retry sends exactly this.
    content: Mapped[dict[str, Any]] = mapped_column(JSONB)
    fcm_message_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        Index("uq_push_deliveries_notification_device", "notification_id", "device_id", unique=True),
        Index("ix_push_deliveries_device_id", "device_id"),
        Index("ix_push_deliveries_open", "user_id", postgresql_where=text("status IN ('pending', 'sending')")),
        Index("ix_push_deliveries_created_at", "created_at"),
        CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed', 'skipped')", name="status"),
    )
