from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.models.base import Base, utcnow


class JobAttempt(Base):
    """What happened to a job besides succeeding: each failure, stall and replay.

    Together with procrastinate's own job row this is a job's history; it is kept
    when the job is replayed, so a dead letter shows every attempt it ever had.
    """

    __tablename__ = "job_attempts"
    __table_args__ = (
        CheckConstraint("outcome IN ('retry', 'dead', 'stalled', 'replayed')", name="outcome"),
        Index("ix_job_attempts_job_id_id", "job_id", "id"),
        Index("ix_job_attempts_lead_id", "lead_id"),
        Index("ix_job_attempts_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(BigInteger)
    task_name: Mapped[str] = mapped_column(String(128))
    lead_id: Mapped[uuid.UUID | None]
    outcome: Mapped[str] = mapped_column(String(16))
    error_type: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    retry_at: Mapped[datetime | None]
    at: Mapped[datetime] = mapped_column(default=utcnow)
