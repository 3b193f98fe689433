"""Quarantine is never final: a person can release a lead (bearer token)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel, Field

from leadflow.deps import AdminDep, SessionDep
from leadflow.errors import Conflict, NotFound
from leadflow.jobs import defer_named
from leadflow.leads import repository as leads
from leadflow.models import LeadStatus
from leadflow.models.base import utcnow
from leadflow.schemas import problem_responses
from leadflow.validation.service import RELEASED

router = APIRouter(tags=["leads"], dependencies=[AdminDep])


class ReleaseRequest(BaseModel):
    reason: str | None = Field(default=None, max_length=500, description="Why it is not spam.")


class Released(BaseModel):
    lead_id: uuid.UUID
    status: str


@router.post(
    "/v1/leads/{lead_id}/release",
    response_model=Released,
    status_code=202,
    responses=problem_responses(401, 404, 409, 422),
)
async def release(
    lead_id: uuid.UUID, session: SessionDep, body: ReleaseRequest | None = None
) -> Released:
    """Take a lead out of quarantine: it goes through the pipeline again, and spam
    signals are still recorded but no longer stop it."""
    lead = await leads.get(session, lead_id, lock=True)
    if lead is None:
        raise NotFound(f"There is no lead {lead_id}.")
    if lead.status != LeadStatus.QUARANTINED.value:
        raise Conflict(f"Lead {lead_id} is {lead.status}, not quarantined.")
    now = utcnow()
    previous = lead.quality or {}
    lead.quality = {**previous, RELEASED: "admin", "released_at": now.isoformat()}
    lead.set_status(LeadStatus.RECEIVED)
    reason = body.reason if body else None
    await leads.add_event(
        session,
        lead.id,
        "lead.released",
        {"by": "admin", "reason": reason, "spam_reasons": previous.get("spam_reasons", [])},
    )
    await defer_named(
        session, "lead.process", queueing_lock=f"lead.process:{lead.id}", lead_id=str(lead.id)
    )
    return Released(lead_id=lead.id, status=lead.status)
