"""The watch over the pipeline: leads waiting too long in a stage, and leads nothing will run.

It runs as a periodic job on the workers *and* in every API process (``serve``), so
that it does not stop with the workers it is there to watch; a transaction lock
lets one process at a time do it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from leadflow.connectors.base import Alert, Notifier
from leadflow.db import transaction
from leadflow.jobs import queue_processing
from leadflow.leads import repository as leads
from leadflow.pipeline import repository
from leadflow.pipeline.repository import Waiting
from leadflow.runtime import Runtime

logger = logging.getLogger(__name__)
LOCK = "lead.check_stuck"


@dataclass(frozen=True, slots=True)
class Findings:
    requeued: int  # leads with no job that would ever run them: queued again
    waiting: list[Waiting]  # per stage, leads there for longer than pipeline.stuck_after


async def check(rt: Runtime, notifier: Notifier) -> Findings | None:
    """Requeue the leads that have no job, and raise an alert for every stage whose
    leads wait longer than ``pipeline.stuck_after``. None when another process is at it."""
    older_than = rt.config.pipeline.stuck_after
    async with transaction(rt.sessions) as session:
        if not await repository.try_lock(session, LOCK):
            return None
        orphans = await repository.stuck_leads(session, older_than)
        for lead in orphans:
            await leads.add_event(
                session,
                lead.id,
                "alert.lead_stuck",
                {
                    "status": lead.status,
                    "since": lead.status_changed_at.isoformat(),
                    "action": "requeued",
                },
            )
            await queue_processing(session, lead.id)
        waiting = await repository.waiting_leads(session, older_than)
    for stage in waiting:
        message = (
            f"{stage.leads} lead(s) waiting in stage {stage.status!r} for more than "
            f"{older_than} (the oldest since {stage.oldest:%Y-%m-%d %H:%M:%S %Z}): "
            "are the workers running? See `leadflow status`."
        )
        logger.error(message)
        detail = {"stage": stage.status, "leads": stage.leads, "since": stage.oldest.isoformat()}
        await notifier.notify(Alert(kind="pipeline_stalled", message=message, detail=detail))
    return Findings(requeued=len(orphans), waiting=waiting)


async def watch(rt: Runtime, notifier: Notifier, *, every: float = 60.0) -> None:
    """``check`` every ``every`` seconds until cancelled; a database outage skips a tick."""
    while True:
        await asyncio.sleep(every)
        try:
            await check(rt, notifier)
        except (SQLAlchemyError, OSError) as exc:
            logger.info("pipeline check skipped, the database is unreachable: %s", exc)
