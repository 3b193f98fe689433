"""The job queue: procrastinate on the same PostgreSQL as the leads, and deferring by task name.

Jobs are deferred on the caller's own connection (``defer``), so a job commits
or rolls back together with the data that caused it: an acknowledged lead can
never exist without the job that processes it (transactional outbox).

A stage asks for a later step by the task's registered name (``defer_named`` and
the ``queue_*`` helpers below), so that no stage imports the pipeline's task
modules: the pipeline calls the stages, never the reverse.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import procrastinate
import psycopg
from procrastinate import PsycopgConnector
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Config
from leadflow.db import driver_connection

# Tasks register on this app at import time. Its connector is a placeholder:
# each runtime puts in one for its database (``queue_connector``) for its life.
# Every module that registers tasks is here: a worker, and a deferral by name,
# import them all first.
job_app = procrastinate.App(
    connector=PsycopgConnector(),
    import_paths=[
        "leadflow.pipeline.tasks",
        "leadflow.pipeline.crm",
        "leadflow.pipeline.maintenance",
        "leadflow.pipeline.alerts",
        "leadflow.pipeline.webhooks",
    ],
)


def queue_connector(url: str, *, max_size: int = 10) -> PsycopgConnector:
    """The queue's own connections (workers, and deferring outside a transaction).

    In autocommit: each of procrastinate's queries is one statement (a call of one of
    its SQL functions) sent alone on a pooled connection. Without it, psycopg wraps
    each in BEGIN and COMMIT of its own: three round trips instead of one, for every
    job's fetch and finish.

    A caller waits at most ``POOL_WAIT`` for a connection: when the database is gone, a
    stopping worker gives up on it soon, and its supervisor takes over the waiting."""
    return PsycopgConnector(
        conninfo=url, min_size=1, max_size=max_size, configure=_autocommit, timeout=POOL_WAIT
    )


POOL_WAIT = 10.0  # seconds


async def _autocommit(connection: psycopg.AsyncConnection[Any]) -> None:
    await connection.set_autocommit(True)


async def defer(
    session: AsyncSession,
    task: procrastinate.tasks.Task[Any, Any, Any],
    *,
    queueing_lock: str | None = None,
    schedule_at: datetime | None = None,
    **task_kwargs: Any,
) -> int:
    """Queue ``task`` inside ``session``'s transaction; it runs once that commits
    (at ``schedule_at``, when given). ``queueing_lock`` keeps a second copy out
    of the queue while one is waiting."""
    connection = await driver_connection(session)
    deferrer = task.configure(
        connection=connection,
        queueing_lock=queueing_lock,
        schedule_at=schedule_at,
    )
    return await deferrer.defer_async(**task_kwargs)


async def defer_named(
    session: AsyncSession,
    name: str,
    *,
    queueing_lock: str | None = None,
    schedule_at: datetime | None = None,
    **task_kwargs: Any,
) -> int:
    """``defer`` by the task's registered name: the caller need not import the task
    (a stage asks for a later step without reaching up into the pipeline's tasks)."""
    connection = await driver_connection(session)
    deferrer = job_app.configure_task(
        name,
        allow_unknown=False,
        connection=connection,
        queueing_lock=queueing_lock,
        schedule_at=schedule_at,
    )
    return await deferrer.defer_async(**task_kwargs)


async def defer_once(
    session: AsyncSession,
    name: str,
    queueing_lock: str,
    *,
    schedule_at: datetime | None = None,
    **task_kwargs: Any,
) -> bool:
    """``defer_named`` unless a job with ``queueing_lock`` already waits (it will see the
    latest data when it runs); False then. A savepoint keeps the transaction usable."""
    try:
        async with session.begin_nested():
            await defer_named(
                session, name, queueing_lock=queueing_lock, schedule_at=schedule_at, **task_kwargs
            )
    except procrastinate.exceptions.AlreadyEnqueued:
        return False
    return True


async def queue_processing(session: AsyncSession, lead_id: uuid.UUID) -> None:
    """Run the lead through the stages again (it was released, unmerged, reopened ...)."""
    await defer_once(session, "lead.process", f"lead.process:{lead_id}", lead_id=str(lead_id))


async def queue_crm_update(session: AsyncSession, config: Config, lead_id: uuid.UUID) -> None:
    """Bring the lead's CRM record up to date, when a CRM is configured."""
    if config.connectors.crm is not None:
        await defer_once(
            session, "crm.sync", f"crm.sync:{lead_id}", lead_id=str(lead_id), update=True
        )


async def queue_rescore(
    session: AsyncSession, lead_id: uuid.UUID, at: datetime | None = None, why: str = "behaviour"
) -> None:
    """Score the lead again at ``at`` (debounce: while one waits, no other is queued)."""
    await defer_once(
        session,
        "lead.rescore",
        f"lead.rescore:{lead_id}",
        schedule_at=at,
        lead_id=str(lead_id),
        why=why,
    )


async def queue_webhooks(
    session: AsyncSession, config: Config, event: str, lead_id: uuid.UUID, data: dict[str, Any]
) -> None:
    """A ``webhook.deliver`` job per endpoint subscribed to ``event``, in ``session``'s
    transaction: the event and its deliveries commit together, or neither does."""
    for index, endpoint in enumerate(config.connectors.webhooks):
        if event in endpoint.events:
            await defer_named(
                session,
                "webhook.deliver",
                endpoint=index,
                url=endpoint.url,
                msg_id=f"msg_{uuid.uuid4().hex}",
                event=event,
                lead_id=str(lead_id),
                data=data,
            )
