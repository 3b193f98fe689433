"""The HubSpot connector against a local HubSpot (fake_hubspot.py): through the
connector, and through the real pipeline configured with ``kind: hubspot``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from leadflow.cli import app as cli
from leadflow.config import Config, ConfigError
from leadflow.connectors import crm_from_config
from leadflow.connectors.hubspot import HubSpotCrm
from leadflow.stage import PermanentFailure, RetryableFailure
from tests.connectors.fake_hubspot import TOKEN, FakeHubSpot, serve
from tests.factories import crm_lead, lead_view, submit
from tests.pipeline.conftest import config_with_crm, drain
from tests.pipeline.test_batches import synced_together
from tests.pipeline.test_engine import fast_forward, lead_status

Row = dict[str, Any]
UPSERT = "/crm/v3/objects/contacts/batch/upsert"
NOTES = "/crm/v3/objects/notes"


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot(owners={"ana@example.com": "77001", "ben@example.com": "77002"})
    server = serve(fake)
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def connector(hubspot: FakeHubSpot) -> HubSpotCrm:
    return HubSpotCrm(TOKEN, hubspot.url, timeout=1)


@pytest.fixture
def config(hubspot: FakeHubSpot, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The test config syncing to the local HubSpot, with a short retry schedule."""
    monkeypatch.setenv("HUBSPOT_TOKEN", TOKEN)
    return config_with_crm(
        f'{{kind: hubspot, token_env: HUBSPOT_TOKEN, base_url: "{hubspot.url}"}}'
    )


async def test_a_lead_becomes_a_contact_with_its_owner_properties_and_a_note(
    connector: HubSpotCrm, hubspot: FakeHubSpot
) -> None:
    lead = crm_lead(1, title="CTO", utm_source="google", note="Score 50: a work email.")

    contact_id = await connector.upsert_lead(lead, idempotency_key="lead:1")

    assert hubspot.contacts[contact_id]["properties"] == {
        "email": "person1@acme.de",
        "firstname": "Ana",
        "lastname": "Weber 1",
        "company": "Acme GmbH",
        "jobtitle": "CTO",
        "hubspot_owner_id": "77001",
        "leadflow_id": lead.lead_id,
        "leadflow_score": "50",
        "leadflow_segment": "warm",
        "utm_source": "google",
    }
    [note] = hubspot.notes.values()
    assert note["properties"]["hs_note_body"] == "Score 50: a work email."
    assert note["to"]["to"] == {"id": contact_id}


async def test_owners_are_read_once_and_again_for_an_unknown_owner(
    connector: HubSpotCrm, hubspot: FakeHubSpot
) -> None:
    await connector.upsert_lead(crm_lead(1), idempotency_key="lead:1")
    await connector.upsert_lead(crm_lead(2), idempotency_key="lead:2")
    hubspot.owners["cleo@example.com"] = "77003"
    third = await connector.upsert_lead(crm_lead(3, owner="cleo@example.com"), idempotency_key="k")

    assert hubspot.calls("/crm/v3/owners") == 2
    assert hubspot.contacts[third]["properties"]["hubspot_owner_id"] == "77003"


async def test_a_lost_answer_makes_no_second_contact_or_note(
    connector: HubSpotCrm, hubspot: FakeHubSpot
) -> None:
    lead = crm_lead(1, note="Score 50.")
    hubspot.fail("drop", path=NOTES)  # the note is written, its answer lost

    with pytest.raises(RetryableFailure, match="HubSpot unreachable"):
        await connector.upsert_lead(lead, idempotency_key="lead:1")
    hubspot.fail("drop", path=UPSERT)
    with pytest.raises(RetryableFailure):
        await connector.upsert_lead(lead, idempotency_key="lead:1")
    contact_id = await connector.upsert_lead(lead, idempotency_key="lead:1")

    assert list(hubspot.contacts) == [contact_id]
    assert len(hubspot.notes) == 1


async def test_429_is_retryable_with_hubspots_retry_after(
    connector: HubSpotCrm, hubspot: FakeHubSpot
) -> None:
    hubspot.fail("429", retry_after=7)

    with pytest.raises(RetryableFailure, match="secondly limit") as error:
        await connector.upsert_lead(crm_lead(1), idempotency_key="lead:1")

    assert error.value.retry_after == 7
    assert hubspot.contacts == {}


async def test_a_hung_hubspot_is_a_retryable_timeout_and_the_loop_runs_on(
    connector: HubSpotCrm, hubspot: FakeHubSpot
) -> None:
    hubspot.fail("hang")
    started = time.monotonic()

    with pytest.raises(RetryableFailure):
        await connector.upsert_lead(crm_lead(1), idempotency_key="lead:1")

    assert time.monotonic() - started < 3


async def test_a_refused_property_is_permanent_with_hubspots_message(
    connector: HubSpotCrm, hubspot: FakeHubSpot
) -> None:
    hubspot.missing_properties.add("leadflow_score")

    with pytest.raises(PermanentFailure, match='Property "leadflow_score" does not exist'):
        await connector.upsert_lead(crm_lead(1), idempotency_key="lead:1")


async def test_an_unreachable_hubspot_is_retryable() -> None:
    crm = HubSpotCrm(TOKEN, "http://127.0.0.1:9", timeout=1)

    with pytest.raises(RetryableFailure, match="HubSpot unreachable"):
        await crm.upsert_lead(crm_lead(1), idempotency_key="lead:1")


def test_a_missing_token_variable_is_a_config_error_naming_it(
    config: Config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HUBSPOT_TOKEN")

    with pytest.raises(ConfigError, match="environment variable HUBSPOT_TOKEN is not set"):
        crm_from_config(config, tmp_path)


def test_check_config_names_the_file_and_the_unset_token_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUBSPOT_TOKEN", raising=False)
    file = tmp_path / "leadflow.yaml"
    file.write_text("connectors:\n  crm: {kind: hubspot, token_env: HUBSPOT_TOKEN}\n")

    missing = CliRunner().invoke(cli, ["check-config", str(file)])
    monkeypatch.setenv("HUBSPOT_TOKEN", TOKEN)
    present = CliRunner().invoke(cli, ["check-config", str(file)])

    assert missing.exit_code == 2
    assert missing.output == (
        f"{file}: connectors.crm.token_env: environment variable HUBSPOT_TOKEN is not set "
        "(the HubSpot private app's access token)\n"
    )
    assert present.exit_code == 0
    assert f"{file}: OK" in present.output


async def test_a_routed_lead_is_synced_and_a_returning_person_updates_the_contact(
    app: FastAPI,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    hubspot: FakeHubSpot,
) -> None:
    first = await submit(client, email="ana.weber@gmail.com", full_name="Ana Weber")
    await drain(app)
    await submit(client, email="ana.weber@gmail.com", title="Head of Sales")
    await drain(app)

    lead = await lead_view(client, auth, first)
    assert lead["status"] == "synced"
    [contact] = hubspot.contacts.values()
    assert lead["external_ids"] == {"hubspot": contact["id"]}
    assert contact["properties"]["hubspot_owner_id"] == "77001"
    assert contact["properties"]["jobtitle"] == "Head of Sales"
    assert contact["properties"]["leadflow_id"] == first
    assert [e["type"] for e in lead["timeline"]][-1] == "crm.updated"
    assert hubspot.calls(UPSERT) == 2


async def test_a_lead_waits_out_a_hubspot_outage_and_syncs_after(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row], hubspot: FakeHubSpot
) -> None:
    hubspot.fail("500", times=2)
    lead_id = await submit(client, email="outage@acme.de")

    await drain(app)
    assert lead_status(db, lead_id) == "routed"
    assert hubspot.contacts == {}
    fast_forward(db)
    await drain(app)
    fast_forward(db)
    await drain(app)

    assert lead_status(db, lead_id) == "synced"
    assert [c["properties"]["email"] for c in hubspot.contacts.values()] == ["outage@acme.de"]


async def test_a_refused_lead_is_a_dead_letter_with_hubspots_message(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: psycopg.Connection[Row],
    auth: dict[str, str],
    hubspot: FakeHubSpot,
) -> None:
    hubspot.missing_properties.add("leadflow_segment")
    lead_id = await submit(client, email="refused@acme.de")
    await drain(app)

    assert lead_status(db, lead_id) == "failed"
    letters = (await client.get("/v1/dead-letters?kind=crm.sync", headers=auth)).json()["items"]
    assert [letter["lead_id"] for letter in letters] == [lead_id]
    assert 'Property "leadflow_segment" does not exist' in letters[0]["error"]


async def test_leads_written_together_are_one_batch_upsert(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row], hubspot: FakeHubSpot
) -> None:
    await synced_together(app, client, db, 3)

    assert hubspot.calls(UPSERT) == 1
    assert sorted(c["properties"]["email"] for c in hubspot.contacts.values()) == [
        f"team{n}@acme.de" for n in range(3)
    ]
    assert len(hubspot.notes) == 3
