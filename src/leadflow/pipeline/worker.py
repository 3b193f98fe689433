"""Running a worker that rides through database outages: ``leadflow worker`` and ``serve``'s own.

procrastinate's worker stops by design when it loses the database (its listener,
heartbeat or job fetch fails). ``WorkerSupervisor`` runs it, and when it stops on
its own, waits for the database with capped, jittered backoff and starts it again:
one log line when the database goes, one when it is back, however long it takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, TypeVar

import procrastinate
import psycopg
from procrastinate.worker import Worker
from sqlalchemy.exc import SQLAlchemyError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential

from leadflow import migrate
from leadflow.db import transaction
from leadflow.models import WorkerHeartbeat
from leadflow.models.base import utcnow
from leadflow.pipeline import repository
from leadflow.pipeline.attempts import record_failures
from leadflow.pipeline.maintenance import requeue_stalled
from leadflow.runtime import Runtime, worker_context

logger = logging.getLogger("leadflow.worker")
T = TypeVar("T")
State = Literal["starting", "running", "reconnecting", "stopping", "stopped"]

# What an unreachable database looks like from here: refused or dropped connections,
# "the database system is shutting down", "too many clients", a pool timing out.
UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    psycopg.OperationalError,
    procrastinate.exceptions.ConnectorException,
    SQLAlchemyError,
)
# Between attempts to reach the database: a random wait in a window that doubles from
# 0.25 s up to 5 s, so that workers coming back together do not knock at one instant,
# and a worker notices within 5 s that the database is back.
RECONNECT_WAIT = wait_random_exponential(multiplier=0.25, max=5)
SCHEMA_POLL_SECONDS = 2.0
FORGET_WORKERS_AFTER = timedelta(days=7)  # heartbeat rows of workers gone this long go


async def wait_for_database(url: str) -> float:
    """Return once the database takes a connection; the seconds it took."""
    started = time.monotonic()
    async for attempt in AsyncRetrying(
        wait=RECONNECT_WAIT, retry=retry_if_exception_type(UNREACHABLE), reraise=True
    ):
        with attempt:
            await migrate.schema_revision(url)
    return time.monotonic() - started


async def wait_for_schema(url: str) -> None:
    """Return once the database's schema is the one this code needs; say once why it waits."""
    said = False
    while True:
        await wait_for_database(url)
        try:
            revision = await migrate.schema_revision(url)
        except UNREACHABLE:
            continue
        waiting = migrate.waits_for(revision)
        if waiting is None:
            return
        if not said:
            logger.warning(
                "waiting for the database schema (%s): run `leadflow migrate`, start "
                "`leadflow serve`, or start this worker with --migrate",
                waiting,
            )
            said = True
        await asyncio.sleep(SCHEMA_POLL_SECONDS)


class _OutageLog(logging.Filter):
    """Keeps an outage to the supervisor's own two lines: procrastinate's records of the
    lost connection (a traceback per side task) are dropped, the first of them marking
    the start of the outage, and so are psycopg's pool warnings (one per reconnection
    attempt) while the outage lasts."""

    LOGGERS = ("procrastinate.utils", "psycopg.pool")

    def __init__(self, supervisor: WorkerSupervisor) -> None:
        super().__init__()
        self.supervisor = supervisor

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "psycopg.pool":
            return self.supervisor.down_since is None
        error = record.exc_info[1] if record.exc_info else None
        action = str(getattr(record, "action", ""))
        if isinstance(error, UNREACHABLE) and (
            action == "side_task_failed" or action.endswith("_error")
        ):
            self.supervisor.lost(error)
            return False
        return True

    def attach(self, worker_logger: str) -> None:
        for name in (*self.LOGGERS, worker_logger):
            logging.getLogger(name).addFilter(self)

    def detach(self, worker_logger: str) -> None:
        for name in (*self.LOGGERS, worker_logger):
            logging.getLogger(name).removeFilter(self)


class WorkerSupervisor:
    """Runs procrastinate's worker until ``stop()``, starting it again after outages.

    ``state`` says what it does now; ``running`` is what ``/readyz`` reports."""

    def __init__(
        self,
        rt: Runtime,
        url: str,
        *,
        kind: Literal["worker", "embedded"],
        concurrency: int,
        alive_file: Path | None = None,
    ) -> None:
        self.rt = rt
        self.url = url
        self.kind = kind
        self.concurrency = concurrency
        self.alive_file = alive_file
        self.name = f"{socket.gethostname()}:{os.getpid()}:{kind}"
        self.state: State = "starting"
        self.outages = 0
        self.started_at = utcnow()
        self.down_since: datetime | None = None
        self._stop = asyncio.Event()
        self._worker: Worker | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    def stop(self) -> None:
        """Stop fetching jobs; running ones get ``pipeline.stop_grace`` to finish."""
        self._stop.set()

    def lost(self, error: BaseException) -> None:
        """The database went away: say so once, at once (the worker takes a while to stop)."""
        if self.down_since is not None:
            return
        self.down_since = utcnow()
        self.state = "reconnecting"
        self.outages += 1
        message = str(error).strip().splitlines()
        logger.warning(
            "worker %s lost the database at %s (%s%s); reconnecting",
            self.name,
            f"{self.down_since:%H:%M:%S}",
            type(error).__name__,
            f": {message[0]}" if message else "",
        )

    async def run(self) -> None:
        beats = asyncio.create_task(self._beat(), name=f"{self.name} heartbeat")
        quiet = _OutageLog(self)
        quiet.attach(f"procrastinate.worker.{self.kind}")
        try:
            while not self._stop.is_set():
                ended = await self._run_worker()
                if ended is None or self._stop.is_set():
                    break
                await self._reconnect(ended)
        finally:
            quiet.detach(f"procrastinate.worker.{self.kind}")
            self.state = "stopped"
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats
            with contextlib.suppress(*UNREACHABLE):
                await self._write_beat()

    def _new_worker(self) -> Worker:
        # procrastinate's Worker runs only the tasks imported so far, and nothing this
        # process imported need be a task module: the jobs are deferred by name.
        self.rt.jobs.perform_import_paths()  # type: ignore[no-untyped-call]
        pipeline = self.rt.config.pipeline
        return Worker(
            app=self.rt.jobs,
            name=self.kind,
            concurrency=self.concurrency,
            wait=True,
            install_signal_handlers=False,  # ours: stop() on SIGTERM, see leadflow worker
            worker_middleware=[record_failures],
            additional_context=worker_context(self.rt),
            update_heartbeat_interval=pipeline.heartbeat.total_seconds(),
            stalled_worker_timeout=pipeline.stalled_after.total_seconds(),
            shutdown_graceful_timeout=pipeline.stop_grace.total_seconds(),
            listen_notify=True,
        )

    async def _run_worker(self) -> BaseException | None:
        """Run one worker until it stops: None when asked to, else why it stopped."""
        worker = self._worker = self._new_worker()
        running = asyncio.create_task(worker.run(), name=f"{self.name} worker")  # type: ignore[no-untyped-call]
        asked = asyncio.create_task(self._stop.wait())
        self.state = "running"
        await asyncio.wait({running, asked}, return_when=asyncio.FIRST_COMPLETED)
        asked.cancel()
        if not running.done():
            self.state = "stopping"
            worker.stop()  # type: ignore[no-untyped-call]  # running jobs finish, or are cancelled after the grace period
            with contextlib.suppress(*UNREACHABLE):
                await running
            return None
        error = running.exception()
        return error if error is not None else ConnectionError("the worker stopped on its own")

    async def _reconnect(self, error: BaseException) -> None:
        """Wait for the database (or for stop()), then give back what the last run held."""
        if not isinstance(error, UNREACHABLE):  # a bug, not an outage: no tight loop
            logger.error(
                "worker %s stopped: %r; starting it again", self.name, error, exc_info=error
            )
            self.state = "reconnecting"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 5)
                return  # stop() came first
        else:
            self.lost(error)
        down_at = self.down_since
        if await self._until_stopped(wait_for_database(self.url)) is None:
            return
        back_at = utcnow()
        with contextlib.suppress(*UNREACHABLE):
            await self.rt.reopen_queue()
        await self._release()
        self.down_since = None
        if down_at is not None:
            logger.warning(
                "database outage: worker %s down at %s, back at %s, after %.1f s; working again",
                self.name,
                f"{down_at:%H:%M:%S}",
                f"{back_at:%H:%M:%S}",
                (back_at - down_at).total_seconds(),
            )

    async def _release(self) -> None:
        """The worker run that ended runs no job any more; jobs the database still has
        as running under it (their end could not be written) run again now, instead of
        after ``pipeline.stalled_after``."""
        worker = self._worker
        with contextlib.suppress(*UNREACHABLE):
            if worker is not None and worker.worker_id is not None:
                await self.rt.jobs.job_manager.unregister_worker(worker.worker_id)
                worker.worker_id = None
            await requeue_stalled(self.rt)

    async def _until_stopped(self, work: Awaitable[T]) -> T | None:
        """``work``'s result, or None if ``stop()`` came first (``work`` is cancelled)."""
        task = asyncio.ensure_future(work)
        asked = asyncio.create_task(self._stop.wait())
        await asyncio.wait({task, asked}, return_when=asyncio.FIRST_COMPLETED)
        asked.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return None

    async def _beat(self) -> None:
        interval = self.rt.config.pipeline.heartbeat.total_seconds()
        beats = 0
        while True:
            if self.alive_file is not None:  # for a container's healthcheck: the process lives
                self.alive_file.touch()
            try:
                await self._write_beat(forget=beats % 360 == 0)
            except UNREACHABLE as exc:
                logger.debug("heartbeat not written: %s", exc)
            beats += 1
            await asyncio.sleep(interval)

    async def _write_beat(self, *, forget: bool = False) -> None:
        worker = self._worker
        heartbeat = WorkerHeartbeat(
            name=self.name,
            host=socket.gethostname(),
            pid=os.getpid(),
            kind=self.kind,
            state=self.state,
            concurrency=self.concurrency,
            queue_worker_id=worker.worker_id if worker is not None else None,
            outages=self.outages,
            started_at=self.started_at,
        )
        async with transaction(self.rt.sessions) as session:
            await repository.beat(session, heartbeat)
            if forget:
                await repository.forget_workers(session, FORGET_WORKERS_AFTER)


async def run_worker(
    rt: Runtime,
    *,
    concurrency: int,
    name: str = "worker",
    install_signal_handlers: bool = True,
    wait: bool = True,
) -> None:
    """One procrastinate worker run, unsupervised: for tests and one-off runs (with
    ``wait=False`` it stops once no job is ready)."""
    await rt.jobs.run_worker_async(
        name=name,
        wait=wait,
        concurrency=concurrency,
        install_signal_handlers=install_signal_handlers,
        worker_middleware=[record_failures],
        additional_context=worker_context(rt),
        update_heartbeat_interval=rt.config.pipeline.heartbeat.total_seconds(),
        stalled_worker_timeout=rt.config.pipeline.stalled_after.total_seconds(),
        listen_notify=True,
    )
