"""The process's shared resources: database engine, sessions, queue pool, config.

The API reaches them through ``app.state.runtime``; jobs, which procrastinate
calls without arguments of ours, through ``current()``.
"""

from __future__ import annotations

from dataclasses import dataclass

import procrastinate
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from leadflow.config import Config
from leadflow.db import create_engine, session_factory
from leadflow.intake.ratelimit import IntakeRateLimiter
from leadflow.jobs import job_app, job_pool
from leadflow.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    config: Config
    database_url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    pool: AsyncConnectionPool
    jobs: procrastinate.App
    rate_limiter: IntakeRateLimiter

    async def close(self) -> None:
        global _current
        await self.jobs.close_async()
        await self.pool.close()
        await self.engine.dispose()
        self.rate_limiter.close()
        if _current is self:
            _current = None


_current: Runtime | None = None


async def start(settings: Settings, config: Config, database_url: str) -> Runtime:
    """Open the pools and make this the process's runtime."""
    global _current
    engine = create_engine(database_url, pool_size=settings.db_pool_size)
    pool = job_pool(database_url, max_size=settings.worker_concurrency + 2)
    await pool.open(wait=True)
    await job_app.open_async(pool)
    runtime = Runtime(
        settings=settings,
        config=config,
        database_url=database_url,
        engine=engine,
        sessions=session_factory(engine),
        pool=pool,
        jobs=job_app,
        rate_limiter=IntakeRateLimiter(settings.redis_url),
    )
    _current = runtime
    return runtime


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("Leadflow's runtime is not started in this process")
    return _current
