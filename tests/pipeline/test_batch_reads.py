"""What a batch reads for all its leads at once (each lead's anonymous browsing, its
account, its company's owners) ends with each lead as if it had been processed alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from leadflow.config import Config, load_config_text
from leadflow.settings import get_settings
from tests.dedup.test_dedup_step import get
from tests.dedup.test_import import leadflow, write
from tests.pipeline.conftest import drain, events_of
from tests.pipeline.test_batches import STAGE_EVENTS, as_one_batch, statuses, submitted

Row = dict[str, Any]
CONFIG = """
intake:
  rate_limits: {per_ip: 10000/minute, per_form: 10000/minute}
forms:
  contact:
    fields: {name: full_name, org: company}
    required: [email]
owners:
  - {email: a@x.com}
  - {email: b@x.com}
  - {email: globex-am@x.com}
  - {email: initrode-am@x.com}
teams:
  sales: {members: [a@x.com, b@x.com]}
routing:
  rules:
    - {id: team, to: {team: sales}, strategy: round_robin}
scoring:
  thresholds: {warm: 30, hot: 60}
  rescore_debounce: 0s
  rules:
    - id: pricing
      category: behaviour
      points: 20
      when: {events: {type: page, path: /pricing, within: 7d, at_least: 2}}
    - id: case-study
      category: behaviour
      points: 25
      when: {events: {type: track, name: Case Study Downloaded, within: 30d}}
"""


@pytest.fixture
def config() -> Config:
    """No CRM: the leads end ``routed``."""
    return load_config_text(CONFIG, "batch-reads.yaml")


async def track(client: httpx.AsyncClient, *calls: dict[str, Any], **headers: str) -> None:
    """Browsing before the form: nobody to link it to yet."""
    response = await client.post("/v1/events", json={"batch": list(calls)}, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": len(calls), "linked": 0}


def page(message_id: str, anonymous_id: str, path: str) -> dict[str, Any]:
    return {
        "type": "page",
        "messageId": message_id,
        "anonymousId": anonymous_id,
        "properties": {"url": f"https://www.example.com{path}"},
    }


def download(message_id: str, email: str) -> dict[str, Any]:
    """A CDP names the person (trusted: with the admin token)."""
    return {
        "type": "track",
        "event": "Case Study Downloaded",
        "messageId": message_id,
        "userId": email,
        "traits": {"email": email},
    }


def linked_to(db: psycopg.Connection[Row]) -> dict[str, str | None]:
    rows = db.execute("SELECT message_id, lead_id::text FROM activities").fetchall()
    return {row["message_id"]: row["lead_id"] for row in rows}


async def scored(client: httpx.AsyncClient, auth: dict[str, str], lead_id: str) -> Row:
    """The lead as the API shows it, with its ``lead.score`` step's detail."""
    lead = await get(client, auth, lead_id)
    [step] = [e["detail"] for e in lead["timeline"] if e["type"] == "lead.score"]
    return {
        "linked": step.get("linked_activity"),
        "rules": [line["rule"] for line in lead["score_breakdown"]],
        "score": (lead["score"], step["score"]),
    }


async def test_each_lead_of_a_batch_gets_its_own_browsing(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str], db: psycopg.Connection[Row]
) -> None:
    await track(
        client,
        page("ana-1", "anon-ana", "/pricing"),
        page("ana-2", "anon-ana", "/pricing"),
        page("stranger", "anon-stranger", "/pricing"),
    )
    await track(client, download("ben-1", "ben@zeta.de"), Authorization=auth["Authorization"])
    ana, ben, cy = await submitted(
        client,
        {"email": "ana@acme.de", "_lf_anonymous_id": "anon-ana"},
        {"email": "ben@zeta.de"},
        {"email": "cy@omega.de", "_lf_anonymous_id": "anon-cy"},
    )
    await as_one_batch(app, db, [ana, ben, cy])

    await drain(app)

    assert statuses(db, [ana, ben, cy]) == ["routed"] * 3
    for lead_id in (ana, ben, cy):
        assert events_of(db, lead_id) == STAGE_EVENTS  # one go, as a batch
    assert await scored(client, auth, ana) == {"linked": 2, "rules": ["pricing"], "score": (20, 20)}
    assert await scored(client, auth, ben) == {
        "linked": 1,
        "rules": ["case-study"],
        "score": (25, 25),
    }
    assert await scored(client, auth, cy) == {"linked": None, "rules": [], "score": (0, 0)}
    assert linked_to(db) == {"ana-1": ana, "ana-2": ana, "ben-1": ben, "stranger": None}


async def test_browsing_two_leads_of_a_batch_could_claim_goes_to_the_first_once(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str], db: psycopg.Connection[Row]
) -> None:
    """One browser, two people (a shared computer): both forms carry its id."""
    await track(
        client,
        page("shared-1", "anon-shared", "/pricing"),
        page("shared-2", "anon-shared", "/pricing"),
    )
    earlier, later = await submitted(
        client,
        {"email": "kim@acme.de", "_lf_anonymous_id": "anon-shared"},
        {"email": "lou@zeta.de", "_lf_anonymous_id": "anon-shared"},
    )
    # The batch's first lead is the one submitted later: its place in the batch decides.
    await as_one_batch(app, db, [later, earlier])

    await drain(app)

    assert statuses(db, [later, earlier]) == ["routed"] * 2
    first = await scored(client, auth, later)
    second = await scored(client, auth, earlier)
    assert first == {"linked": 2, "rules": ["pricing"], "score": (20, 20)}
    assert second == {"linked": None, "rules": [], "score": (0, 0)}  # not counted twice
    assert linked_to(db) == {"shared-1": later, "shared-2": later}


async def test_a_duplicate_in_the_batch_brings_its_browsing_to_the_survivor(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str], db: psycopg.Connection[Row]
) -> None:
    await track(
        client, page("dup-1", "anon-dup", "/pricing"), page("dup-2", "anon-dup", "/pricing")
    )
    first, other, again = await submitted(
        client,
        {"email": "ana@acme.de"},
        {"email": "ben@zeta.de"},
        {"email": "ana@acme.de", "_lf_anonymous_id": "anon-dup"},
    )
    await as_one_batch(app, db, [first, other, again])

    await drain(app)

    assert statuses(db, [first, other, again]) == ["routed", "routed", "merged"]
    # Scored after the merge, with the submissions it took over: no re-score needed.
    assert await scored(client, auth, first) == {
        "linked": 2,
        "rules": ["pricing"],
        "score": (20, 20),
    }
    assert await scored(client, auth, other) == {"linked": None, "rules": [], "score": (0, 0)}
    assert linked_to(db) == {"dup-1": first, "dup-2": first}


def account_of(lead: Row) -> tuple[str | None, str, str]:
    reason = lead["routing_reason"]
    [step] = [e["detail"] for e in lead["timeline"] if e["type"] == "lead.route"]
    assert (step["owner"], step["rule"], step["reason"]) == (
        lead["owner"],
        reason["rule"],
        reason["sentence"],
    )
    return lead["owner"], reason["rule"], reason["sentence"]


async def test_each_lead_of_a_batch_is_routed_by_its_own_account_and_company(
    app: FastAPI,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    db: psycopg.Connection[Row],
    tmp_path: Path,
    operator_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "batch-reads.yaml").write_text(CONFIG)  # the import checks its owners in it
    monkeypatch.setenv("LEADFLOW_CONFIG", str(tmp_path / "batch-reads.yaml"))
    get_settings.cache_clear()
    accounts = write(
        tmp_path / "accounts.csv",
        [
            ["Account Name", "Website", "Account Owner"],
            ["Globex GmbH", "globex.de", "globex-am@x.com"],
            ["Initrode AG", "initrode.com", "initrode-am@x.com"],
        ],
    )
    imported = await leadflow("import", str(accounts), "--accounts")
    assert imported.exit_code == 0, imported.output
    [known] = await submitted(client, {"email": "ann@initech.com"})
    await drain(app)  # alone, before the batch: its owner is the company's
    known_owner = (await get(client, auth, known))["owner"]
    assert known_owner in ("a@x.com", "b@x.com")
    batch = await submitted(
        client,
        {"email": "eve@hooli.com", "org": "Hooli"},  # no account
        {"email": "dan@gmail.com", "org": "INITRODE"},  # by name
        {"email": "cara@globex.de", "org": "Initrode"},  # by domain, whatever the name says
        {"email": "fay@initrode-labs.com", "org": "Initrode"},  # a domain no account has
        {"email": "gus@gmail.com", "org": "Globex Logistics International"},  # not alike
        {"email": "bob@initech.com"},  # a colleague of a known lead
    )
    await as_one_batch(app, db, batch)

    await drain(app)

    assert statuses(db, batch) == ["routed"] * 6
    eve, dan, cara, fay, gus, bob = [await get(client, auth, lead_id) for lead_id in batch]
    by_name = (
        "initrode-am@x.com",
        "account",
        "To initrode-am@x.com, owner of the account Initrode AG.",
    )
    assert account_of(dan) == by_name
    assert account_of(fay) == by_name
    assert account_of(cara) == (
        "globex-am@x.com",
        "account",
        "To globex-am@x.com, owner of the account Globex GmbH.",
    )
    for lead in (eve, gus):
        owner, rule, _ = account_of(lead)
        assert (owner in ("a@x.com", "b@x.com"), rule) == (True, "team")
    owner, rule, sentence = account_of(bob)
    assert (owner, rule) == (known_owner, "sticky")
    assert "same company (initech.com)" in sentence
