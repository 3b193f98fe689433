"""Leads as the API shows them: a summary in pages, one lead with its whole story."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    type: str
    at: datetime
    duration_ms: float | None
    detail: dict[str, Any]


class ConsentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    purpose: str
    status: str
    policy_version: str
    text_hash: str
    method: str
    form_key: str | None
    recorded_at: datetime


class SourceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_term: str | None
    utm_content: str | None
    landing_url: str | None
    referrer: str | None
    gclid: str | None
    fbclid: str | None
    first_touch: dict[str, Any] | None
    last_touch: dict[str, Any] | None


class LeadSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: str
    form_key: str
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    company: str | None
    title: str | None
    country: str | None
    score: int | None
    segment: str | None
    owner: str | None
    queue: str | None
    submitted_at: datetime
    created_at: datetime


class DuplicateOut(BaseModel):
    """Another lead the matcher linked to this one, and what became of the pair."""

    lead_id: uuid.UUID
    status: str = Field(description="possible, merged, not_duplicate or unmerged.")
    direction: str = Field(
        description="For a merge: into_this (lead_id merged into this lead) or this_into; "
        "else peer."
    )
    probability: float | None
    summary: str
    decided_by: str | None
    created_at: datetime
    decided_at: datetime | None


class LeadOut(LeadSummary):
    website: str | None
    street: str | None
    city: str | None
    postcode: str | None
    product_interest: str | None
    budget_range: str | None
    deadline: str | None
    message: str | None
    client_tz_offset_minutes: int | None
    status_changed_at: datetime
    updated_at: datetime
    external_ids: dict[str, Any]
    quality: dict[str, Any] | None
    score_breakdown: list[Any] | None
    ruleset_version: str | None
    routing_reason: dict[str, Any] | None
    duplicate_of: uuid.UUID | None
    duplicates: list[DuplicateOut]
    sla_state: dict[str, Any] | None
    source: SourceOut
    consent: list[ConsentOut]
    timeline: list[EventOut]
    submissions: list[uuid.UUID]


class LeadPage(BaseModel):
    items: list[LeadSummary]
    total: int
    next_cursor: str | None
