"""The lead.validate step on a real PostgreSQL: what a person sees on the lead afterwards."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import psycopg
from fastapi import FastAPI

from leadflow.validation.deliverability import check_deliverability
from tests.factories import lead_view, submit
from tests.pipeline.conftest import drain

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


async def test_a_good_lead_is_cleaned_and_enriched(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    lead_id = await submit(
        client,
        email="Ana.Weber+Demo@ACME-Logistik.DE",
        full_name="ANA WEBER",
        company="  ACME   Logistik GmbH ",
        phone="030 901820",
        title="Head of Revenue Operations",
        utm_medium="cpc",
        utm_source="google",
        headers={"User-Agent": IPHONE, "Accept-Language": "de-DE,de;q=0.9"},
    )
    await drain(app)

    lead = await lead_view(client, auth, lead_id)
    assert lead["status"] == "synced"
    assert lead["email"] == "Ana.Weber+Demo@acme-logistik.de"
    assert lead["phone"] == "+4930901820"  # E.164, read with the form's region (DE)
    assert (lead["first_name"], lead["last_name"], lead["company"]) == (
        "Ana",
        "Weber",
        "ACME Logistik GmbH",
    )
    assert lead["country"] == "DE"
    quality = lead["quality"]
    assert quality | {"device": None} == quality | {
        "email_valid": True,
        "email_kind": "business",
        "email_normalized": "Ana.Weber+Demo@acme-logistik.de",
        "email_key": "ana.weber@acme-logistik.de",
        "email_domain": "acme-logistik.de",
        "phone_e164": "+4930901820",
        "phone_valid": True,
        "phone_type": "fixed_line",
        "phone_region": "DE",
        "country": "DE",
        "company_domain": "acme-logistik.de",
        "seniority": "director",
        "function": "revops",
        "channel": "paid",
        "spam_score": 0,
        "spam_reasons": [],
        "flags": [],
        "device": None,
    }
    assert quality["device"] == {
        "type": "mobile",
        "os": "iOS",
        "browser": "Mobile Safari",
        "bot": False,
    }
    validate = next(e for e in lead["timeline"] if e["type"] == "lead.validate")
    assert validate["detail"]["outcome"] == "passed"


async def test_a_bad_phone_next_to_a_good_email_is_a_flag_not_an_error(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    lead_id = await submit(client, email="ben@gmail.com", phone="12345")
    await drain(app)

    lead = await lead_view(client, auth, lead_id)
    assert lead["status"] == "synced"
    assert lead["phone"] == "12345"  # kept as given
    assert lead["quality"]["phone_valid"] is False
    assert lead["quality"]["flags"] == ["free_email", "invalid_phone"]


async def test_spam_is_quarantined_with_reasons_and_a_person_can_release_it(
    app: FastAPI,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    db: psycopg.Connection[dict[str, Any]],
) -> None:
    lead_id = await submit(
        client,
        email="offers@mailinator.com",
        message="We sell backlinks and guest post placements: https://links.example/buy",
    )
    await drain(app)

    lead = await lead_view(client, auth, lead_id)
    assert lead["status"] == "quarantined"
    assert lead["quality"]["spam_score"] >= 60
    assert "disposable email domain mailinator.com" in lead["quality"]["spam_reasons"]
    assert db.execute(
        "SELECT count(*) AS n FROM procrastinate_jobs WHERE task_name = 'crm.sync'"
    ).fetchone() == {"n": 0}  # quarantined leads never reach the CRM

    released = await client.post(
        f"/v1/leads/{lead_id}/release", json={"reason": "a real partner"}, headers=auth
    )
    again = await client.post(f"/v1/leads/{lead_id}/release", headers=auth)
    await drain(app)

    assert released.status_code == 202
    assert again.status_code == 409
    lead = await lead_view(client, auth, lead_id)
    assert lead["status"] == "synced"
    assert "released_from_quarantine" in lead["quality"]["flags"]
    assert lead["quality"]["spam_score"] >= 60  # still recorded, no longer stopping it
    released_event = next(e for e in lead["timeline"] if e["type"] == "lead.released")
    assert released_event["detail"]["reason"] == "a real partner"


async def test_honeypot_leads_can_be_released_too(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    lead_id = await submit(client, email="maybe@acme.de", _gotcha="x")
    missing = await client.post(
        "/v1/leads/00000000-0000-4000-8000-000000000000/release", headers=auth
    )
    unauthorised = await client.post(f"/v1/leads/{lead_id}/release")

    released = await client.post(f"/v1/leads/{lead_id}/release", headers=auth)
    await drain(app)

    assert missing.status_code == 404
    assert unauthorised.status_code == 401
    assert released.status_code == 202
    assert (await lead_view(client, auth, lead_id))["status"] == "synced"


async def test_a_dns_failure_is_a_flag_never_a_rejection() -> None:
    # No DNS server listens on this address: the lookup fails, the answer is "unknown".
    result = await check_deliverability(
        "ana@acme.de", dns_timeout=timedelta(seconds=1), nameservers=("127.0.0.1",)
    )
    assert result == "unknown"
