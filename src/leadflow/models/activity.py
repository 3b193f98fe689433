from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.models.base import Base, utcnow


class Activity(Base):
    """A tracked ``page``, ``track`` or ``identify`` call (Segment's spec), by a known
    lead or by an anonymous visitor who may become one."""

    __tablename__ = "activities"
    __table_args__ = (
        CheckConstraint("type IN ('page', 'track', 'identify')", name="type"),
        Index("ix_activities_lead_id_occurred_at", "lead_id", "occurred_at"),
        Index("ix_activities_anonymous_id", "anonymous_id"),
        Index("uq_activities_message_id", "message_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16))
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    anonymous_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    email_key: Mapped[str | None] = mapped_column(String(320), index=True)
    name: Mapped[str | None] = mapped_column(String(255))  # track: the event name
    url: Mapped[str | None] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(String(2048))
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
