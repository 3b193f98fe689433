"""The pipeline engine's bookkeeping: failures, dead letters, replay, timers, health."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import procrastinate
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Config
from leadflow.jobs import defer
from leadflow.leads import repository as leads
from leadflow.models import JobAttempt, Lead, LeadStatus
from leadflow.models.base import utcnow
from leadflow.pipeline import repository
from leadflow.pipeline.repository import DeadLetterFilter
from leadflow.pipeline.retry import Decision, decide

MAX_ERROR_LENGTH = 2000


def lead_of(args: dict[str, Any]) -> uuid.UUID | None:
    value = args.get("lead_id")
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def describe(error: BaseException) -> tuple[str, str]:
    kind = type(error).__name__
    return kind, (str(error) or kind)[:MAX_ERROR_LENGTH]


async def record_failure(
    session: AsyncSession,
    config: Config,
    *,
    job_id: int,
    task_name: str,
    args: dict[str, Any],
    error: BaseException,
    rng: random.Random | None = None,
) -> Decision:
    """Log a failed attempt and decide: retry later, or dead letter (the lead then fails)."""
    failures = await repository.attempts_since_replay(session, job_id) + 1
    decision = decide(
        error,
        failures=failures,
        schedule=config.pipeline.schedule_for(task_name),
        jitter=config.pipeline.retry_jitter,
        now=utcnow(),
        rng=rng,
    )
    error_type, message = describe(error)
    lead_id = lead_of(args)
    session.add(
        JobAttempt(
            job_id=job_id,
            task_name=task_name,
            lead_id=lead_id,
            outcome="dead" if decision.dead else "retry",
            error_type=error_type,
            error=message,
            retry_at=decision.retry_at,
        )
    )
    if lead_id is not None and (lead := await session.get(Lead, lead_id)) is not None:
        detail = {
            "job_id": job_id,
            "task": task_name,
            "attempt": failures,
            "error": f"{error_type}: {message}",
            "decision": decision.reason,
        }
        if decision.dead:
            lead.set_status(LeadStatus.FAILED)
            await leads.add_event(session, lead_id, "job.dead_lettered", detail)
        else:
            assert decision.retry_at is not None
            detail["retry_at"] = decision.retry_at.isoformat()
            await leads.add_event(session, lead_id, "job.retry_scheduled", detail)
    return decision


MAX_STALLS = 5


async def record_stall(
    session: AsyncSession, job_id: int, task_name: str, args: dict[str, Any]
) -> None:
    """A job whose worker died: log it and requeue it. A lost worker is not the job's
    failure, but a job that takes its worker down every time (say, out of memory)
    becomes a dead letter after MAX_STALLS instead of looping forever."""
    lead_id = lead_of(args)
    stalls = await repository.attempts_since_replay(session, job_id, ("stalled",)) + 1
    dead = stalls >= MAX_STALLS
    session.add(
        JobAttempt(
            job_id=job_id,
            task_name=task_name,
            lead_id=lead_id,
            outcome="dead" if dead else "stalled",
            error_type="WorkerLost",
            error=f"the worker running this job stopped sending heartbeats ({stalls} times)",
        )
    )
    lead = await session.get(Lead, lead_id) if lead_id is not None else None
    if lead is not None:
        detail = {"job_id": job_id, "task": task_name, "stalls": stalls}
        if dead:
            lead.set_status(LeadStatus.FAILED)
        event = "job.dead_lettered" if dead else "job.recovered"
        await leads.add_event(session, lead.id, event, detail)
    if dead:
        await repository.fail(session, job_id)
    else:
        await repository.requeue(session, job_id)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    job_id: int
    kind: str
    lead_id: uuid.UUID | None
    args: dict[str, Any]
    attempts: int
    failed_at: datetime | None
    error: str | None
    history: list[JobAttempt] = field(default_factory=list)


async def list_dead_letters(
    session: AsyncSession, filters: DeadLetterFilter, *, limit: int = 100
) -> list[DeadLetter]:
    rows = await repository.dead_letters(session, filters, limit=limit)
    histories = await repository.history(session, [row.job_id for row in rows])
    return [
        DeadLetter(
            job_id=row.job_id,
            kind=row.task_name,
            lead_id=lead_of(row.args),
            args=row.args,
            attempts=row.attempts,
            failed_at=row.failed_at,
            error=f"{row.error_type}: {row.error}" if row.error_type else None,
            history=histories[row.job_id],
        )
        for row in rows
    ]


async def replay(
    session: AsyncSession,
    filters: DeadLetterFilter,
    *,
    job_id: int | None = None,
    limit: int = 10_000,
) -> list[int]:
    """Requeue dead letters (one by id, or all matching ``filters``); return their ids."""
    rows = await repository.dead_letters(session, filters, job_id=job_id, limit=limit, lock=True)
    replayed = []
    for row in rows:
        try:  # a savepoint each: a job whose step already waits again is skipped alone
            async with session.begin_nested():
                await repository.requeue(session, row.job_id)
        except IntegrityError:
            continue
        lead_id = lead_of(row.args)
        session.add(
            JobAttempt(
                job_id=row.job_id, task_name=row.task_name, lead_id=lead_id, outcome="replayed"
            )
        )
        if lead_id is not None and await session.get(Lead, lead_id) is not None:
            await leads.add_event(
                session, lead_id, "job.replayed", {"job_id": row.job_id, "task": row.task_name}
            )
        replayed.append(row.job_id)
    return replayed


async def schedule_timer(
    session: AsyncSession,
    task: procrastinate.tasks.Task[Any, Any, Any],
    *,
    at: datetime,
    lead_id: uuid.UUID,
    **task_kwargs: Any,
) -> int:
    """A job for ``lead_id`` that runs at ``at`` (an SLA deadline, say), in this transaction."""
    return await defer(session, task, schedule_at=at, lead_id=str(lead_id), **task_kwargs)


async def cancel_timers(
    session: AsyncSession, lead_id: uuid.UUID, task_names: Sequence[str]
) -> int:
    """Cancel the lead's timers that have not fired (when the lead is contacted, say)."""
    cancelled = await repository.cancel_waiting(session, lead_id, task_names)
    if cancelled:
        await leads.add_event(
            session, lead_id, "timers.cancelled", {"tasks": list(task_names), "count": cancelled}
        )
    return cancelled
