"""The jobs of the pipeline, registered on the queue under ``domain.verb`` names.

Two steps of one lead never run at once: every job locks the lead's row
(``SELECT ... FOR UPDATE``) for its transaction. procrastinate's own job
``lock`` is not used for this, because it also orders *waiting* jobs: a retry
scheduled hours ahead would hold back every other job of the lead.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession
from tenacity import (
    AsyncRetrying,
    retry_if_not_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from leadflow import runtime
from leadflow.config import Config
from leadflow.connectors import crm_from_config
from leadflow.connectors.base import CrmLead
from leadflow.db import transaction
from leadflow.jobs import defer, job_app
from leadflow.leads import repository as leads
from leadflow.models import Lead, LeadStatus
from leadflow.models.base import utcnow
from leadflow.pipeline import service, watchdog
from leadflow.pipeline.retry import Decision
from leadflow.pipeline.stages import STAGES, STARTABLE
from leadflow.scoring.service import rescore, rescore_decaying, rescore_outdated, score_note


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


logger = logging.getLogger(__name__)
RETRY = RecordedRetry()
# Outside effects of leads already processed go before new leads' processing, so
# that under load a lead reaches the CRM soon after it is routed.
EFFECT_PRIORITY = 1
MAINTENANCE = "maintenance"  # the queue of periodic jobs: never dead letters, the next tick runs
# lead.process jobs alone: a running one takes others that wait (fetch_job by queue).
LEADS = "leads"
BATCH = 32  # a running lead job takes waiting ones until it holds this many leads


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
        rt = runtime.current()
        async with transaction(rt.sessions) as session:
            decision = await service.record_failure(
                session,
                rt.config,
                job_id=job.id,
                task_name=job.task_name,
                args=job.task_kwargs,
                error=error,
            )
        raise AttemptFailed(error, decision) from error


@job_app.task(name="lead.process", queue=LEADS, retry=RETRY, pass_context=True)
async def process_lead(context: procrastinate.JobContext, lead_id: str) -> None:
    """Run a lead through the internal stages (validate, dedup, score, route)."""
    own = [uuid.UUID(lead_id)]
    if not await _with_waiting(context, own):
        await process(own)  # alone: a failure is the job's, retried and dead-lettered


@job_app.task(name="lead.process_batch", queue=LEADS, retry=RETRY, pass_context=True)
async def process_leads(context: procrastinate.JobContext, lead_ids: list[str]) -> None:
    """Run the new leads of one intake batch through the stages in one transaction.

    Under load the intake writes leads in batches; a job and a commit per batch
    instead of per lead is what lets one worker keep up with it. When the batch
    fails, nothing of it is kept and each lead is handed to a ``lead.process`` job
    of its own: the lead at fault retries and dead-letters alone, the others go on."""
    own = [uuid.UUID(lead_id) for lead_id in lead_ids]
    if await _with_waiting(context, own):
        return
    try:
        await process(own)
    except Exception as error:
        await _split(own, error, process_lead, "lead.process")


async def _with_waiting(context: procrastinate.JobContext, own: list[uuid.UUID]) -> bool:
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
        await process([*own, *theirs])
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


async def queue_new_leads(session: AsyncSession, lead_ids: Sequence[uuid.UUID]) -> None:
    """Queue the processing of the leads the intake writes in one transaction: a
    ``lead.process`` job for a lone lead, one ``lead.process_batch`` job for several."""
    if len(lead_ids) == 1:
        lead_id = str(lead_ids[0])
        await defer(session, process_lead, queueing_lock=f"lead.process:{lead_id}", lead_id=lead_id)
    elif lead_ids:
        await defer(session, process_leads, lead_ids=[str(lead_id) for lead_id in lead_ids])


async def process(lead_ids: Sequence[uuid.UUID]) -> None:
    """Run these leads through the stages, together, in one transaction."""
    lead_ids = list(dict.fromkeys(lead_ids))  # a lead queued twice (a replay, say) runs once
    rt = runtime.current()
    async with transaction(rt.sessions) as session:
        locked = {lead.id: lead for lead in await leads.lock_many(session, lead_ids)}
        batch = [  # in the order they came in (the locks are taken in the order of ids)
            lead
            for lead_id in lead_ids
            if (lead := locked.get(lead_id)) is not None and lead.status in STARTABLE
        ]  # the others are done already (at-least-once delivery), or erased
        if not batch:
            return
        await leads.read_submissions(session, [lead.id for lead in batch])  # all need them
        leads.hold_batch(session, batch)
        # The stages' writes (status, events, fields) go out together at the commit (a
        # lone lead's also at the routing lock), instead of a flush before each of the
        # stages' reads; in a batch a lead reads the others as the session has them.
        with session.no_autoflush:
            routed = await _run_stages(session, batch, rt.config)
        if rt.config.connectors.crm is not None and routed:
            await queue_crm_sync(session, [lead.id for lead in routed])


async def _run_stages(session: AsyncSession, batch: list[Lead], config: Config) -> list[Lead]:
    """Each stage for every lead of the batch, then the next stage: a lead of the batch
    meets the others as they are after the same stage (dedup compares it with validated
    leads), and the routing lock is taken last and held only while routing."""
    going = batch
    ids = {lead.id for lead in batch}
    for stage in STAGES:
        if len(going) > 1 and stage.prepare is not None:
            await stage.prepare(session, going, config)
        still = []
        shared = False
        for lead in going:
            if shared:
                await session.flush()  # the lead before wrote what this one reads
            started = time.perf_counter()
            result = await stage.run(session, lead, config)
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
                if other not in result.reopen and other not in ids:
                    # A returning person's new details may change their score (and the
                    # re-score updates the CRM when it does); the CRM record is updated
                    # anyway. A lead of this batch is scored and synced with them anyway.
                    await queue_rescore(session, other, why="returning lead")
                    await queue_crm_update(session, config, other)
            if result.halt is None:
                still.append(lead)  # quarantined, merged: nothing further, nothing outside
        if len(going) > 1 and stage.finish is not None:
            await stage.finish(session, going, config)
        going = still
    return [lead for lead in going if lead.status == LeadStatus.ROUTED.value]


async def _split(lead_ids: Sequence[uuid.UUID], error: Exception, task: Any, kind: str) -> None:
    """A batch job failed and kept nothing: queue each of its leads a job of its own."""
    logger.warning("%s for %d leads failed, queued one by one", kind, len(lead_ids), exc_info=error)
    error_type, message = service.describe(error)
    rt = runtime.current()
    async with transaction(rt.sessions) as session:
        for lead_id in lead_ids:
            await _queue_once(session, task, f"{kind}:{lead_id}", str(lead_id))
            await leads.add_event(
                session,
                lead_id,
                "job.batch_split",
                {"task": kind, "batch": len(lead_ids), "error": f"{error_type}: {message}"},
            )


async def _queue_once(
    session: AsyncSession, task: Any, queueing_lock: str, lead_id: str, **task_kwargs: Any
) -> None:
    """Queue a step unless the same step of the lead already waits (it will see the
    latest data when it runs). A savepoint keeps our transaction usable either way."""
    try:
        async with session.begin_nested():
            await defer(
                session,
                task,
                queueing_lock=queueing_lock,
                lead_id=lead_id,
                **task_kwargs,
            )
    except procrastinate.exceptions.AlreadyEnqueued:
        pass


async def queue_processing(session: AsyncSession, lead_id: uuid.UUID) -> None:
    """Run the lead through the stages again (it was released, unmerged ...)."""
    await _queue_once(session, process_lead, f"lead.process:{lead_id}", str(lead_id))


async def queue_crm_update(session: AsyncSession, config: Config, lead_id: uuid.UUID) -> None:
    """Bring the lead's CRM record up to date, when a CRM is configured."""
    if config.connectors.crm is not None:
        await _queue_once(session, sync_to_crm, f"crm.sync:{lead_id}", str(lead_id), update=True)


async def queue_rescore(
    session: AsyncSession, lead_id: uuid.UUID, at: datetime | None = None, why: str = "behaviour"
) -> None:
    """Score the lead again at ``at`` (debounce: while one waits, no other is queued)."""
    try:
        async with session.begin_nested():
            await defer(
                session,
                rescore_lead,
                queueing_lock=f"lead.rescore:{lead_id}",
                schedule_at=at,
                lead_id=str(lead_id),
                why=why,
            )
    except procrastinate.exceptions.AlreadyEnqueued:
        pass


@job_app.task(name="lead.rescore", queue="pipeline", retry=RETRY)
async def rescore_lead(lead_id: str, why: str = "behaviour") -> None:
    """Score a lead again (new behaviour, new rules); the timeline keeps old and new."""
    rt = runtime.current()
    async with transaction(rt.sessions) as session:
        lead = await leads.get(session, uuid.UUID(lead_id), lock=True)
        if lead is None or lead.score is None or lead.duplicate_of is not None:
            return  # not scored yet (the pipeline will), or merged into another lead
        detail = await rescore(session, lead, rt.config, why)
        if detail["score"] != detail["previous_score"] and lead.external_ids:
            await queue_crm_update(session, rt.config, lead.id)


async def queue_crm_sync(session: AsyncSession, lead_ids: Sequence[uuid.UUID]) -> None:
    """Create routed leads in the CRM: one job for one lead, one CRM call for a batch."""
    if len(lead_ids) == 1:
        await _queue_once(session, sync_to_crm, f"crm.sync:{lead_ids[0]}", str(lead_ids[0]))
    else:
        await defer(session, sync_many_to_crm, lead_ids=[str(lead_id) for lead_id in lead_ids])


@job_app.task(name="crm.sync", queue="effects", retry=RETRY, priority=EFFECT_PRIORITY)
async def sync_to_crm(lead_id: str, update: bool = False) -> None:
    """Create the lead in the CRM (once: the CRM's id is kept on the lead), or with
    ``update`` bring the CRM's record up to date (a returning person's new details)."""
    await _sync([uuid.UUID(lead_id)], update=update)


@job_app.task(name="crm.sync_batch", queue="effects", retry=RETRY, priority=EFFECT_PRIORITY)
async def sync_many_to_crm(lead_ids: list[str]) -> None:
    """Create a batch's routed leads in the CRM in one call (CRMs limit calls, not
    records: HubSpot's batch upsert takes 100 records for one call of its quota). When
    it fails, each lead gets a ``crm.sync`` job of its own, with its own retries."""
    ids = [uuid.UUID(lead_id) for lead_id in lead_ids]
    try:
        await _sync(ids, update=False)
    except Exception as error:
        await _split(ids, error, sync_to_crm, "crm.sync")


async def _sync(lead_ids: Sequence[uuid.UUID], *, update: bool) -> None:
    rt = runtime.current()
    crm = crm_from_config(rt.config)
    if crm is None:
        return
    async with transaction(rt.sessions) as session:
        todo = [
            lead
            for lead in await leads.lock_many(session, lead_ids)
            if update or crm.name not in lead.external_ids
        ]
        if not todo:
            return
        started = time.perf_counter()
        # The key makes a retry after a crash (call made, commit lost) an update, not a copy.
        keys = [f"lead:{lead.id}" for lead in todo]
        if len(todo) == 1:
            external_ids = [await crm.upsert_lead(_crm_lead(todo[0]), idempotency_key=keys[0])]
        else:
            external_ids = await crm.upsert_leads(
                [_crm_lead(lead) for lead in todo], idempotency_keys=keys
            )
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        for lead, external_id in zip(todo, external_ids, strict=True):
            event = "crm.updated" if crm.name in lead.external_ids else "crm.synced"
            lead.external_ids = {**lead.external_ids, crm.name: external_id}
            if lead.status in (LeadStatus.ROUTED.value, LeadStatus.FAILED.value):
                lead.set_status(LeadStatus.SYNCED)
            detail: dict[str, Any] = {
                "crm": crm.name,
                "external_id": external_id,
                "status": lead.status,
            }
            if len(todo) > 1:
                detail["batch"] = len(todo)
            await leads.add_event(session, lead.id, event, detail, duration_ms=duration_ms)


def _crm_lead(lead: Lead) -> CrmLead:
    return CrmLead(
        lead_id=str(lead.id),
        email=lead.email,
        phone=lead.phone,
        first_name=lead.first_name,
        last_name=lead.last_name,
        company=lead.company,
        title=lead.title,
        owner=lead.owner,
        score=lead.score,
        segment=lead.segment,
        utm_source=lead.utm_source,
        utm_campaign=lead.utm_campaign,
        note="\n".join(
            line for line in (score_note(lead), (lead.routing_reason or {}).get("sentence")) if line
        )
        or None,
    )


# Periodic jobs: procrastinate defers each tick once, whatever the number of workers.


@job_app.periodic(cron="* * * * * */15", periodic_id="recover-stalled")
@job_app.task(
    name="queue.recover_stalled",
    queue=MAINTENANCE,
    queueing_lock="queue.recover_stalled",
    pass_context=True,
)
async def recover_stalled(context: procrastinate.JobContext, timestamp: int) -> int:
    """Requeue jobs whose worker died (kill -9, lost machine): heartbeats stopped."""
    return await requeue_stalled(runtime.current(), besides=context.job.id)


async def requeue_stalled(rt: runtime.Runtime, *, besides: int | None = None) -> int:
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
@job_app.task(name="scoring.rescore_stale", queue=MAINTENANCE, queueing_lock="scoring.rescore")
async def rescore_stale(timestamp: int) -> int:
    """After the rules change, re-score the leads scored with older rules; and leads whose
    behaviour points have decayed since their last score (a day or more ago). A batch a tick."""
    rt = runtime.current()
    async with transaction(rt.sessions) as session:
        done = await rescore_outdated(session, rt.config, limit=500)
    async with transaction(rt.sessions) as session:
        return done + await rescore_decaying(session, rt.config, limit=500)


@job_app.periodic(cron="* * * * *", periodic_id="stuck-leads")
@job_app.task(name="lead.check_stuck", queue=MAINTENANCE, queueing_lock="lead.check_stuck")
async def check_stuck_leads(timestamp: int) -> int:
    """Requeue leads left in an internal stage with nothing queued for them, and alert
    on stages whose leads wait too long (the API processes run the same check)."""
    rt = runtime.current()
    findings = await watchdog.check(rt, rt.notifier)
    return 0 if findings is None else findings.requeued
