"""All SQL of the pipeline engine: attempts, dead letters, timers, queue health, workers.

The queue's own tables belong to procrastinate; we read them, and change them
only through procrastinate's SQL functions (retry, cancel), inside our
transactions.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db import lock_id
from leadflow.models import JobAttempt, Lead, LeadStatus, WorkerHeartbeat

INTERNAL_STAGES = (
    LeadStatus.RECEIVED,
    LeadStatus.VALIDATED,
    LeadStatus.DEDUPLICATED,
    LeadStatus.SCORED,
)


async def attempts_since_replay(
    session: AsyncSession, job_id: int, outcomes: Sequence[str] = ("retry", "dead")
) -> int:
    """How many attempts with these outcomes the job had since it was last replayed."""
    last_replay = (
        select(func.coalesce(func.max(JobAttempt.id), 0))
        .where(JobAttempt.job_id == job_id, JobAttempt.outcome == "replayed")
        .scalar_subquery()
    )
    query = select(func.count()).where(
        JobAttempt.job_id == job_id,
        JobAttempt.outcome.in_(outcomes),
        JobAttempt.id > last_replay,
    )
    return int((await session.execute(query)).scalar_one())


async def history(session: AsyncSession, job_ids: Sequence[int]) -> dict[int, list[JobAttempt]]:
    rows = await session.scalars(
        select(JobAttempt).where(JobAttempt.job_id.in_(job_ids)).order_by(JobAttempt.id)
    )
    result: dict[int, list[JobAttempt]] = {job_id: [] for job_id in job_ids}
    for row in rows:
        result[row.job_id].append(row)
    return result


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    kind: str | None = None
    lead_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def empty(self) -> bool:
        return not (self.kind or self.lead_id or self.since or self.until)


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    job_id: int
    task_name: str
    args: dict[str, Any]
    attempts: int
    failed_at: datetime | None
    error_type: str | None
    error: str | None


_DEAD_LETTERS = """
SELECT j.id, j.task_name, j.args, j.attempts, last.at AS failed_at, last.error_type, last.error
FROM procrastinate_jobs AS j
LEFT JOIN LATERAL (
    SELECT a.at, a.error_type, a.error FROM job_attempts AS a
    WHERE a.job_id = j.id AND a.outcome = 'dead' ORDER BY a.id DESC LIMIT 1
) AS last ON true
WHERE j.status = 'failed' AND j.queue_name <> 'maintenance'
  AND (CAST(:kind AS text) IS NULL OR j.task_name = :kind)
  AND (CAST(:lead_id AS text) IS NULL OR j.args->>'lead_id' = :lead_id
       OR jsonb_exists(j.args->'lead_ids', :lead_id))
  AND (CAST(:since AS timestamptz) IS NULL OR last.at >= :since)
  AND (CAST(:until AS timestamptz) IS NULL OR last.at < :until)
  AND (CAST(:job_id AS bigint) IS NULL OR j.id = :job_id)
ORDER BY last.at DESC NULLS LAST, j.id DESC
LIMIT :limit
"""


async def dead_letters(
    session: AsyncSession,
    filters: DeadLetterFilter,
    *,
    job_id: int | None = None,
    limit: int = 100,
    lock: bool = False,
) -> list[DeadLetterRow]:
    query = _DEAD_LETTERS + (" FOR UPDATE OF j SKIP LOCKED" if lock else "")
    result = await session.execute(
        text(query),
        {
            "kind": filters.kind,
            "lead_id": str(filters.lead_id) if filters.lead_id else None,
            "since": filters.since,
            "until": filters.until,
            "job_id": job_id,
            "limit": limit,
        },
    )
    return [DeadLetterRow(*row) for row in result.all()]


async def fail(session: AsyncSession, job_id: int) -> None:
    """Make a job a dead letter without running it again."""
    await session.execute(
        text("SELECT procrastinate_finish_job_v1(:id, 'failed', false)"), {"id": job_id}
    )


async def requeue(session: AsyncSession, job_id: int) -> None:
    """Put a failed (or stalled) job back in the queue, now; it keeps its id and history."""
    await session.execute(
        text("SELECT procrastinate_retry_job_v2(:id, now(), NULL, NULL, NULL)"), {"id": job_id}
    )


async def cancel_waiting(
    session: AsyncSession, lead_id: uuid.UUID, task_names: Sequence[str]
) -> int:
    """Cancel the lead's jobs that have not started (its timers); return how many."""
    result = await session.execute(
        text(
            "SELECT procrastinate_cancel_job_v1(id, false, false) FROM procrastinate_jobs "
            "WHERE status = 'todo' AND args->>'lead_id' = :lead AND task_name = ANY(:names)"
        ),
        {"lead": str(lead_id), "names": list(task_names)},
    )
    return len(result.all())


async def stuck_leads(session: AsyncSession, older_than: timedelta, limit: int = 500) -> list[Lead]:
    """Leads still in an internal stage after ``older_than`` with no job queued or running."""
    no_job = text(
        "NOT EXISTS (SELECT 1 FROM procrastinate_jobs AS j WHERE j.status IN ('todo', 'doing') "
        "AND ((j.task_name = 'lead.process' AND j.args->>'lead_id' = leads.id::text) "
        "OR (j.task_name = 'lead.process_batch' "
        "AND jsonb_exists(j.args->'lead_ids', leads.id::text))))"
    )
    query = (
        select(Lead)
        .where(
            Lead.status.in_([s.value for s in INTERNAL_STAGES]),
            Lead.status_changed_at < func.now() - older_than,
            no_job,
        )
        .order_by(Lead.status_changed_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.scalars(query)).all())


_HEALTH = """
SELECT j.task_name,
    count(*) FILTER (WHERE j.status = 'todo' AND coalesce(j.scheduled_at, now()) <= now())
        AS ready,
    count(*) FILTER (WHERE j.status = 'todo' AND j.scheduled_at > now()) AS scheduled,
    count(*) FILTER (WHERE j.status = 'todo' AND j.attempts > 0) AS retrying,
    count(*) FILTER (WHERE j.status = 'doing') AS running,
    count(*) FILTER (WHERE j.status = 'failed') AS dead_letters,
    extract(epoch FROM now() - min(coalesce(j.scheduled_at, deferred.at))
        FILTER (WHERE j.status = 'todo' AND coalesce(j.scheduled_at, now()) <= now()))
        AS oldest_ready_seconds
FROM procrastinate_jobs AS j
LEFT JOIN LATERAL (
    SELECT min(e.at) AS at FROM procrastinate_events AS e
    WHERE e.job_id = j.id AND e.type = 'deferred'
) AS deferred ON j.status = 'todo'
WHERE j.status IN ('todo', 'doing', 'failed')
GROUP BY j.task_name
ORDER BY j.task_name
"""

_RECENT = """
SELECT task_name,
    count(*) FILTER (WHERE outcome = 'retry') AS retries,
    count(*) FILTER (WHERE outcome = 'dead') AS dead,
    count(*) FILTER (WHERE outcome = 'stalled') AS stalled
FROM job_attempts WHERE at > now() - interval '24 hours'
GROUP BY task_name
"""


async def queue_health(session: AsyncSession) -> tuple[list[Any], list[Any]]:
    current = (await session.execute(text(_HEALTH))).mappings().all()
    recent = (await session.execute(text(_RECENT))).mappings().all()
    return list(current), list(recent)


async def beat(session: AsyncSession, heartbeat: WorkerHeartbeat) -> None:
    """Write a worker's heartbeat row (insert or replace), stamped with the database's clock."""
    values = {
        "name": heartbeat.name,
        "host": heartbeat.host,
        "pid": heartbeat.pid,
        "kind": heartbeat.kind,
        "state": heartbeat.state,
        "concurrency": heartbeat.concurrency,
        "queue_worker_id": heartbeat.queue_worker_id,
        "outages": heartbeat.outages,
        "started_at": heartbeat.started_at,
        "beat_at": func.now(),
    }
    statement = insert(WorkerHeartbeat).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[WorkerHeartbeat.name],
            set_={key: statement.excluded[key] for key in values if key != "name"},
        )
    )


async def forget_workers(session: AsyncSession, silent_for: timedelta) -> None:
    """Drop the rows of workers that have not been heard of for ``silent_for``."""
    await session.execute(
        delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < func.now() - silent_for)
    )


_WORKERS = text("""
SELECT w.name, w.host, w.pid, w.kind, w.state, w.concurrency, w.outages, w.started_at,
    w.beat_at, extract(epoch FROM now() - w.beat_at) AS silent_seconds,
    (SELECT count(*) FROM procrastinate_jobs AS j
     WHERE j.worker_id = w.queue_worker_id AND j.status = 'doing') AS running_jobs
FROM worker_heartbeats AS w
ORDER BY w.beat_at DESC
""")


async def workers(session: AsyncSession) -> list[Any]:
    """Every worker's row, the latest heartbeat first, with the jobs it runs now."""
    return list((await session.execute(_WORKERS)).mappings().all())


@dataclass(frozen=True, slots=True)
class Waiting:
    """Leads that have waited in one internal stage for longer than allowed."""

    status: str
    leads: int
    oldest: datetime


async def waiting_leads(session: AsyncSession, longer_than: timedelta) -> list[Waiting]:
    """Per internal stage, the leads that have been in it for more than ``longer_than``."""
    query = (
        select(Lead.status, func.count(), func.min(Lead.status_changed_at))
        .where(
            Lead.status.in_([s.value for s in INTERNAL_STAGES]),
            Lead.status_changed_at < func.now() - longer_than,
        )
        .group_by(Lead.status)
        .order_by(Lead.status)
    )
    rows = (await session.execute(query)).all()
    return [Waiting(status=str(s), leads=int(n), oldest=oldest) for s, n, oldest in rows]


async def try_lock(session: AsyncSession, scope: str) -> bool:
    """Take a transaction lock on ``scope`` unless another transaction holds it."""
    got = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": lock_id(scope)}
    )
    return bool(got)
