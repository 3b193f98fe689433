"""The lead: one row per person who came through a form, as every stage leaves it."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, MappedColumn, mapped_column

from leadflow.fields import LEAD_FIELDS, Kind
from leadflow.models.base import Base, new_id, utcnow


class LeadStatus(StrEnum):
    """Where a lead is. The pipeline moves it left to right; side exits and outcomes follow."""

    RECEIVED = "received"
    VALIDATED = "validated"
    DEDUPLICATED = "deduplicated"
    SCORED = "scored"
    ROUTED = "routed"
    SYNCED = "synced"
    QUARANTINED = "quarantined"
    FAILED = "failed"
    MERGED = "merged"
    IMPORTED = "imported"  # an existing contact loaded with `leadflow import`
    CONTACTED = "contacted"
    MEETING_BOOKED = "meeting_booked"
    QUALIFIED = "qualified"
    DISQUALIFIED = "disqualified"


def field_column(name: str) -> MappedColumn[Any]:
    """The column of a lead field, as long as fields.py lets the field be."""
    spec = LEAD_FIELDS[name]
    return mapped_column(Text if spec.kind is Kind.LONG_TEXT else String(spec.max_length))


_STATUSES = ", ".join(f"'{s.value}'" for s in LeadStatus)


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        CheckConstraint("score IS NULL OR score BETWEEN 0 AND 100", name="score_range"),
        Index("ix_leads_created_at_id", "created_at", "id"),
        Index("ix_leads_status_created_at", "status", "created_at"),
        # routing: the most recent lead of the same company that has an owner
        Index(
            "ix_leads_owned_company_domain_updated_at",
            "company_domain",
            "updated_at",
            postgresql_where=text("owner IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    form_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32), default=LeadStatus.RECEIVED.value)
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    # identity
    email: Mapped[str | None] = field_column("email")
    phone: Mapped[str | None] = field_column("phone")
    first_name: Mapped[str | None] = field_column("first_name")
    last_name: Mapped[str | None] = field_column("last_name")
    company: Mapped[str | None] = field_column("company")
    title: Mapped[str | None] = field_column("title")
    country: Mapped[str | None] = field_column("country")
    website: Mapped[str | None] = field_column("website")
    street: Mapped[str | None] = field_column("street")
    city: Mapped[str | None] = field_column("city")
    postcode: Mapped[str | None] = field_column("postcode")

    # source (last touch on the columns; both touches in first_touch/last_touch)
    utm_source: Mapped[str | None] = field_column("utm_source")
    utm_medium: Mapped[str | None] = field_column("utm_medium")
    utm_campaign: Mapped[str | None] = field_column("utm_campaign")
    utm_term: Mapped[str | None] = field_column("utm_term")
    utm_content: Mapped[str | None] = field_column("utm_content")
    landing_url: Mapped[str | None] = field_column("landing_url")
    referrer: Mapped[str | None] = field_column("referrer")
    gclid: Mapped[str | None] = field_column("gclid")
    fbclid: Mapped[str | None] = field_column("fbclid")
    first_touch: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    last_touch: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    # timing
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    client_tz_offset_minutes: Mapped[int | None]

    # context
    product_interest: Mapped[str | None] = field_column("product_interest")
    budget_range: Mapped[str | None] = field_column("budget_range")
    deadline: Mapped[str | None] = field_column("deadline")
    message: Mapped[str | None] = field_column("message")

    # operations
    external_ids: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    quality: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    score: Mapped[int | None]
    segment: Mapped[str | None] = mapped_column(String(32))
    score_breakdown: Mapped[list[Any] | None] = mapped_column(JSONB)
    ruleset_version: Mapped[str | None] = mapped_column(String(64))
    owner: Mapped[str | None] = mapped_column(String(320), index=True)
    queue: Mapped[str | None] = mapped_column(String(64))
    routing_reason: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    duplicate_of: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), index=True
    )
    # match keys, set by the dedup step (see leadflow.dedup)
    email_key: Mapped[str | None] = mapped_column(String(320), index=True)
    phone_key: Mapped[str | None] = mapped_column(String(32), index=True)
    # the company's domain (from a business email or the website), set by validation:
    # routing finds recent leads of the same company through it
    company_domain: Mapped[str | None] = mapped_column(String(255))
    sla_state: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)

    def set_status(self, status: LeadStatus) -> None:
        self.status = status.value
        self.status_changed_at = utcnow()

    updated_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), default=utcnow, onupdate=utcnow
    )
