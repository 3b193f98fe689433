"""`leadflow leads show` and `leadflow leads list`, as an operator runs them."""

from __future__ import annotations

import asyncio
import json

import httpx
from fastapi import FastAPI
from typer.testing import CliRunner, Result

from leadflow.cli import app as cli
from tests.factories import lead_view, submit
from tests.pipeline.conftest import drain

runner = CliRunner()


async def leadflow(*args: str) -> Result:
    # The command runs its own event loop, so it runs beside the test's, in a thread.
    return await asyncio.to_thread(runner.invoke, cli, list(args))


async def test_show_tells_a_routed_leads_story(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str], operator_env: None
) -> None:
    lead_id = await submit(client, email="nora@acme.de", full_name="Nora Lind", company="Acme")
    await drain(app)

    shown = await leadflow("leads", "show", lead_id)
    as_json = await leadflow("leads", "show", lead_id, "--json")

    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == f"Lead {lead_id}"
    assert lines[1].startswith("status     routed (since ")
    assert "contact    Nora Lind <nora@acme.de>, Acme" in lines
    assert any(line.startswith("score      ") for line in lines)
    assert "assigned   owner ana@example.com" in lines
    api = await lead_view(client, auth, lead_id)
    assert f"reason     {api['routing_reason']['sentence']}" in lines
    timeline = lines[lines.index(f"Timeline ({len(api['timeline'])} events)") + 1 :]
    assert [line.split()[2] for line in timeline] == [e["type"] for e in api["timeline"]]
    assert as_json.exit_code == 0
    assert json.loads(as_json.output) == api  # the same as GET /v1/leads/{id}


async def test_list_shows_the_newest_leads_first(
    client: httpx.AsyncClient, auth: dict[str, str], operator_env: None
) -> None:
    ids = [await submit(client, email=f"l{n}@acme.de") for n in range(3)]

    listed = await leadflow("leads", "list", "--limit", "2")
    as_json = await leadflow("leads", "list", "--json")
    too_many = await leadflow("leads", "list", "--limit", "0")

    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert [line.split()[0] for line in lines[:2]] == [ids[2], ids[1]]
    assert "l2@acme.de" in lines[0]
    assert "not routed yet" in lines[0]
    assert lines[2] == "2 of 3 lead(s), newest first."
    page = json.loads(as_json.output)
    assert [item["id"] for item in page["items"]] == ids[::-1]
    assert page == (await client.get("/v1/leads", params={"limit": 20}, headers=auth)).json()
    assert too_many.exit_code == 2


async def test_list_says_when_there_are_no_leads(operator_env: None) -> None:
    listed = await leadflow("leads", "list")

    assert listed.exit_code == 0
    assert listed.output == "No leads yet.\n"


async def test_an_unknown_or_malformed_id_is_one_line_and_exit_1(operator_env: None) -> None:
    unknown = await leadflow("leads", "show", "00000000-0000-4000-8000-000000000000")
    malformed = await leadflow("leads", "show", "lead-42")

    assert unknown.exit_code == 1
    assert unknown.output == "There is no lead 00000000-0000-4000-8000-000000000000.\n"
    assert malformed.exit_code == 1
    assert malformed.output.count("\n") == 1
    assert "'lead-42' is neither a lead id" in malformed.output
    assert unknown.exception is None or isinstance(unknown.exception, SystemExit)


async def test_show_finds_a_lead_by_its_email_the_newest_live_one(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str], operator_env: None
) -> None:
    first = await submit(client, email="Ana.Weber@Acme.de", full_name="Ana Weber")
    other = await submit(client, email="ben@acme.de")
    await drain(app)  # validated: the email's match key is known

    shown = await leadflow("leads", "show", "ana.weber@acme.de")  # case does not count
    listed = await leadflow("leads", "list", "--email", "ana.weber+news@acme.de")
    api = await client.get("/v1/leads", params={"email": "ANA.WEBER@acme.de"}, headers=auth)
    nobody = await leadflow("leads", "show", "nobody@acme.de")
    bad = await client.get("/v1/leads", params={"email": "not-an-email"}, headers=auth)

    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[0] == f"Lead {first}"
    assert [line.split()[0] for line in listed.output.splitlines()[:-1]] == [first]
    assert [item["id"] for item in api.json()["items"]] == [first]
    assert other not in listed.output
    assert (nobody.exit_code, nobody.output) == (
        1,
        "There is no lead with the email nobody@acme.de.\n",
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
