from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.models.base import Base, utcnow


class LeadMatchKey(Base):
    """A blocking key of a lead (see leadflow.dedup.matching): the index fuzzy lookups read."""

    __tablename__ = "lead_match_keys"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class MatchStatus(StrEnum):
    POSSIBLE = "possible"  # kept apart, waiting for a person
    MERGED = "merged"  # lead_id was merged into match_id
    NOT_DUPLICATE = "not_duplicate"  # a person said so: never suggested or merged again
    UNMERGED = "unmerged"  # a merge a person undid (and so not a duplicate either)


_STATUSES = ", ".join(f"'{s.value}'" for s in MatchStatus)


class LeadMatch(Base):
    """A pair of leads the matcher linked, and what became of it.

    ``lead_id`` is the newer lead (the duplicate when merged), ``match_id`` the
    existing one (the survivor). ``merge`` keeps what undoing a merge needs: the
    survivor's values before it and the duplicate's submissions and status.
    """

    __tablename__ = "lead_matches"
    __table_args__ = (
        UniqueConstraint("lead_id", "match_id", name="uq_lead_matches_pair"),
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    match_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(32))
    probability: Mapped[float | None]
    reason: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    merge: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    decided_by: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]


class Account(Base):
    """A company the team already knows (``leadflow import --accounts``), with its owner."""

    __tablename__ = "accounts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(255))
    name_key: Mapped[str] = mapped_column(String(255), index=True)
    domain: Mapped[str | None] = mapped_column(String(255), unique=True)
    owner: Mapped[str | None] = mapped_column(String(320))
    country: Mapped[str | None] = mapped_column(String(64))
    external_ids: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
