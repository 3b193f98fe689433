"""Reading leads: one lead with its story, pages of leads, and the token that guards them."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from tests.factories import submit


async def test_reading_needs_the_bearer_token(client: httpx.AsyncClient) -> None:
    lead_id = await submit(client, email="a@acme.de")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        for path in ("/v1/leads", f"/v1/leads/{lead_id}"):
            response = await client.get(path, headers=headers)
            assert response.status_code == 401
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"] == "Bearer"


async def test_a_lead_shows_identity_source_consent_and_timeline(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    lead_id = await submit(
        client,
        email="ana@acme.de",
        full_name="Ana Weber",
        company="Acme",
        utm_source="google",
        consent=["marketing_email"],
    )

    response = await client.get(f"/v1/leads/{lead_id}", headers=auth)

    assert response.status_code == 200
    lead = response.json()
    assert lead["id"] == lead_id
    assert lead["status"] == "received"
    assert (lead["email"], lead["first_name"], lead["last_name"], lead["company"]) == (
        "ana@acme.de",
        "Ana",
        "Weber",
        "Acme",
    )
    assert lead["source"]["utm_source"] == "google"
    assert lead["source"]["first_touch"] == {"utm_source": "google"}
    assert [(c["purpose"], c["status"], c["policy_version"]) for c in lead["consent"]] == [
        ("marketing_email", "granted", "2026-01")
    ]
    assert [e["type"] for e in lead["timeline"]] == ["received", "consent.granted"]
    assert lead["timeline"][0]["detail"]["form_key"] == "contact"
    assert len(lead["submissions"]) == 1


async def test_unknown_and_malformed_ids(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    missing = await client.get("/v1/leads/00000000-0000-4000-8000-000000000000", headers=auth)
    malformed = await client.get("/v1/leads/not-a-uuid", headers=auth)

    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["field"] == "path.lead_id"


async def test_pages_walk_every_lead_once_newest_first(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = [await submit(client, email=f"p{n}@acme.de") for n in range(7)]

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/leads", params=params, headers=auth)).json()
        assert page["total"] == 7
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == list(reversed(created))
    assert pages == 3


async def test_status_filter_and_bad_parameters(
    client: httpx.AsyncClient, auth: dict[str, str], db: psycopg.Connection[dict[str, Any]]
) -> None:
    await submit(client, email="ok@acme.de")
    spam = await submit(client, email="bot@acme.de", _gotcha="x")

    quarantined = (await client.get("/v1/leads?status=quarantined", headers=auth)).json()
    bad_status = await client.get("/v1/leads?status=lost", headers=auth)
    bad_cursor = await client.get("/v1/leads?cursor=%%%", headers=auth)
    bad_limit = await client.get("/v1/leads?limit=0", headers=auth)

    assert [item["id"] for item in quarantined["items"]] == [spam]
    assert quarantined["total"] == 1
    for response in (bad_status, bad_cursor, bad_limit):
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
    assert bad_cursor.json()["errors"][0]["field"] == "cursor"
