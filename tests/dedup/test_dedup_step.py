"""The lead.dedup step on PostgreSQL: returning people, merges, and the concurrent case."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg
from fastapi import FastAPI

from tests.pipeline.conftest import drain

URL = "/v1/forms/contact/submissions"
Row = dict[str, Any]


async def submit(client: httpx.AsyncClient, **fields: str) -> str:
    response = await client.post(URL, json=fields)
    assert response.status_code == 202, response.text
    return str(response.json()["lead_id"])


async def get(client: httpx.AsyncClient, auth: dict[str, str], lead_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/v1/leads/{lead_id}", headers=auth)).json()
    return body


async def test_a_returning_person_updates_their_lead(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str], db: psycopg.Connection[Row]
) -> None:
    first = await submit(
        client,
        email="ana.weber@gmail.com",
        name="Ana Weber",
        utm_source="google",
        consent_marketing_email="yes",
    )
    await drain(app)
    second = await submit(
        client,
        email="AnaWeber+webinar@googlemail.com",
        tel="030 901820",
        title="Head of Sales",
        msg="We spoke last week; ready for a quote.",
        utm_source="newsletter",
    )
    await drain(app)

    survivor, merged = await get(client, auth, first), await get(client, auth, second)
    assert merged["status"] == "merged"
    assert merged["duplicate_of"] == first
    assert survivor["status"] == "synced"
    assert survivor["phone"] == "+4930901820"  # filled from the returning visit
    assert survivor["title"] == "Head of Sales"
    assert survivor["first_name"] == "Ana"
    assert survivor["source"]["first_touch"] == {"utm_source": "google"}
    assert survivor["source"]["last_touch"] == {"utm_source": "newsletter"}
    assert len(survivor["submissions"]) == 2  # every submission stays with the person
    assert [c["purpose"] for c in survivor["consent"]] == ["marketing_email"]
    event = next(e for e in survivor["timeline"] if e["type"] == "lead.duplicate_merged")
    assert event["detail"]["duplicate"] == second
    assert event["detail"]["matched_on"] == ["email"]
    step = next(e for e in merged["timeline"] if e["type"] == "lead.dedup")
    assert (step["detail"]["decision"], step["detail"]["survivor"]) == ("same", first)
    crm = db.execute(
        "SELECT count(*) AS n FROM procrastinate_jobs WHERE task_name = 'crm.sync'"
    ).fetchone()
    assert crm == {"n": 1}  # the duplicate is not sent to the CRM as a second contact


async def test_the_same_phone_is_the_same_person_and_strangers_stay_apart(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await submit(client, email="ben@acme.de", tel="+49 30 901820")
    other = await submit(client, email="carla@acme.de", tel="+49 30 901821")
    await drain(app)
    again = await submit(client, email="ben.private@gmail.com", tel="030 901820")
    await drain(app)

    assert (await get(client, auth, again))["duplicate_of"] == first
    assert (await get(client, auth, other))["duplicate_of"] is None
    merged = await get(client, auth, again)
    step = next(e for e in merged["timeline"] if e["type"] == "lead.dedup")
    assert step["detail"]["matched_on"] == ["phone"]


async def test_two_tabs_at_the_same_moment_end_as_one_lead(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    for n in range(8):  # eight different submissions of one person, all queued
        await submit(client, email="race@acme.de", msg=f"attempt {n}")

    await asyncio.gather(*(drain(app, concurrency=4) for _ in range(3)))

    live = db.execute(
        "SELECT count(*) AS n FROM leads WHERE email_key = 'race@acme.de' AND duplicate_of IS NULL"
    ).fetchone()
    merged = db.execute("SELECT count(*) AS n FROM leads WHERE status = 'merged'").fetchone()
    assert live == {"n": 1}
    assert merged == {"n": 7}
    moved = db.execute("SELECT count(DISTINCT lead_id) AS n FROM submissions").fetchone()
    assert moved == {"n": 1}
