"""A person decides about duplicates: merge, keep apart, undo (bearer token)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from leadflow.dedup import repository, review
from leadflow.deps import AdminDep, RuntimeDep, SessionDep
from leadflow.jobs import queue_crm_update, queue_processing
from leadflow.pipeline.stages import STARTABLE
from leadflow.schemas import problem_responses

router = APIRouter(tags=["duplicates"], dependencies=[AdminDep])

PERSON = "admin"  # who decided: the admin token is the only identity for now


class MergeRequest(BaseModel):
    into: uuid.UUID = Field(description="The lead that survives: it keeps its id and owner.")


class Merged(BaseModel):
    survivor: uuid.UUID
    merged: uuid.UUID
    changed_fields: list[str]


class NotDuplicateRequest(BaseModel):
    of: uuid.UUID = Field(description="The other lead: a different person.")


class Decided(BaseModel):
    lead_id: uuid.UUID
    other: uuid.UUID
    status: str


class Unmerged(BaseModel):
    lead_id: uuid.UUID
    status: str
    restored_from: uuid.UUID


class PairOut(BaseModel):
    id: int
    lead_id: uuid.UUID
    match_id: uuid.UUID
    probability: float | None
    summary: str
    reason: dict[str, Any]
    created_at: datetime


class PairPage(BaseModel):
    items: list[PairOut]
    next_before: int | None


class DuplicateStats(BaseModel):
    since: datetime | None
    leads: int = Field(description="Leads received (imported contacts not counted).")
    duplicates: int = Field(description="Leads merged into an existing lead.")
    duplicate_rate: float
    by_reason: dict[str, int] = Field(
        description="Merges by rule: same_email, same_phone, fuzzy, person."
    )
    possible_open: int = Field(description="Pairs waiting for a person.")


@router.post(
    "/v1/leads/{lead_id}/merge",
    response_model=Merged,
    responses=problem_responses(401, 404, 409, 422),
)
async def merge(
    lead_id: uuid.UUID, body: MergeRequest, session: SessionDep, runtime: RuntimeDep
) -> Merged:
    """Merge this lead into another (``into``), with the survivorship rules of the config.

    The lead in the path becomes ``merged`` with ``duplicate_of`` set; its
    submissions and consent follow the survivor. Undo with ``/unmerge``."""
    survivor, result = await review.merge_by_person(
        session, runtime.config, lead_id, body.into, PERSON
    )
    await queue_crm_update(session, runtime.config, survivor.id)
    return Merged(survivor=survivor.id, merged=lead_id, changed_fields=result["changed_fields"])


@router.post(
    "/v1/leads/{lead_id}/not-duplicate",
    response_model=Decided,
    responses=problem_responses(401, 404, 422),
)
async def not_duplicate(
    lead_id: uuid.UUID, body: NotDuplicateRequest, session: SessionDep
) -> Decided:
    """Two leads are different people: they are never linked or merged again."""
    await review.keep_apart(session, lead_id, body.of, PERSON)
    return Decided(lead_id=lead_id, other=body.of, status="not_duplicate")


@router.post(
    "/v1/leads/{lead_id}/unmerge",
    response_model=Unmerged,
    responses=problem_responses(401, 404, 409, 422),
)
async def unmerge(lead_id: uuid.UUID, session: SessionDep, runtime: RuntimeDep) -> Unmerged:
    """Undo the merge of this lead: it comes back with its own submissions, the
    survivor gets its old values back, and the two are kept apart from now on."""
    lead, survivor = await review.unmerge(session, lead_id, PERSON)
    if lead.status in STARTABLE:
        await queue_processing(session, lead.id)
    await queue_crm_update(session, runtime.config, survivor)
    return Unmerged(lead_id=lead.id, status=lead.status, restored_from=survivor)


@router.get("/v1/duplicates", response_model=PairPage, responses=problem_responses(401, 422))
async def possible_duplicates(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="next_before of the previous page.")
    ] = None,
) -> PairPage:
    """Pairs the matcher found likely but not certain, waiting for a person, newest first."""
    pairs = await repository.possible_pairs(session, limit, before)
    items = [
        PairOut(
            id=p.id,
            lead_id=p.lead_id,
            match_id=p.match_id,
            probability=p.probability,
            summary=str(p.reason.get("summary", "")),
            reason=p.reason,
            created_at=p.created_at,
        )
        for p in pairs
    ]
    return PairPage(items=items, next_before=items[-1].id if len(items) == limit else None)


@router.get(
    "/v1/duplicates/stats", response_model=DuplicateStats, responses=problem_responses(401, 422)
)
async def duplicate_stats(
    session: SessionDep,
    since: Annotated[datetime | None, Query(description="Count from this time (ISO 8601).")] = None,
) -> DuplicateStats:
    """The duplicate rate and why leads were merged."""
    counts = await repository.duplicate_counts(session, since)
    merged = sum(counts["merged"].values())
    return DuplicateStats(
        since=since,
        leads=counts["leads"],
        duplicates=merged,
        duplicate_rate=round(merged / counts["leads"], 4) if counts["leads"] else 0.0,
        by_reason=counts["merged"],
        possible_open=counts["possible"],
    )
