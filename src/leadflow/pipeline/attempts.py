"""How the pipeline's jobs fail: every failed attempt recorded, its retry decided, batches split.

The schedule of retries lives in the config (``pipeline.retry``); the worker
middleware ``record_failures`` applies it to each failed attempt, in a transaction
of its own, and ``RecordedRetry`` hands procrastinate the decision it took.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import procrastinate

from leadflow.db import transaction
from leadflow.jobs import defer_named, defer_once
from leadflow.leads import repository as leads
from leadflow.pipeline import service
from leadflow.pipeline.retry import Decision
from leadflow.runtime import Runtime, runtime_of

logger = logging.getLogger(__name__)

# Outside effects of leads already processed go before new leads' processing, so
# that under load a lead reaches the CRM soon after it is routed.
EFFECT_PRIORITY = 1
MAINTENANCE = "maintenance"  # the queue of periodic jobs: never dead letters, the next tick runs
# lead.process jobs alone: a running one takes others that wait (fetch_job by queue).
LEADS = "leads"


class AttemptFailed(Exception):
    """A job's failure, recorded, with the decision taken about it."""

    def __init__(self, error: BaseException, decision: Decision) -> None:
        super().__init__(f"{type(error).__name__}: {error} ({decision.reason})")
        self.decision = decision


class RecordedRetry(procrastinate.BaseRetryStrategy):
    """Applies the decision ``record_failures`` took; the schedule lives in the config."""

    def get_retry_decision(
        self, *, exception: BaseException, job: procrastinate.jobs.Job
    ) -> procrastinate.RetryDecision | None:
        if isinstance(exception, AttemptFailed):
            if exception.decision.retry_at is None:
                return None
            return procrastinate.RetryDecision(retry_at=exception.decision.retry_at)
        if isinstance(exception, asyncio.CancelledError):
            # Cancelled by a stopping worker after its grace period: its transaction
            # rolled back, nothing of it happened; another worker runs it at once.
            return procrastinate.RetryDecision(retry_in={"seconds": 0})
        # Failures the middleware did not see (the database was unreachable): soon again.
        return procrastinate.RetryDecision(retry_in={"seconds": 30})


RETRY = RecordedRetry()


async def record_failures(call_next: Any, context: procrastinate.JobContext, worker: Any) -> Any:
    """Worker middleware: log every failed attempt and decide its retry, in its own transaction."""
    try:
        return await call_next()
    except Exception as error:
        if isinstance(error, procrastinate.exceptions.JobAborted):
            raise
        job = context.job
        assert job.id is not None
        if job.queue == MAINTENANCE:
            raise  # periodic: logged by procrastinate, and the next tick runs it again
        rt = runtime_of(context)
        async with transaction(rt.sessions) as session:
            decision = await service.record_failure(
                session,
                rt.config,
                job_id=job.id,
                task_name=job.task_name,
                args=job.task_kwargs,
                error=error,
            )
            if decision.dead and job.task_name != "alert.send":
                detail = {"job_id": job.id, "task": job.task_name, "error": str(error)[:500]}
                message = f"job {job.task_name} #{job.id} failed for good: {decision.reason}"
                await defer_named(
                    session, "alert.send", kind="dead_letter", message=message, detail=detail
                )
        raise AttemptFailed(error, decision) from error


async def split(rt: Runtime, lead_ids: Sequence[uuid.UUID], error: Exception, task: str) -> None:
    """A batch job failed and kept nothing: queue each of its leads a ``task`` job of its own
    (the lead at fault retries and dead-letters alone, the others go on)."""
    logger.warning("%s for %d leads failed, queued one by one", task, len(lead_ids), exc_info=error)
    error_type, message = service.describe(error)
    async with transaction(rt.sessions) as session:
        for lead_id in lead_ids:
            await defer_once(session, task, f"{task}:{lead_id}", lead_id=str(lead_id))
            await leads.add_event(
                session,
                lead_id,
                "job.batch_split",
                {"task": task, "batch": len(lead_ids), "error": f"{error_type}: {message}"},
            )
