from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.models.base import Base, utcnow


class Assignment(Base):
    """Each time a lead was given to an owner or a queue: the counters of routing read it."""

    __tablename__ = "assignments"
    __table_args__ = (Index("ix_assignments_owner_at", "owner", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), index=True
    )
    owner: Mapped[str | None] = mapped_column(String(320))  # lower case
    queue: Mapped[str | None] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(64))
    by: Mapped[str] = mapped_column(String(320), default="routing")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class RoutingTurn(Base):
    """The round-robin position of a pool (the member served last)."""

    __tablename__ = "routing_turns"

    pool: Mapped[str] = mapped_column(String(400), primary_key=True)
    position: Mapped[int] = mapped_column(default=-1)


class OwnerAbsence(Base):
    """Out of office, set through the API (the config's periods live in the config)."""

    __tablename__ = "owner_absences"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(320), index=True)  # lower case
    start: Mapped[date]
    end: Mapped[date]
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
