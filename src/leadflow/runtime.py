"""The process's shared resources: database engine, sessions, queue pool, config.

The API reaches them through ``app.state.runtime``; jobs through the context their
worker hands them (``worker_context`` in, ``runtime_of`` out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import procrastinate
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from leadflow.config import Config, ConfigError, load_config
from leadflow.connectors import check_crm
from leadflow.connectors.base import Notifier
from leadflow.connectors.fakes import NullNotifier
from leadflow.connectors.notify import AppriseNotifier
from leadflow.db import create_engine, session_factory
from leadflow.intake.ratelimit import IntakeRateLimiter
from leadflow.intake.writer import GroupCommit
from leadflow.jobs import job_app, queue_connector
from leadflow.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    config: Config
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    jobs: procrastinate.App
    rate_limiter: IntakeRateLimiter
    intake: GroupCommit
    notifier: Notifier = field(default_factory=NullNotifier)  # alerts (the notify connectors)
    _connector: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _watcher: asyncio.Task[None] | None = None

    def reload_config(self) -> Config:
        """Read the config file again; an invalid file raises ConfigError and changes nothing.

        Owners, out-of-office, routing and scoring rules take effect for the next
        job and request: they read ``runtime.config`` each time."""
        config = load_config(self.settings.config)
        self.config = config
        logger.info("config reloaded from %s", self.settings.config or "the built-in demo")
        return config

    async def reopen_queue(self) -> None:
        """Open the queue's connection pool anew (after a database outage): a pool that
        failed to reconnect waits ever longer between attempts (psycopg_pool doubles the
        wait, up to minutes), while a new one connects at once."""
        connector = self.jobs.connector
        await connector.close_async()
        await connector.open_async()

    async def _watch(self, interval: float) -> None:
        path = self.settings.config
        assert path is not None
        seen = _mtime(path)
        while True:
            await asyncio.sleep(interval)
            now = _mtime(path)
            if now == seen:
                continue
            seen = now
            try:
                self.reload_config()
            except ConfigError as exc:
                logger.error("config not reloaded, the running one stays:\n%s", exc)

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.intake.close()
        await self.jobs.close_async()
        self._connector.close()  # give the queue back its placeholder connector
        await self.engine.dispose()
        self.rate_limiter.close()


logger = logging.getLogger(__name__)
CONFIG_CHECK_SECONDS = 5.0


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


async def start(settings: Settings, config: Config, database_url: str) -> Runtime:
    """Open the pools: the process's runtime, until ``close``. A CRM connector that
    cannot be built (its token's variable unset) stops the start with a ConfigError."""
    check_crm(config, settings.data_dir, settings.config)
    engine = create_engine(database_url, pool_size=settings.db_pool_size)
    connector = contextlib.ExitStack()
    connector.enter_context(
        job_app.replace_connector(
            queue_connector(database_url, max_size=settings.worker_concurrency + 2)
        )
    )
    await job_app.open_async()
    sessions = session_factory(engine)
    runtime = Runtime(
        settings=settings,
        config=config,
        engine=engine,
        sessions=sessions,
        jobs=job_app,
        rate_limiter=IntakeRateLimiter(settings.redis_url),
        intake=GroupCommit(sessions),
        _connector=connector,
    )
    if config.connectors.notify:
        runtime.notifier = AppriseNotifier(config.connectors.notify)
    if settings.config is not None:
        # Every process (API replicas, workers) sees a changed file within seconds.
        runtime._watcher = asyncio.create_task(runtime._watch(CONFIG_CHECK_SECONDS))
    return runtime


# Where a worker's jobs find the runtime in their context (``additional_context``).
_CONTEXT_KEY = "leadflow.runtime"


def worker_context(runtime: Runtime) -> dict[str, Any]:
    """What a worker hands each of its jobs (procrastinate's ``additional_context``)."""
    return {_CONTEXT_KEY: runtime}


def runtime_of(context: procrastinate.JobContext) -> Runtime:
    """The runtime of the worker running this job (``worker_context``)."""
    runtime = context.additional_context.get(_CONTEXT_KEY)
    if not isinstance(runtime, Runtime):
        raise RuntimeError("this job's worker was started without Leadflow's runtime")
    return runtime
