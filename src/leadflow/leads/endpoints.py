"""The read API for leads (bearer token)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from leadflow.deps import AdminDep, SessionDep
from leadflow.leads import service
from leadflow.leads.schemas import LeadOut, LeadPage
from leadflow.models import LeadStatus
from leadflow.schemas import problem_responses

router = APIRouter(prefix="/v1/leads", tags=["leads"], dependencies=[AdminDep])


@router.get("", response_model=LeadPage, responses=problem_responses(401, 422))
async def list_leads(
    session: SessionDep,
    status: Annotated[LeadStatus | None, Query(description="Only leads in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=512, description="next_cursor of the previous page.")
    ] = None,
    email: Annotated[
        str | None,
        Query(max_length=320, description="Only the live leads of this email address."),
    ] = None,
) -> LeadPage:
    """Leads, newest first, a page at a time."""
    return await service.list_leads(
        session, status=status.value if status else None, limit=limit, cursor=cursor, email=email
    )


@router.get("/{lead_id}", response_model=LeadOut, responses=problem_responses(401, 404, 422))
async def get_lead(lead_id: uuid.UUID, session: SessionDep) -> LeadOut:
    """One lead: its fields, source, consent ledger and timeline."""
    return await service.get_lead(session, lead_id)
