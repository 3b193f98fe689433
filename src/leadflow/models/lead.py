"""The lead: one row per person who came through a form, as every stage leaves it."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

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

# A lead in one of these has been routed: it has an owner or a queue, exactly one.
PAST_ROUTING = frozenset(
    {
        LeadStatus.ROUTED,
        LeadStatus.SYNCED,
        LeadStatus.CONTACTED,
        LeadStatus.MEETING_BOOKED,
        LeadStatus.QUALIFIED,
        LeadStatus.DISQUALIFIED,
    }
)
_PAST_ROUTING = ", ".join(sorted(f"'{s.value}'" for s in PAST_ROUTING))
# Single ownership: never both an owner and a queue; once routed, one of them.
SINGLE_OWNERSHIP = (
    "(owner IS NULL OR queue IS NULL) AND "
    f"(owner IS NOT NULL OR queue IS NOT NULL OR status NOT IN ({_PAST_ROUTING}))"
)


class ConsideredOwner(TypedDict):
    """An owner routing looked at: their counts (None: not read) and why skipped."""

    owner: str
    today: int | None
    open: int | None
    skipped: str | None


class RoutingReason(TypedDict):
    """Why the lead has its owner or queue (``routing_reason``), as people read it."""

    rule: str  # a routing rule's id, or sticky, account, segment, fallback, manual, merge, import
    strategy: str | None
    owner: str | None
    queue: str | None
    candidates: list[ConsideredOwner]
    steps: list[str]  # what was tried before, and why not
    alert: str | None
    sentence: str
    by: NotRequired[str]  # routing, a person, dedup, import; stored, not in a dry run
    at: NotRequired[str]  # ISO 8601


def reason_for(
    rule: str,
    sentence: str,
    *,
    owner: str | None = None,
    queue: str | None = None,
    by: str,
) -> RoutingReason:
    """The reason of an ownership that no routing rule decided (a merge, an import)."""
    return RoutingReason(
        rule=rule,
        strategy=None,
        owner=owner,
        queue=queue,
        candidates=[],
        steps=[],
        alert=None,
        sentence=sentence,
        by=by,
        at=utcnow().isoformat(),
    )


class OwnershipError(ValueError):
    """An owner and a queue at once, or neither where one is needed."""


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        CheckConstraint("score IS NULL OR score BETWEEN 0 AND 100", name="score_range"),
        CheckConstraint(SINGLE_OWNERSHIP, name="single_ownership"),
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

    def set_ownership(
        self,
        *,
        owner: str | None = None,
        queue: str | None = None,
        reason: RoutingReason,
    ) -> None:
        """Give the lead to an owner or to a queue, with the reason: the one way the
        three are written, so they never disagree (the table's check says the same)."""
        if (owner is None) == (queue is None):
            raise OwnershipError(
                f"lead {self.id}: give exactly one of owner and queue "
                f"(given owner={owner!r}, queue={queue!r})"
            )
        self.owner = owner
        self.queue = queue
        self.routing_reason = dict(reason)

    def clear_ownership(self) -> None:
        """Back to nobody's (an undone merge that had given the lead its owner): only
        a lead that has not been routed may be without an owner and a queue."""
        if LeadStatus(self.status) in PAST_ROUTING:
            raise OwnershipError(f"lead {self.id} is {self.status}: it keeps an owner or a queue")
        self.owner = None
        self.queue = None
        self.routing_reason = None

    updated_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), default=utcnow, onupdate=utcnow
    )
