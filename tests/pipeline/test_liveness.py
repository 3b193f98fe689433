"""What tells a person that the pipeline stalled: /readyz, GET /v1/status, leadflow status,
and the stuck-lead check that runs in the API process as well as on the workers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from typer.testing import CliRunner

from leadflow.app import create_app
from leadflow.cli import app as cli
from leadflow.config import Config, load_config_text
from leadflow.connectors.fakes import RecordingNotifier
from leadflow.pipeline import watchdog
from leadflow.settings import Settings
from tests.conftest import CLIENT_IP, TEST_CONFIG

QUICK = (
    TEST_CONFIG
    + """
pipeline:
  heartbeat: 1s
  stalled_after: 2s
  stuck_after: 1s
"""
)


@pytest.fixture
def config() -> Config:
    return load_config_text(QUICK, "test.yaml")


async def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 51234))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def served(settings: Settings, config: Config, database_url: str) -> AsyncIterator[FastAPI]:
    """The app as `leadflow serve` runs it: with its embedded worker."""
    application = create_app(
        settings, config=config, database_url=database_url, embedded_worker=True
    )
    async with LifespanManager(application):
        yield application


async def _until(predicate: Any) -> None:
    async with asyncio.timeout(20):
        while not await predicate():  # noqa: ASYNC110 - polling what the service shows
            await asyncio.sleep(0.1)


async def test_readyz_fails_when_the_embedded_worker_is_not_running(
    served: FastAPI, auth: dict[str, str]
) -> None:
    async with await _client(served) as client:

        async def heartbeat_written() -> bool:
            status = (await client.get("/v1/status", headers=auth)).json()
            return any(w["state"] == "running" and w["alive"] for w in status["workers"])

        await _until(heartbeat_written)
        ready = await client.get("/readyz")
        served.state.worker.stop()

        async def stopped() -> bool:
            return bool(served.state.worker.state == "stopped")

        await _until(stopped)
        not_ready = await client.get("/readyz")
        status = (await client.get("/v1/status", headers=auth)).json()

    assert ready.status_code == 200
    assert ready.json()["checks"]["worker"] == "ok"
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["worker"] == "stopped"
    assert [w["state"] for w in status["workers"]] == ["stopped"]
    assert status["healthy"] is False
    assert "no worker is running" in status["problems"][0]


async def test_status_shows_the_oldest_job_growing_while_no_worker_runs(
    client: httpx.AsyncClient, auth: dict[str, str], operator_env: None, tmp_path: Path
) -> None:
    response = await client.post("/v1/forms/open/submissions", json={"Mail": "waiting@acme.de"})
    assert response.status_code == 202
    await asyncio.sleep(1.2)
    first = (await client.get("/v1/status", headers=auth)).json()
    await asyncio.sleep(1.2)
    later = (await client.get("/v1/status", headers=auth)).json()

    def lead_jobs(status: dict[str, Any]) -> dict[str, Any]:
        (task,) = [t for t in status["queue"] if t["task"] == "lead.process"]
        return dict(task)

    assert lead_jobs(first)["ready"] == 1
    assert lead_jobs(later)["oldest_ready_seconds"] >= lead_jobs(first)["oldest_ready_seconds"] + 1
    assert later["healthy"] is False
    assert later["workers"] == []
    assert later["waiting"][0]["stage"] == "received"
    assert any("'received'" in problem for problem in later["problems"])

    config = tmp_path / "leadflow.yaml"
    config.write_text(QUICK)
    env = {"LEADFLOW_CONFIG": str(config)}
    printed = await asyncio.to_thread(CliRunner().invoke, cli, ["status"], env=env)
    assert printed.exit_code == 1, printed.output
    assert "lead.process" in printed.output
    assert "no worker is running" in printed.output
    as_json = await asyncio.to_thread(CliRunner().invoke, cli, ["status", "--json"], env=env)
    assert '"healthy": false' in as_json.output


async def test_the_stuck_check_names_the_stage_and_alerts(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert (
        await client.post("/v1/forms/open/submissions", json={"Mail": "stuck@acme.de"})
    ).status_code == 202
    await asyncio.sleep(1.2)  # pipeline.stuck_after is 1 s here
    notifier = RecordingNotifier()
    with caplog.at_level(logging.ERROR, logger="leadflow.pipeline.watchdog"):
        findings = await watchdog.check(app.state.runtime, notifier)

    assert findings is not None
    assert findings.requeued == 0  # its job waits: nothing to requeue, only to tell
    assert [(w.status, w.leads) for w in findings.waiting] == [("received", 1)]
    assert "waiting in stage 'received'" in caplog.text
    (alert,) = notifier.alerts
    assert alert.kind == "pipeline_stalled"
    assert alert.detail["stage"] == "received"


async def test_one_process_at_a_time_runs_the_stuck_check(app: FastAPI) -> None:
    rt = app.state.runtime
    async with rt.sessions() as session, session.begin():
        from leadflow.pipeline import repository

        assert await repository.try_lock(session, watchdog.LOCK)
        assert await watchdog.check(rt, RecordingNotifier()) is None  # another one holds it
