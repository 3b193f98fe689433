"""The pipeline's state at a glance: workers and their heartbeats, the queue, stalled stages.

Served by ``GET /v1/status`` and ``GET /v1/queue``, and printed by ``leadflow status``.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Config
from leadflow.pipeline import repository
from leadflow.pipeline.schemas import (
    PipelineStatus,
    StageWaiting,
    TaskHealth,
    WorkerStatus,
)


async def queue(session: AsyncSession) -> list[TaskHealth]:
    """Per task: jobs ready, scheduled, retrying, running and dead, and the oldest wait."""
    current, recent = await repository.queue_health(session)
    last_day = {row["task_name"]: row for row in recent}
    by_name = {row["task_name"]: row for row in current}
    tasks = []
    for name in sorted(set(by_name) | set(last_day)):
        now = by_name.get(name, {})
        day = last_day.get(name, {})
        oldest = now.get("oldest_ready_seconds")
        tasks.append(
            TaskHealth(
                task=name,
                ready=now.get("ready", 0),
                scheduled=now.get("scheduled", 0),
                retrying=now.get("retrying", 0),
                running=now.get("running", 0),
                dead_letters=now.get("dead_letters", 0),
                oldest_ready_seconds=float(oldest) if oldest is not None else None,
                retries_24h=day.get("retries", 0),
                dead_24h=day.get("dead", 0),
                stalled_24h=day.get("stalled", 0),
            )
        )
    return tasks


async def status(session: AsyncSession, config: Config) -> PipelineStatus:
    stalled_after = config.pipeline.stalled_after.total_seconds()
    stuck_after = config.pipeline.stuck_after
    workers = [
        WorkerStatus(
            name=row["name"],
            kind=row["kind"],
            state=row["state"],
            alive=row["state"] != "stopped" and float(row["silent_seconds"]) < stalled_after,
            last_heartbeat=row["beat_at"],
            seconds_since_heartbeat=round(float(row["silent_seconds"]), 1),
            started_at=row["started_at"],
            concurrency=row["concurrency"],
            running_jobs=row["running_jobs"],
            outages=row["outages"],
        )
        for row in await repository.workers(session)
    ]
    tasks = await queue(session)
    waiting = [
        StageWaiting(stage=w.status, leads=w.leads, oldest_since=w.oldest)
        for w in await repository.waiting_leads(session, stuck_after)
    ]
    problems = []
    if not any(worker.alive and worker.state == "running" for worker in workers):
        problems.append("no worker is running: leads are taken in but not processed")
    for stage in waiting:
        problems.append(
            f"{stage.leads} lead(s) waiting in {stage.stage!r} for more than {stuck_after}"
        )
    late = stuck_after.total_seconds()
    for task in tasks:
        if task.oldest_ready_seconds is not None and task.oldest_ready_seconds > late:
            problems.append(
                f"{task.ready} {task.task} job(s) ready, the oldest for "
                f"{task.oldest_ready_seconds:.0f} s"
            )
    return PipelineStatus(
        healthy=not problems, problems=problems, workers=workers, queue=tasks, waiting=waiting
    )
