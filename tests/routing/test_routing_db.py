"""Routing on PostgreSQL: fair turns across workers, capacity, accounts, people's overrides."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from leadflow.app import create_app
from leadflow.config import Config, load_config_text
from leadflow.connectors.fakes import RecordingNotifier
from leadflow.db import transaction
from leadflow.intake.service import queue_new_leads
from leadflow.leads import repository as leads
from leadflow.routing.service import reassign
from leadflow.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.dedup.test_dedup_step import get
from tests.pipeline.conftest import drain

Row = dict[str, Any]
ROUTING = """
intake:
  rate_limits: {per_ip: 10000/minute, per_form: 10000/minute}
forms:
  open:
    fields: {Mail: email}
owners:
  - {email: a@x.com}
  - {email: b@x.com}
  - {email: c@x.com}
  - {email: am@x.com}
  - {email: capped@x.com, max_per_day: 5}
teams:
  sales: {members: [a@x.com, b@x.com, c@x.com]}
routing:
  rules:
    - {id: vip, when: {field: company, equals: Capped Inc}, to: {owner: capped@x.com}}
    - {id: team, to: {team: sales}, strategy: round_robin}
"""


@pytest.fixture
def config() -> Config:
    return load_config_text(ROUTING, "routing.yaml")


async def submit(client: httpx.AsyncClient, email: str, **fields: str) -> str:
    response = await client.post("/v1/forms/open/submissions", json={"Mail": email, **fields})
    assert response.status_code == 202, response.text
    return str(response.json()["lead_id"])


async def test_round_robin_stays_even_with_several_workers_at_once(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    for n in range(30):
        await submit(client, f"person{n}@company{n}.com")

    await asyncio.gather(*(drain(app, concurrency=4) for _ in range(3)))

    owners = db.execute("SELECT owner FROM leads").fetchall()
    assert Counter(r["owner"] for r in owners) == {"a@x.com": 10, "b@x.com": 10, "c@x.com": 10}
    turns = db.execute("SELECT count(*) AS n FROM assignments WHERE rule = 'team'").fetchone()
    assert turns == {"n": 30}


async def test_capacity_holds_under_concurrency_and_the_rest_is_triaged(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    notifier = RecordingNotifier()
    app.state.runtime.notifier = notifier
    for n in range(12):
        await submit(client, f"buyer{n}@capped{n}.com", company="Capped Inc")

    await asyncio.gather(*(drain(app, concurrency=4) for _ in range(3)))

    rows = db.execute("SELECT owner, queue FROM leads").fetchall()
    assert Counter((r["owner"], r["queue"]) for r in rows) == {
        ("capped@x.com", None): 5,
        (None, "triage"): 7,
    }
    alerts = db.execute(
        "SELECT detail FROM lead_events WHERE type = 'alert.routing' ORDER BY id"
    ).fetchall()
    assert len(alerts) == 7
    assert alerts[0]["detail"]["alert"] == "no one available in owner:capped@x.com"
    triage = [a for a in notifier.alerts if a.kind == "triage"]  # sent by alert.send jobs
    assert len(triage) == 7
    assert triage[0].message.startswith("no one available in owner:capped@x.com: ")
    assert {a.detail["queue"] for a in triage} == {"triage"}


async def test_capacity_and_round_robin_hold_within_one_batch(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    lead_ids = [
        await submit(client, f"buyer{n}@capped{n}.com", company="Capped Inc") for n in range(8)
    ]
    lead_ids += [await submit(client, f"person{n}@company{n}.com") for n in range(6)]
    db.execute("DELETE FROM procrastinate_jobs")  # as the intake queues leads written together
    async with transaction(app.state.runtime.sessions) as session:
        await queue_new_leads(session, [uuid.UUID(lead_id) for lead_id in lead_ids])

    await drain(app)

    rows = db.execute("SELECT owner, queue FROM leads").fetchall()
    assert Counter((r["owner"], r["queue"]) for r in rows) == {
        ("capped@x.com", None): 5,
        (None, "triage"): 3,
        ("a@x.com", None): 2,
        ("b@x.com", None): 2,
        ("c@x.com", None): 2,
    }


async def test_colleagues_in_one_batch_go_to_the_same_owner(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    lead_ids = [await submit(client, f"{name}@initech.com") for name in ("ann", "bob", "cy")]
    db.execute("DELETE FROM procrastinate_jobs")  # as the intake queues leads written together
    async with transaction(app.state.runtime.sessions) as session:
        await queue_new_leads(session, [uuid.UUID(lead_id) for lead_id in lead_ids])

    await drain(app)

    rows = db.execute(
        "SELECT owner, routing_reason->>'rule' AS rule FROM leads ORDER BY submitted_at"
    ).fetchall()
    assert len({row["owner"] for row in rows}) == 1
    assert [row["rule"] for row in rows] == ["team", "sticky", "sticky"]


async def test_same_company_and_known_accounts_go_to_their_owner(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str], db: psycopg.Connection[Row]
) -> None:
    db.execute(
        "INSERT INTO accounts (id, name, name_key, domain, owner, external_ids, created_at, "
        "updated_at) VALUES (gen_random_uuid(), 'Globex GmbH', 'globex', 'globex.de', "
        "'am@x.com', '{}', now(), now())"
    )
    first = await submit(client, "ann@initech.com")
    await drain(app)
    colleague = await submit(client, "bob@initech.com")
    account = await submit(client, "cara@globex.de")
    by_name = await submit(client, "dan@gmail.com", company="GLOBEX")
    await drain(app)

    owner = (await get(client, auth, first))["owner"]
    same = await get(client, auth, colleague)
    assert same["owner"] == owner
    assert same["routing_reason"]["rule"] == "sticky"
    assert "same company (initech.com)" in same["routing_reason"]["sentence"]
    for lead_id in (account, by_name):
        lead = await get(client, auth, lead_id)
        assert (lead["owner"], lead["routing_reason"]["rule"]) == ("am@x.com", "account")
        assert (
            lead["routing_reason"]["sentence"] == "To am@x.com, owner of the account Globex GmbH."
        )


async def test_a_person_reassigns_and_the_reason_says_who_and_why(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    lead_id = await submit(client, "eve@hooli.com")
    await drain(app)

    moved = await client.post(
        f"/v1/leads/{lead_id}/assign",
        json={"owner": "C@X.com", "reason": "speaks Finnish"},
        headers=auth,
    )
    unknown = await client.post(
        f"/v1/leads/{lead_id}/assign", json={"owner": "ghost@x.com", "reason": "x"}, headers=auth
    )
    both = await client.post(
        f"/v1/leads/{lead_id}/assign",
        json={"owner": "a@x.com", "queue": "triage", "reason": "x"},
        headers=auth,
    )

    assert moved.status_code == 200, moved.text
    assert (moved.json()["owner"], moved.json()["routing_reason"]["rule"]) == ("c@x.com", "manual")
    assert moved.json()["routing_reason"]["by"] == "admin"
    assert moved.json()["routing_reason"]["sentence"] == "Assigned by admin: speaks Finnish"
    assert [unknown.status_code, both.status_code] == [422, 422]
    lead = await get(client, auth, lead_id)
    assert lead["owner"] == "c@x.com"
    event = next(e for e in lead["timeline"] if e["type"] == "lead.assigned")
    assert event["detail"]["why"] == "speaks Finnish"


async def test_reassignment_skips_the_owner_who_missed_the_deadline(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str], config: Config
) -> None:
    lead_id = await submit(client, "fay@pied.com")
    await drain(app)
    before = (await get(client, auth, lead_id))["owner"]

    async with transaction(app.state.runtime.sessions) as session:
        lead = await leads.get(session, __import__("uuid").UUID(lead_id), lock=True)
        assert lead is not None
        decision = await reassign(session, lead, config, why="first contact SLA missed")

    assert decision.owner not in (None, before)
    skipped = {c.owner: c.skipped for c in decision.candidates}
    assert skipped[before] == "being reassigned away from them"
    lead_out = await get(client, auth, lead_id)
    event = next(e for e in lead_out["timeline"] if e["type"] == "lead.reassigned")
    assert (event["detail"]["from"], event["detail"]["why"]) == (before, "first contact SLA missed")


async def test_out_of_office_through_the_api(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    today = __import__("datetime").date.today().isoformat()
    absent = []
    for owner in ("a@x.com", "b@x.com", "c@x.com"):
        response = await client.post(
            f"/v1/owners/{owner}/out-of-office",
            json={"from": today, "to": today, "note": "offsite"},
            headers=auth,
        )
        assert response.status_code == 201, response.text
        absent.append(response.json()["id"])
    backwards = await client.post(
        "/v1/owners/a@x.com/out-of-office", json={"from": today, "to": "2020-01-01"}, headers=auth
    )
    nobody = await client.post(
        "/v1/owners/ghost@x.com/out-of-office", json={"from": today, "to": today}, headers=auth
    )
    assert [backwards.status_code, nobody.status_code] == [422, 404]

    owners = {o["email"]: o for o in (await client.get("/v1/owners", headers=auth)).json()}
    assert owners["a@x.com"]["available"] is False
    assert owners["a@x.com"]["unavailable_because"] == f"out of office until {today} (offsite)"
    lead_id = await submit(client, "gus@umbrella.com")
    await drain(app)
    lead = await get(client, auth, lead_id)
    assert (lead["owner"], lead["queue"]) == (None, "triage")

    ended = await client.delete(f"/v1/owners/a@x.com/out-of-office/{absent[0]}", headers=auth)
    assert ended.status_code == 204
    owners = {o["email"]: o for o in (await client.get("/v1/owners", headers=auth)).json()}
    assert owners["a@x.com"]["available"] is True


async def test_the_config_reloads_without_a_restart(
    database_url: str, tmp_path: Path, db: psycopg.Connection[Row]
) -> None:
    path = tmp_path / "leadflow.yaml"
    path.write_text(ROUTING)
    settings = Settings(admin_token=ADMIN_TOKEN, data_dir=tmp_path, config=path)
    application = create_app(settings, database_url=database_url)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            path.write_text(
                ROUTING.replace(
                    "  - {email: c@x.com}\n", "  - {email: c@x.com}\n  - {email: d@x.com}\n"
                )
            )
            ok = await client.post("/v1/config/reload", headers=auth)
            path.write_text(ROUTING + "routing: {rules: nope}\n")
            bad = await client.post("/v1/config/reload", headers=auth)
            owners = (await client.get("/v1/owners", headers=auth)).json()

    assert ok.status_code == 200, ok.text
    assert ok.json()["owners"] == 6
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"].startswith(f"{path}:")
    assert len(owners) == 6  # the last good config stays


async def test_route_explain_is_a_dry_run(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: psycopg.Connection[Row],
    tmp_path: Path,
    operator_env: None,
) -> None:
    from typer.testing import CliRunner

    from leadflow.cli import app as cli

    path = tmp_path / "leadflow.yaml"
    path.write_text(ROUTING)
    args = ["route", "--config", str(path), "--explain", "--set", "company=Capped Inc"]

    first = await asyncio.to_thread(CliRunner().invoke, cli, args)
    again = await asyncio.to_thread(CliRunner().invoke, cli, [*args[:-2], "--set", "country=FR"])
    bad = await asyncio.to_thread(CliRunner().invoke, cli, ["route", "--lead", "[1]"])

    assert first.exit_code == 0, first.output
    assert first.output.splitlines()[0] == ("To capped@x.com by rule 'vip' (its owner).")
    assert "capped@x.com" in first.output.splitlines()[1]
    assert again.output.splitlines()[0] == "To a@x.com by rule 'team' (team 'sales', round robin)."
    assert bad.exit_code == 2
    assert "--lead must be a JSON object" in bad.output
    assert db.execute("SELECT count(*) AS n FROM assignments").fetchone() == {"n": 0}
    assert db.execute("SELECT count(*) AS n FROM routing_turns").fetchone() == {"n": 0}


BY_COUNTRY = """
owners:
  - {email: dach@x.com}
  - {email: world@x.com}
routing:
  rules:
    - {id: dach, when: {field: quality.country, in: [DE, AT, CH]}, to: {owner: dach@x.com}}
    - {id: world, to: {owner: world@x.com}}
"""


async def route_cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from leadflow.cli import app as cli

    return await asyncio.to_thread(CliRunner().invoke, cli, ["route", *args])


@pytest.mark.parametrize(
    ("given", "owner"),
    [
        (["--lead", '{"country": "DE"}'], "dach@x.com"),  # the --help example
        (["--lead", '{"country": "Germany"}'], "dach@x.com"),  # as a form submits it
        (["--set", "country=AT"], "dach@x.com"),
        (["--set", "phone=+41 44 668 18 00"], "dach@x.com"),  # the country of the phone
        (["--set", "quality.country=CH"], "dach@x.com"),
        (["--lead", '{"country": "US"}'], "world@x.com"),
    ],
)
async def test_route_reads_the_lead_as_a_form_submits_it(
    tmp_path: Path, operator_env: None, given: list[str], owner: str
) -> None:
    path = tmp_path / "leadflow.yaml"
    path.write_text(BY_COUNTRY)

    result = await route_cli("--config", str(path), *given)

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith(f"To {owner} by rule ")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (["--set", "quality.contry=DE"], "'quality.contry' is not something routing reads; "),
        (["--set", "contry=DE"], "'contry' is not something routing reads; "),
        (["--lead", '{"segmnt": "hot"}'], "'segmnt' is not something routing reads; "),
    ],
)
async def test_route_refuses_what_routing_does_not_read_and_lists_the_choices(
    operator_env: None, given: list[str], message: str
) -> None:
    result = await route_cli(*given)

    assert result.exit_code == 2
    [line] = result.output.splitlines()
    assert message in line
    assert "did you mean" in line
    assert "quality.<channel|company_domain|country|" in line
    assert "account.<name|domain|owner|country>" in line


async def test_route_explain_shows_the_counts_of_the_owners_api(
    app: FastAPI,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    tmp_path: Path,
    operator_env: None,
) -> None:
    path = tmp_path / "leadflow.yaml"
    path.write_text(ROUTING)
    await submit(client, "first@acme.de")
    await drain(app)
    api = {o["email"]: o for o in (await client.get("/v1/owners", headers=auth)).json()}

    result = await route_cli("--config", str(path), "--explain", "--set", "country=FR")

    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()[1:]}
    assert api["a@x.com"]["open"] == 1
    for owner in ("a@x.com", "b@x.com", "c@x.com"):
        assert lines[owner][1:5] == [
            "today",
            str(api[owner]["today"]),
            "open",
            str(api[owner]["open"]),
        ]
