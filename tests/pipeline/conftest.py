from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import procrastinate
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text

from leadflow.app import create_app
from leadflow.config import Config, load_config_text
from leadflow.pipeline.worker import run_worker
from leadflow.runtime import worker_context
from leadflow.settings import Settings
from tests.conftest import TEST_CONFIG
from tests.pgcluster import Cluster


@pytest.fixture
def crm_log(tmp_path: Path) -> Path:
    return tmp_path / "crm.jsonl"


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A private PostgreSQL cluster (tests/pgcluster.py) that the test may stop and restart."""
    cluster = Cluster()
    yield cluster
    cluster.destroy()


@pytest.fixture
def config(crm_log: Path) -> Config:
    """The test config with a (recording) CRM, and a short retry schedule for it."""
    return config_with_crm(f"{{kind: recording, path: {crm_log}}}")


def config_with_crm(crm: str) -> Config:
    """The test config with ``crm`` (YAML flow) as its CRM, and a short retry schedule."""
    return load_config_text(
        TEST_CONFIG
        + f"""
pipeline:
  retry: {{crm.sync: [10s, 1m, 1h]}}
connectors:
  crm: {crm}
""",
        "test.yaml",
    )


READY = text(
    "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing') "
    "AND coalesce(scheduled_at, now()) <= now()"
)


async def drain(app: FastAPI, concurrency: int = 4) -> None:
    """Run a worker until no job is ready to run (jobs scheduled for later stay).

    A worker started with wait=False may stop while a running job is about to
    queue the next one; so run it again until the queue has nothing ready."""
    rt = app.state.runtime
    for _ in range(20):
        await run_worker(
            rt, concurrency=concurrency, install_signal_handlers=False, wait=False, name="test"
        )
        async with rt.engine.connect() as connection:
            if (await connection.execute(READY)).scalar_one() == 0:
                return
    raise AssertionError("jobs were still ready after 20 worker runs")


def job_context(app: FastAPI, task_name: str, job_id: int = -1) -> procrastinate.JobContext:
    """What a worker hands a job of ``task_name``: its app, the runtime, the job itself."""
    rt = app.state.runtime
    job = procrastinate.jobs.Job(
        id=job_id, queue="test", lock=None, queueing_lock=None, task_name=task_name
    )
    return procrastinate.JobContext(
        app=rt.jobs,
        job=job,
        additional_context=worker_context(rt),
        start_timestamp=time.time(),
        abort_reason=lambda: None,
    )


@pytest.fixture
async def app_without_crm(settings: Settings, database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(
        settings, config=load_config_text(TEST_CONFIG), database_url=database_url
    )
    async with LifespanManager(application):
        yield application


def events_of(db: Any, lead_id: str) -> list[str]:
    rows = db.execute("SELECT type FROM lead_events WHERE lead_id = %s ORDER BY id", (lead_id,))
    return [row["type"] for row in rows.fetchall()]
