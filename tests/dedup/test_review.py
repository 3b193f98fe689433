"""Fuzzy decisions on PostgreSQL, and a person's decisions: merge, not-duplicate, unmerge."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.factories import dedup_step, lead_view, submit
from tests.pipeline.conftest import drain

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
    first = await submit(client, "open", email="jonathan.smith@acme.de", **JONATHAN)
    await drain(app)
    again = await submit(
        client,
        "open",
        phone="+49 30 1234567",
        first_name="Jonathon",
        last_name="Smith",
        company="ACME",
        street="Hauptstr. 5",
    )
    await drain(app)

    merged = await lead_view(client, auth, again)
    assert merged["status"] == "merged"
    assert merged["duplicate_of"] == first
    detail = dedup_step(merged)
    assert (detail["decision"], detail["rule"]) == ("same", "fuzzy")
    assert detail["probability"] >= 0.95
    assert detail["fields"]["first_name"]["level"] == "very similar"
    assert detail["fields"]["company"]["level"] == "identical"
    assert "very similar first name" in detail["summary"]
    survivor = await lead_view(client, auth, first)
    assert survivor["phone"] == "+49301234567"  # filled in by the returning visit
    assert survivor["email"] == "jonathan.smith@acme.de"


async def test_a_namesake_elsewhere_is_a_new_lead(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await submit(client, "open", email="jonathan.smith@acme.de", **JONATHAN)
    await drain(app)
    namesake = await submit(
        client, "open", email="jsmith@globex.com", first_name="Jonathan", last_name="Smith"
    )
    await drain(app)

    lead = await lead_view(client, auth, namesake)
    assert lead["status"] != "merged"
    assert dedup_step(lead)["decision"] == "new"
    assert lead["duplicates"] == []


async def test_possible_pair_a_person_keeps_apart_is_never_linked_again(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await submit(client, "open", email="jonathan.smith@acme.de", **JONATHAN)
    await drain(app)
    second = await submit(client, "open", email="j.smith@acme.de", **JONATHAN)
    await drain(app)

    lead = await lead_view(client, auth, second)
    assert lead["status"] != "merged"  # two different addresses: a person decides
    detail = dedup_step(lead)
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

    third = await submit(client, "open", email="j.smith@acme.de", message="Call me", **JONATHAN)
    await drain(app)
    again = await lead_view(client, auth, third)
    assert again["duplicate_of"] == second  # same address as the second: merged into it
    survivor = await lead_view(client, auth, second)
    assert [(d["lead_id"], d["status"]) for d in survivor["duplicates"]] == [
        (first, "not_duplicate"),
        (third, "merged"),
    ]


async def test_a_person_merges_and_undoes_the_merge(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await submit(client, "open", email="jonathan.smith@acme.de", title="CTO", **JONATHAN)
    second = await submit(
        client,
        "open",
        email="jon@smith.family",
        first_name="Jon",
        last_name="Smith",
        title="Founder",
    )
    await drain(app)
    before = await lead_view(client, auth, first)

    merged = await client.post(f"/v1/leads/{second}/merge", json={"into": first}, headers=auth)
    assert merged.status_code == 200, merged.text
    changed = ["email", "first_name", "title"]  # the newer non-empty values (most_recent)
    assert merged.json() == {"survivor": first, "merged": second, "changed_fields": changed}
    survivor = await lead_view(client, auth, first)
    assert (survivor["title"], survivor["first_name"]) == ("Founder", "Jon")
    assert len(survivor["submissions"]) == 2
    gone = await lead_view(client, auth, second)
    assert (gone["status"], gone["duplicate_of"]) == ("merged", first)
    again = await client.post(f"/v1/leads/{second}/merge", json={"into": first}, headers=auth)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"

    undone = await client.post(f"/v1/leads/{second}/unmerge", headers=auth)
    assert undone.status_code == 200, undone.text
    await drain(app)
    back = await lead_view(client, auth, second)
    assert back["duplicate_of"] is None
    assert back["status"] not in ("merged", "failed")
    assert len(back["submissions"]) == 1
    survivor = await lead_view(client, auth, first)
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
    lead = await submit(client, "open", email="solo@acme.de")
    await drain(app)
    unknown = "00000000-0000-4000-8000-000000000000"

    itself = await client.post(f"/v1/leads/{lead}/merge", json={"into": lead}, headers=auth)
    missing = await client.post(f"/v1/leads/{lead}/merge", json={"into": unknown}, headers=auth)
    not_merged = await client.post(f"/v1/leads/{lead}/unmerge", headers=auth)
    no_token = await client.post(f"/v1/leads/{lead}/not-duplicate", json={"of": unknown})

    assert [r.status_code for r in (itself, missing, not_merged, no_token)] == [422, 404, 409, 401]
    assert itself.json()["errors"] == [{"field": "into", "reason": "the same lead as in the path"}]
    assert (await lead_view(client, auth, lead))["status"] != "merged"


async def test_duplicate_stats_count_merges_by_reason(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await submit(client, "open", email="ana@acme.de")
    await drain(app)
    await submit(client, "open", email="ana@acme.de", phone="+49 30 1234567")
    await submit(client, "open", email="bob@acme.de")
    await drain(app)

    stats = (await client.get("/v1/duplicates/stats", headers=auth)).json()
    assert stats["leads"] == 3
    assert (stats["duplicates"], stats["by_reason"]) == (1, {"same_email": 1})
    assert stats["duplicate_rate"] == round(1 / 3, 4)


async def test_alike_addresses_are_never_merged_without_a_person(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await submit(client, "open", email="jonathan.smith@acme.de", **JONATHAN)
    await drain(app)
    typo = await submit(client, "open", email="jonathan.smit@acme.de", **JONATHAN)
    await drain(app)

    lead = await lead_view(client, auth, typo)
    assert lead["duplicate_of"] is None
    assert dedup_step(lead)["decision"] == "possible"
    assert dedup_step(lead)["possible"][0]["lead"] == first
    assert (
        dedup_step(lead)["possible"][0]["probability"] >= 0.95
    )  # likely, and still a person's call
