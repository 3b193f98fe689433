"""The process's shared resources: database engine, sessions, queue pool, config.

The API reaches them through ``app.state.runtime``; jobs, which procrastinate
calls without arguments of ours, through ``current()``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import procrastinate
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from leadflow.config import Config
from leadflow.db import create_engine, session_factory
from leadflow.intake.ratelimit import IntakeRateLimiter
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
    _connector: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    async def close(self) -> None:
        global _current
        await self.jobs.close_async()
        self._connector.close()  # give the queue back its placeholder connector
        await self.engine.dispose()
        self.rate_limiter.close()
        if _current is self:
            _current = None


_current: Runtime | None = None


async def start(settings: Settings, config: Config, database_url: str) -> Runtime:
    """Open the pools and make this the process's runtime."""
    global _current
    engine = create_engine(database_url, pool_size=settings.db_pool_size)
    connector = contextlib.ExitStack()
    connector.enter_context(
        job_app.replace_connector(
            queue_connector(database_url, max_size=settings.worker_concurrency + 2)
        )
    )
    await job_app.open_async()
    runtime = Runtime(
        settings=settings,
        config=config,
        engine=engine,
        sessions=session_factory(engine),
        jobs=job_app,
        rate_limiter=IntakeRateLimiter(settings.redis_url),
        _connector=connector,
    )
    _current = runtime
    return runtime


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("Leadflow's runtime is not started in this process")
    return _current
