"""A merged lead has one owner or one queue, and the reason that goes with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from leadflow.config import Config, load_config_text
from tests.conftest import TEST_CONFIG
from tests.dedup.test_dedup_step import get, submit
from tests.dedup.test_import import leadflow, write
from tests.pipeline.conftest import drain

Row = dict[str, Any]
# Every form lead waits in the nurture queue; Luca is a salesperson the CRM knows.
NURTURE = TEST_CONFIG.replace(
    "  - {email: ana@example.com, timezone: Europe/Berlin, regions: [EMEA]}\n",
    "  - {email: ana@example.com, timezone: Europe/Berlin, regions: [EMEA]}\n"
    "  - {email: luca@example.com}\n",
).replace(
    "    - {id: everyone, to: {owner: ana@example.com}}", "    - {id: later, to: {queue: nurture}}"
)


@pytest.fixture
def config() -> Config:
    return load_config_text(NURTURE, "test.yaml")


async def test_an_imported_owner_merged_into_a_queued_lead_takes_it_from_the_queue(
    app: FastAPI,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    db: psycopg.Connection[Row],
    tmp_path: Path,
    operator_env: None,
) -> None:
    lead_id = await submit(client, email="mia@acme.de", name="Mia Roth")
    await drain(app)
    queued = await get(client, auth, lead_id)
    assert (queued["owner"], queued["queue"]) == (None, "nurture")
    path = tmp_path / "leadflow.yaml"
    path.write_text(NURTURE)
    contacts = write(
        tmp_path / "contacts.csv", [["email", "owner"], ["mia@acme.de", "luca@example.com"]]
    )

    imported = await leadflow("import", str(contacts), "--config", str(path))

    assert imported.exit_code == 0, imported.output
    lead = await get(client, auth, lead_id)
    assert (lead["owner"], lead["queue"]) == ("luca@example.com", None)
    assert lead["routing_reason"]["rule"] == "merge"
    assert lead["routing_reason"]["owner"] == "luca@example.com"
    assert lead["routing_reason"]["sentence"] == (
        "To luca@example.com, owner of the imported contact merged into this one."
    )

    [duplicate] = db.execute("SELECT id FROM leads WHERE duplicate_of = %s", (lead_id,)).fetchall()
    undone = await client.post(f"/v1/leads/{duplicate['id']}/unmerge", headers=auth)

    assert undone.status_code == 200, undone.text
    back = await get(client, auth, lead_id)
    assert (back["owner"], back["queue"]) == (None, "nurture")
    assert back["routing_reason"] == queued["routing_reason"]
