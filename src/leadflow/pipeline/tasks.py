"""The lead jobs: a lead (or a batch of them) through the stages, and a lead scored again.

Two steps of one lead never run at once: every job locks the lead's row
(``SELECT ... FOR UPDATE``) for its transaction. procrastinate's own job
``lock`` is not used for this, because it also orders *waiting* jobs: a retry
scheduled hours ahead would hold back every other job of the lead.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession
from tenacity import (
    AsyncRetrying,
    retry_if_not_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from leadflow.config import Config
from leadflow.db import transaction
from leadflow.jobs import job_app, queue_crm_update, queue_processing, queue_rescore
from leadflow.leads import repository as leads
from leadflow.models import Lead, LeadStatus
from leadflow.models.base import utcnow
from leadflow.pipeline.attempts import LEADS, RETRY, split
from leadflow.pipeline.crm import queue_crm_sync
from leadflow.pipeline.stages import STAGES, STARTABLE
from leadflow.runtime import Runtime, runtime_of
from leadflow.scoring.service import rescore
from leadflow.stage import Batch

logger = logging.getLogger(__name__)
BATCH = 32  # a running lead job takes waiting ones until it holds this many leads


@job_app.task(name="lead.process", queue=LEADS, retry=RETRY, pass_context=True)
async def process_lead(context: procrastinate.JobContext, lead_id: str) -> None:
    """Run a lead through the internal stages (validate, dedup, score, route)."""
    rt = runtime_of(context)
    own = [uuid.UUID(lead_id)]
    if not await _with_waiting(rt, context, own):
        await process(rt, own)  # alone: a failure is the job's, retried and dead-lettered


@job_app.task(name="lead.process_batch", queue=LEADS, retry=RETRY, pass_context=True)
async def process_leads(context: procrastinate.JobContext, lead_ids: list[str]) -> None:
    """Run the new leads of one intake batch through the stages in one transaction.

    Under load the intake writes leads in batches; a job and a commit per batch
    instead of per lead is what lets one worker keep up with it. When the batch
    fails, nothing of it is kept and each lead is handed to a ``lead.process`` job
    of its own: the lead at fault retries and dead-letters alone, the others go on."""
    rt = runtime_of(context)
    own = [uuid.UUID(lead_id) for lead_id in lead_ids]
    if await _with_waiting(rt, context, own):
        return
    try:
        await process(rt, own)
    except Exception as error:
        await split(rt, own, error, "lead.process")


async def _with_waiting(
    rt: Runtime, context: procrastinate.JobContext, own: list[uuid.UUID]
) -> bool:
    """Take the other lead jobs ready in the queue (a backlog: the worker is behind)
    and process their leads with ours in one transaction; True when that went well.

    A backlog then drains in batches, however its leads came in. The jobs taken are
    this worker's (``doing``, under its heartbeat: requeued if it dies) and are
    finished after the commit. When the run fails they are given back to the queue
    untouched, and False tells the caller to process its own leads alone."""
    manager = context.app.job_manager
    worker_id = context.job.worker_id
    if worker_id is None or context.job.attempts > 0:
        return False  # a job run before (failed, stalled, given back) runs alone
    taken: list[procrastinate.jobs.Job] = []
    theirs: list[uuid.UUID] = []
    back: list[procrastinate.jobs.Job] = []
    while len(own) + len(theirs) < BATCH:
        job = await manager.fetch_job(queues=[LEADS], worker_id=worker_id)
        if job is None:
            break
        if job.attempts > 0:
            back.append(job)  # ran before: maybe the lead that kills its worker
            continue
        taken.append(job)
        theirs += _leads_of(job)
    await _settle(manager, back, done=False)
    if not taken:
        return False
    try:
        await process(rt, [*own, *theirs])
    except Exception:
        logger.info("%d waiting lead jobs failed together: given back", len(taken), exc_info=True)
        await _settle(manager, taken, done=False)
        return False
    await _settle(manager, taken, done=True)
    return True


async def _settle(
    manager: procrastinate.manager.JobManager, jobs: list[procrastinate.jobs.Job], *, done: bool
) -> None:
    """Finish the jobs taken (``done``) or give them back to the queue, every one of them:
    a job left ``doing`` under a live worker is not recovered until that worker stops."""
    for job in jobs:
        if not done:
            try:
                await _give_back(manager, job)
                continue
            except procrastinate.exceptions.UniqueViolation:
                # The same step of its lead waits again (its queueing lock): that copy runs.
                logger.warning("job %s not given back: finished, its copy waits", job.id)
            except Exception:
                # Never finish a job whose leads were not processed: left ``doing``, it is
                # requeued when this worker's run ends (the database went away) or dies.
                logger.exception("job %s not given back: it stays doing until requeued", job.id)
                continue
        try:
            await manager.finish_job(
                job, status=procrastinate.jobs.Status.SUCCEEDED, delete_job=False
            )
        except Exception:
            logger.exception("job %s stays doing until this worker stops", job.id)


async def _give_back(
    manager: procrastinate.manager.JobManager, job: procrastinate.jobs.Job
) -> None:
    """Put a taken job back in the queue, trying again for a while when the database is
    unreachable (a restart takes seconds); a queueing-lock conflict is raised at once."""
    async for attempt in AsyncRetrying(
        wait=wait_random_exponential(multiplier=0.25, max=2),
        stop=stop_after_delay(15),
        retry=retry_if_not_exception_type(procrastinate.exceptions.UniqueViolation),
        reraise=True,
    ):
        with attempt:
            await manager.retry_job(job, retry_at=utcnow())


def _leads_of(job: procrastinate.jobs.Job) -> list[uuid.UUID]:
    args = job.task_kwargs
    ids = args["lead_ids"] if job.task_name == "lead.process_batch" else [args["lead_id"]]
    assert isinstance(ids, list)
    return [uuid.UUID(str(lead_id)) for lead_id in ids]


async def process(rt: Runtime, lead_ids: Sequence[uuid.UUID]) -> None:
    """Run these leads through the stages, together, in one transaction."""
    lead_ids = list(dict.fromkeys(lead_ids))  # a lead queued twice (a replay, say) runs once
    async with transaction(rt.sessions) as session:
        locked = {lead.id: lead for lead in await leads.lock_many(session, lead_ids)}
        going = [  # in the order they came in (the locks are taken in the order of ids)
            lead
            for lead_id in lead_ids
            if (lead := locked.get(lead_id)) is not None and lead.status in STARTABLE
        ]  # the others are done already (at-least-once delivery), or erased
        if not going:
            return
        batch = leads.hold(session, going)
        await leads.read_submissions(session, batch, list(batch.leads))  # all need them
        # The stages' writes (status, events, fields) go out together at the commit (a
        # lone lead's also at the routing lock), instead of a flush before each of the
        # stages' reads; in a batch a lead reads the others as the session has them.
        with session.no_autoflush:
            routed = await _run_stages(session, batch, rt.config)
        if rt.config.connectors.crm is not None and routed:
            await queue_crm_sync(session, [lead.id for lead in routed])


async def _run_stages(session: AsyncSession, batch: Batch, config: Config) -> list[Lead]:
    """Each stage for every lead of the batch, then the next stage: a lead of the batch
    meets the others as they are after the same stage (dedup compares it with validated
    leads), and the routing lock is taken last and held only while routing."""
    going = list(batch.leads.values())
    for stage in STAGES:
        if len(going) > 1 and stage.prepare is not None:
            await stage.prepare(session, batch, going, config)
        still = []
        shared = False
        for lead in going:
            if shared:
                await session.flush()  # the lead before wrote what this one reads
            started = time.perf_counter()
            result = await stage.run(session, batch, lead, config)
            shared = result.shared
            status = result.halt or stage.leaves
            lead.set_status(status)
            await leads.add_event(
                session,
                lead.id,
                f"lead.{stage.name}",
                {**result.detail, "status": status.value},
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )
            for other in result.reopen:
                await queue_processing(session, other)
            for other in result.refresh:
                if other not in result.reopen and other not in batch.leads:
                    # A returning person's new details may change their score (and the
                    # re-score updates the CRM when it does); the CRM record is updated
                    # anyway. A lead of this batch is scored and synced with them anyway.
                    await queue_rescore(session, other, why="returning lead")
                    await queue_crm_update(session, config, other)
            if result.halt is None:
                still.append(lead)  # quarantined, merged: nothing further, nothing outside
        if len(going) > 1 and stage.finish is not None:
            await stage.finish(session, batch, going, config)
        going = still
    return [lead for lead in going if lead.status == LeadStatus.ROUTED.value]


@job_app.task(name="lead.rescore", queue="pipeline", retry=RETRY, pass_context=True)
async def rescore_lead(
    context: procrastinate.JobContext, lead_id: str, why: str = "behaviour"
) -> None:
    """Score a lead again (new behaviour, new rules); the timeline keeps old and new."""
    rt = runtime_of(context)
    async with transaction(rt.sessions) as session:
        lead = await leads.get(session, uuid.UUID(lead_id), lock=True)
        if lead is None or lead.score is None or lead.duplicate_of is not None:
            return  # not scored yet (the pipeline will), or merged into another lead
        detail = await rescore(session, lead, rt.config, why)
        if detail["score"] != detail["previous_score"] and lead.external_ids:
            await queue_crm_update(session, rt.config, lead.id)
