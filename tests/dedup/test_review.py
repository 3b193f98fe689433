"""Fuzzy decisions on PostgreSQL, and a person's decisions: merge, not-duplicate, unmerge."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from tests.dedup.test_dedup_step import get
from tests.pipeline.conftest import drain


async def open_form(client: httpx.AsyncClient, **fields: str) -> str:
    response = await client.post("/v1/forms/open/submissions", json=fields)
    assert response.status_code == 202, response.text
    return str(response.json()["lead_id"])


def step(lead: dict[str, Any]) -> dict[str, Any]:
    detail: dict[str, Any] = next(e for e in lead["timeline"] if e["type"] == "lead.dedup")[
        "detail"
    ]
    return detail


JONATHAN = {
    "first_name": "Jonathan",
    "last_name": "Smith",
    "company": "Acme GmbH",
    "street": "Hauptstrasse 5",
    "city": "Berlin",
}


async def test_a_misspelt_returning_person_is_merged_on_name_company_and_address(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await open_form(client, Mail="jonathan.smith@acme.de", **JONATHAN)
    await drain(app)
    again = await open_form(
        client,
        phone="+49 30 1234567",
        first_name="Jonathon",
        last_name="Smith",
        company="ACME",
        street="Hauptstr. 5",
    )
    await drain(app)

    merged = await get(client, auth, again)
    assert merged["status"] == "merged"
    assert merged["duplicate_of"] == first
    detail = step(merged)
    assert (detail["decision"], detail["rule"]) == ("same", "fuzzy")
    assert detail["probability"] >= 0.95
    assert detail["fields"]["first_name"]["level"] == "very similar"
    assert detail["fields"]["company"]["level"] == "identical"
    assert "very similar first name" in detail["summary"]
    survivor = await get(client, auth, first)
    assert survivor["phone"] == "+49301234567"  # filled in by the returning visit
    assert survivor["email"] == "jonathan.smith@acme.de"


async def test_a_namesake_elsewhere_is_a_new_lead(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await open_form(client, Mail="jonathan.smith@acme.de", **JONATHAN)
    await drain(app)
    namesake = await open_form(
        client, Mail="jsmith@globex.com", first_name="Jonathan", last_name="Smith"
    )
    await drain(app)

    lead = await get(client, auth, namesake)
    assert lead["status"] != "merged"
    assert step(lead)["decision"] == "new"
    assert lead["duplicates"] == []


async def test_possible_pair_a_person_keeps_apart_is_never_linked_again(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await open_form(client, Mail="jonathan.smith@acme.de", **JONATHAN)
    await drain(app)
    second = await open_form(client, Mail="j.smith@acme.de", **JONATHAN)
    await drain(app)

    lead = await get(client, auth, second)
    assert lead["status"] != "merged"  # two different addresses: a person decides
    detail = step(lead)
    assert detail["decision"] == "possible"
    assert detail["possible"][0]["lead"] == first
    assert detail["possible"][0]["rule"] == "different_emails"
    assert [(d["lead_id"], d["status"]) for d in lead["duplicates"]] == [(first, "possible")]
    review = (await client.get("/v1/duplicates", headers=auth)).json()
    assert [(p["lead_id"], p["match_id"]) for p in review["items"]] == [(second, first)]

    decided = await client.post(
        f"/v1/leads/{second}/not-duplicate", json={"of": first}, headers=auth
    )
    assert decided.status_code == 200, decided.text
    assert (await client.get("/v1/duplicates", headers=auth)).json()["items"] == []

    third = await open_form(client, Mail="j.smith@acme.de", message="Call me", **JONATHAN)
    await drain(app)
    again = await get(client, auth, third)
    assert again["duplicate_of"] == second  # same address as the second: merged into it
    survivor = await get(client, auth, second)
    assert [(d["lead_id"], d["status"]) for d in survivor["duplicates"]] == [
        (first, "not_duplicate"),
        (third, "merged"),
    ]


async def test_a_person_merges_and_undoes_the_merge(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await open_form(client, Mail="jonathan.smith@acme.de", title="CTO", **JONATHAN)
    second = await open_form(
        client, Mail="jon@smith.family", first_name="Jon", last_name="Smith", title="Founder"
    )
    await drain(app)
    before = await get(client, auth, first)

    merged = await client.post(f"/v1/leads/{second}/merge", json={"into": first}, headers=auth)
    assert merged.status_code == 200, merged.text
    changed = ["email", "first_name", "title"]  # the newer non-empty values (most_recent)
    assert merged.json() == {"survivor": first, "merged": second, "changed_fields": changed}
    survivor = await get(client, auth, first)
    assert (survivor["title"], survivor["first_name"]) == ("Founder", "Jon")
    assert len(survivor["submissions"]) == 2
    gone = await get(client, auth, second)
    assert (gone["status"], gone["duplicate_of"]) == ("merged", first)
    again = await client.post(f"/v1/leads/{second}/merge", json={"into": first}, headers=auth)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"

    undone = await client.post(f"/v1/leads/{second}/unmerge", headers=auth)
    assert undone.status_code == 200, undone.text
    await drain(app)
    back = await get(client, auth, second)
    assert back["duplicate_of"] is None
    assert back["status"] not in ("merged", "failed")
    assert len(back["submissions"]) == 1
    survivor = await get(client, auth, first)
    assert survivor["title"] == before["title"] == "CTO"
    assert (survivor["first_name"], survivor["email"]) == ("Jonathan", "jonathan.smith@acme.de")
    assert survivor["submissions"] == before["submissions"]
    types = [e["type"] for e in survivor["timeline"]]
    assert "lead.duplicate_merged" in types
    assert "lead.merge_undone" in types
    assert [(d["lead_id"], d["status"]) for d in survivor["duplicates"]] == [(second, "unmerged")]


async def test_bad_review_requests_are_problems_and_change_nothing(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    lead = await open_form(client, Mail="solo@acme.de")
    await drain(app)
    unknown = "00000000-0000-4000-8000-000000000000"

    itself = await client.post(f"/v1/leads/{lead}/merge", json={"into": lead}, headers=auth)
    missing = await client.post(f"/v1/leads/{lead}/merge", json={"into": unknown}, headers=auth)
    not_merged = await client.post(f"/v1/leads/{lead}/unmerge", headers=auth)
    no_token = await client.post(f"/v1/leads/{lead}/not-duplicate", json={"of": unknown})

    assert [r.status_code for r in (itself, missing, not_merged, no_token)] == [422, 404, 409, 401]
    assert itself.json()["errors"] == [{"field": "into", "reason": "the same lead as in the path"}]
    assert (await get(client, auth, lead))["status"] != "merged"


async def test_duplicate_stats_count_merges_by_reason(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await open_form(client, Mail="ana@acme.de")
    await drain(app)
    await open_form(client, Mail="ana@acme.de", phone="+49 30 1234567")
    await open_form(client, Mail="bob@acme.de")
    await drain(app)

    stats = (await client.get("/v1/duplicates/stats", headers=auth)).json()
    assert stats["leads"] == 3
    assert (stats["duplicates"], stats["by_reason"]) == (1, {"same_email": 1})
    assert stats["duplicate_rate"] == round(1 / 3, 4)


async def test_alike_addresses_are_never_merged_without_a_person(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await open_form(client, Mail="jonathan.smith@acme.de", **JONATHAN)
    await drain(app)
    typo = await open_form(client, Mail="jonathan.smit@acme.de", **JONATHAN)
    await drain(app)

    lead = await get(client, auth, typo)
    assert lead["duplicate_of"] is None
    assert step(lead)["decision"] == "possible"
    assert step(lead)["possible"][0]["lead"] == first
    assert step(lead)["possible"][0]["probability"] >= 0.95  # likely, and still a person's call
