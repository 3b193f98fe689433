"""`leadflow dlq list` and `leadflow dlq replay`, as an operator runs them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner, Result

from leadflow.cli import app as cli
from leadflow.stage import PermanentFailure
from tests.pipeline.conftest import drain
from tests.pipeline.test_engine import FlakyCrm, submit, use_crm

runner = CliRunner()


async def leadflow(*args: str) -> Result:
    # The command runs its own event loop, so it runs beside the test's, in a thread.
    return await asyncio.to_thread(runner.invoke, cli, list(args))


async def test_list_and_replay_dead_letters_from_the_command_line(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: psycopg.Connection[dict[str, Any]],
    crm_log: Path,
    monkeypatch: pytest.MonkeyPatch,
    operator_env: None,
) -> None:
    use_crm(monkeypatch, FlakyCrm(crm_log, 2, PermanentFailure("HTTP 401: token revoked")))
    first = await submit(client, "cli1@acme.de")
    second = await submit(client, "cli2@acme.de")
    await drain(app)

    listed = await leadflow("dlq", "list")
    as_json = json.loads((await leadflow("dlq", "list", "--json", "--kind", "crm.sync")).output)
    nothing = await leadflow("dlq", "list", "--kind", "lead.process")
    refused = await leadflow("dlq", "replay")
    bad_since = await leadflow("dlq", "list", "--since", "yesterday-ish")

    assert listed.exit_code == 0
    assert listed.output.count("crm.sync") == 2
    assert "PermanentFailure: HTTP 401: token revoked" in listed.output
    assert {row["lead_id"] for row in as_json} == {first, second}
    assert "No dead letters." in nothing.output
    assert refused.exit_code == 2
    assert bad_since.exit_code == 2

    one = as_json[0]["job_id"]
    replay_one = await leadflow("dlq", "replay", str(one))
    replay_rest = await leadflow("dlq", "replay", "--since", "1h")
    replay_unknown = await leadflow("dlq", "replay", "987654321")

    assert replay_one.exit_code == 0
    assert f"Replayed 1 dead letter(s): {one}" in replay_one.output
    assert "Replayed 1 dead letter(s)" in replay_rest.output
    assert replay_unknown.exit_code == 1
    await drain(app)
    statuses = db.execute("SELECT DISTINCT status FROM leads").fetchall()
    assert statuses == [{"status": "synced"}]
