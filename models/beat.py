"""The ledger of periodic job runs: PostgreSQL remembers when each beat job last started, so a job runs at
most once per period whatever happens to beat (killed and restarted with a stale schedule file, two beats
during a deploy) or to Redis (its locks gone with its data)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base


class BeatRun(Base):
    __tablename__ = "beat_runs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_beat_runs_job_started", "job", "started_at"),)
