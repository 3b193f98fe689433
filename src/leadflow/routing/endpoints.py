"""People and routing (bearer token): assign a lead, see owners, set out-of-office, reload."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadflow.config import ConfigError
from leadflow.deps import AdminDep, RuntimeDep, SessionDep
from leadflow.errors import NotFound, ValidationFailed
from leadflow.jobs import queue_crm_update
from leadflow.routing import service
from leadflow.schemas import problem_responses
from leadflow.scoring.engine import ruleset_version

router = APIRouter(tags=["routing"], dependencies=[AdminDep])
PERSON = "admin"


class AssignRequest(BaseModel):
    owner: str | None = Field(default=None, max_length=320, description="An owner's email.")
    queue: str | None = Field(default=None, max_length=64)
    reason: str = Field(min_length=1, max_length=500, description="Why: kept on the lead.")


class Assigned(BaseModel):
    lead_id: uuid.UUID
    owner: str | None
    queue: str | None
    routing_reason: dict[str, Any]


class AbsenceIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    start: date = Field(alias="from")
    end: date = Field(alias="to")
    note: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _ordered(self) -> AbsenceIn:
        if self.end < self.start:
            raise ValueError("to is before from")
        return self


class AbsenceOut(BaseModel):
    id: int | None = Field(description="null for periods written in the config file.")
    start: date
    end: date
    note: str | None
    source: str


class OwnerOut(BaseModel):
    email: str
    name: str | None
    active: bool
    available: bool = Field(description="Could take a lead now, working hours included.")
    unavailable_because: str | None
    today: int
    open: int
    max_per_day: int | None
    max_open: int | None
    out_of_office: list[AbsenceOut]


class Reloaded(BaseModel):
    owners: int
    routing_rules: int
    scoring_rules: int
    ruleset_version: str


@router.post(
    "/v1/leads/{lead_id}/assign",
    response_model=Assigned,
    responses=problem_responses(401, 404, 422),
)
async def assign(
    lead_id: uuid.UUID, body: AssignRequest, session: SessionDep, runtime: RuntimeDep
) -> Assigned:
    """A person gives the lead to an owner or a queue; the reason records who and why."""
    lead = await service.assign_by_person(
        session,
        runtime.config,
        lead_id,
        owner=body.owner,
        queue=body.queue,
        why=body.reason,
        by=PERSON,
    )
    await queue_crm_update(session, runtime.config, lead.id)
    return Assigned(
        lead_id=lead.id,
        owner=lead.owner,
        queue=lead.queue,
        routing_reason=lead.routing_reason or {},
    )


@router.get("/v1/owners", response_model=list[OwnerOut], responses=problem_responses(401))
async def owners(session: SessionDep, runtime: RuntimeDep) -> list[OwnerOut]:
    """Every owner of the config with their load and whether they can take a lead now."""
    return [
        OwnerOut(
            email=now.owner.email,
            name=now.owner.name,
            active=now.owner.active,
            available=now.unavailable_because is None,
            unavailable_because=now.unavailable_because,
            today=now.load.today,
            open=now.load.open,
            max_per_day=now.owner.max_per_day,
            max_open=now.owner.max_open,
            out_of_office=[
                *(
                    AbsenceOut(id=None, start=a.start, end=a.end, note=a.note, source="config")
                    for a in now.owner.out_of_office
                ),
                *(
                    AbsenceOut(id=a.id, start=a.start, end=a.end, note=a.note, source="api")
                    for a in now.absences
                ),
            ],
        )
        for now in await service.owners_now(session, runtime.config)
    ]


def _known(runtime: Any, email: str) -> str:
    owner = runtime.config.owner(email)
    if owner is None:
        raise NotFound(f"{email} is not an owner.")
    return str(owner.email).lower()


@router.post(
    "/v1/owners/{email}/out-of-office",
    response_model=AbsenceOut,
    status_code=201,
    responses=problem_responses(401, 404, 422),
)
async def set_out_of_office(
    email: str, body: AbsenceIn, session: SessionDep, runtime: RuntimeDep
) -> AbsenceOut:
    """The owner is away from ``from`` to ``to`` (both included, their time zone):
    routing skips them and says so in the reason."""
    owner = _known(runtime, email)
    row = await service.add_absence(session, owner, body.start, body.end, body.note)
    return AbsenceOut(id=row.id, start=row.start, end=row.end, note=row.note, source="api")


@router.delete(
    "/v1/owners/{email}/out-of-office/{absence_id}",
    status_code=204,
    responses=problem_responses(401, 404, 422),
)
async def end_out_of_office(
    email: str, absence_id: int, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Back earlier than planned: the period is removed."""
    owner = _known(runtime, email)
    if not await service.end_absence(session, owner, absence_id):
        raise NotFound(f"{email} has no out-of-office period {absence_id}.")
    return Response(status_code=204)


@router.post("/v1/config/reload", response_model=Reloaded, responses=problem_responses(401, 422))
async def reload_config(runtime: RuntimeDep) -> Reloaded:
    """Read the config file again now (every process also notices a change within seconds).
    An invalid file is refused with its mistakes, and the running config stays."""
    try:
        config = runtime.reload_config()
    except ConfigError as exc:
        raise ValidationFailed(
            "The config file has mistakes; the running config stays.",
            errors=[
                {"field": f"{i.file}:{i.line or 0} {i.field}".strip(), "reason": i.message}
                for i in exc.issues
            ],
        ) from exc
    return Reloaded(
        owners=len(config.owners),
        routing_rules=len(config.routing.rules),
        scoring_rules=len(config.scoring.rules),
        ruleset_version=ruleset_version(config.scoring),
    )
