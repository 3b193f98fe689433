"""Dead letters, their replay, the queue's health and the pipeline's status (bearer token)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from leadflow.deps import AdminDep, RuntimeDep, SessionDep
from leadflow.errors import NotFound, ValidationFailed
from leadflow.pipeline import service, status
from leadflow.pipeline.repository import DeadLetterFilter
from leadflow.pipeline.schemas import (
    TASK_NAME,
    AttemptOut,
    DeadLetterOut,
    DeadLetterPage,
    PipelineStatus,
    QueueHealth,
    Replayed,
    ReplayFilter,
)
from leadflow.schemas import problem_responses

router = APIRouter(tags=["pipeline"], dependencies=[AdminDep])


def _out(letter: service.DeadLetter) -> DeadLetterOut:
    return DeadLetterOut(
        job_id=letter.job_id,
        kind=letter.kind,
        lead_id=letter.lead_id,
        args=letter.args,
        attempts=letter.attempts,
        failed_at=letter.failed_at,
        error=letter.error,
        history=[AttemptOut.model_validate(a) for a in letter.history],
    )


@router.get(
    "/v1/dead-letters", response_model=DeadLetterPage, responses=problem_responses(401, 422)
)
async def list_dead_letters(
    session: SessionDep,
    kind: Annotated[
        str | None, Query(max_length=128, pattern=TASK_NAME, description="Task, e.g. crm.sync")
    ] = None,
    lead_id: uuid.UUID | None = None,
    since: Annotated[datetime | None, Query(description="Failed at or after")] = None,
    until: Annotated[datetime | None, Query(description="Failed before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeadLetterPage:
    """Jobs that failed for good, newest first, with their last error and every attempt."""
    filters = DeadLetterFilter(kind=kind, lead_id=lead_id, since=since, until=until)
    letters = await service.list_dead_letters(session, filters, limit=limit)
    return DeadLetterPage(items=[_out(letter) for letter in letters])


@router.post(
    "/v1/dead-letters/{job_id}/replay",
    response_model=Replayed,
    status_code=202,
    responses=problem_responses(401, 404, 422),
)
async def replay_one(
    job_id: Annotated[int, Path(ge=1, le=2**63 - 1)], session: SessionDep
) -> Replayed:
    """Put one dead letter back in the queue; it keeps its id and its history."""
    replayed = await service.replay(session, DeadLetterFilter(), job_id=job_id)
    if not replayed:
        raise NotFound(f"There is no dead letter {job_id}.")
    return Replayed(replayed=replayed)


@router.post(
    "/v1/dead-letters/replay",
    response_model=Replayed,
    status_code=202,
    responses=problem_responses(401, 422),
)
async def replay_many(body: ReplayFilter, session: SessionDep) -> Replayed:
    """Put every dead letter matching the filter back in the queue (``all: true`` for all)."""
    filters = DeadLetterFilter(
        kind=body.kind, lead_id=body.lead_id, since=body.since, until=body.until
    )
    if filters.empty and not body.all:
        raise ValidationFailed(
            "Give a filter (kind, lead_id, since, until) or all: true.",
            errors=[{"field": "all", "reason": "required when no filter is given"}],
        )
    return Replayed(replayed=await service.replay(session, filters))


@router.get("/v1/queue", response_model=QueueHealth, responses=problem_responses(401))
async def queue_health(session: SessionDep) -> QueueHealth:
    """Per task: jobs ready, scheduled, retrying, running and dead, and the oldest wait."""
    return QueueHealth(tasks=await status.queue(session))


@router.get("/v1/status", response_model=PipelineStatus, responses=problem_responses(401))
async def pipeline_status(session: SessionDep, runtime: RuntimeDep) -> PipelineStatus:
    """Workers and their last heartbeats, the queue per task (depth, oldest wait), and the
    stages whose leads wait longer than ``pipeline.stuck_after``; ``healthy`` sums it up."""
    return await status.status(session, runtime.config)
