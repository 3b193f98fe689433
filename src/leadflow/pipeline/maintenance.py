"""The periodic jobs: stalled jobs requeued, stale scores refreshed, stuck leads found.

procrastinate defers each tick once, whatever the number of workers.
"""

from __future__ import annotations

import procrastinate

from leadflow.db import transaction
from leadflow.jobs import job_app
from leadflow.pipeline import service, watchdog
from leadflow.pipeline.attempts import MAINTENANCE
from leadflow.runtime import Runtime, runtime_of
from leadflow.scoring.service import rescore_decaying, rescore_outdated


@job_app.periodic(cron="* * * * * */15", periodic_id="recover-stalled")
@job_app.task(
    name="queue.recover_stalled",
    queue=MAINTENANCE,
    queueing_lock="queue.recover_stalled",
    pass_context=True,
)
async def recover_stalled(context: procrastinate.JobContext, timestamp: int) -> int:
    """Requeue jobs whose worker died (kill -9, lost machine): heartbeats stopped."""
    return await requeue_stalled(runtime_of(context), besides=context.job.id)


async def requeue_stalled(rt: Runtime, *, besides: int | None = None) -> int:
    """Requeue the running jobs of workers that are gone (unregistered, or silent for
    ``pipeline.stalled_after``), each in a transaction of its own; how many."""
    stalled = await rt.jobs.job_manager.get_stalled_jobs(
        seconds_since_heartbeat=rt.config.pipeline.stalled_after.total_seconds()
    )
    count = 0
    for job in stalled:
        if job.id is None or job.id == besides:
            continue
        async with transaction(rt.sessions) as session:
            await service.record_stall(session, job.id, job.task_name, job.task_kwargs)
        count += 1
    return count


@job_app.periodic(cron="*/5 * * * *", periodic_id="rescore-stale")
@job_app.task(
    name="scoring.rescore_stale",
    queue=MAINTENANCE,
    queueing_lock="scoring.rescore",
    pass_context=True,
)
async def rescore_stale(context: procrastinate.JobContext, timestamp: int) -> int:
    """After the rules change, re-score the leads scored with older rules; and leads whose
    behaviour points have decayed since their last score (a day or more ago). A batch a tick."""
    rt = runtime_of(context)
    async with transaction(rt.sessions) as session:
        done = await rescore_outdated(session, rt.config, limit=500)
    async with transaction(rt.sessions) as session:
        return done + await rescore_decaying(session, rt.config, limit=500)


@job_app.periodic(cron="* * * * *", periodic_id="stuck-leads")
@job_app.task(
    name="lead.check_stuck",
    queue=MAINTENANCE,
    queueing_lock="lead.check_stuck",
    pass_context=True,
)
async def check_stuck_leads(context: procrastinate.JobContext, timestamp: int) -> int:
    """Requeue leads left in an internal stage with nothing queued for them, and alert
    on stages whose leads wait too long (the API processes run the same check)."""
    rt = runtime_of(context)
    findings = await watchdog.check(rt, rt.notifier)
    return 0 if findings is None else findings.requeued
