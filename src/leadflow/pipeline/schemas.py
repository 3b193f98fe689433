from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    outcome: str = Field(description="retry, dead, stalled or replayed")
    at: datetime
    error_type: str | None
    error: str | None
    retry_at: datetime | None


class DeadLetterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    job_id: int
    kind: str = Field(description="The task, e.g. crm.sync")
    lead_id: uuid.UUID | None
    args: dict[str, Any]
    attempts: int
    failed_at: datetime | None
    error: str | None = Field(description="The last error")
    history: list[AttemptOut]


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]


TASK_NAME = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$"  # domain.verb, e.g. crm.sync


class ReplayFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str | None = Field(default=None, max_length=128, pattern=TASK_NAME)
    lead_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    all: bool = Field(default=False, description="Replay every dead letter (no filter needed).")


class Replayed(BaseModel):
    replayed: list[int] = Field(description="Ids of the jobs put back in the queue")


class TaskHealth(BaseModel):
    task: str
    ready: int = Field(description="Waiting to run now")
    scheduled: int = Field(description="Waiting for a later time (timers, retries)")
    retrying: int = Field(description="Waiting after at least one failure")
    running: int
    dead_letters: int
    oldest_ready_seconds: float | None = Field(description="Age of the oldest job ready to run")
    retries_24h: int
    dead_24h: int
    stalled_24h: int


class QueueHealth(BaseModel):
    tasks: list[TaskHealth]


class WorkerStatus(BaseModel):
    name: str = Field(description="host:pid:kind")
    kind: str = Field(description="worker (leadflow worker) or embedded (inside leadflow serve)")
    state: str = Field(description="starting, running, reconnecting, stopping or stopped")
    alive: bool = Field(description="Its last heartbeat is recent (within pipeline.stalled_after)")
    last_heartbeat: datetime
    seconds_since_heartbeat: float
    started_at: datetime
    concurrency: int
    running_jobs: int
    outages: int = Field(description="Database outages it rode through since it started")


class StageWaiting(BaseModel):
    stage: str
    leads: int = Field(description="Leads in this stage for longer than pipeline.stuck_after")
    oldest_since: datetime


class PipelineStatus(BaseModel):
    healthy: bool = Field(
        description="A worker is alive, and no lead waits longer than pipeline.stuck_after"
    )
    problems: list[str]
    workers: list[WorkerStatus]
    queue: list[TaskHealth]
    waiting: list[StageWaiting]
