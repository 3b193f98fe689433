"""The lead.dedup step on PostgreSQL: returning people, merges, and the concurrent case."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.dedup import repository as dedup_repository
from leadflow.models import Lead, LeadStatus
from leadflow.stage import Batch
from tests.factories import dedup_step, inputs, lead_view, submissions_url, submit
from tests.pipeline.conftest import drain

Row = dict[str, Any]
# Tests of later stages import these two from here; new ones take them from tests.factories.
get = lead_view


async def test_a_returning_person_updates_their_lead(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str], db: psycopg.Connection[Row]
) -> None:
    first = await submit(
        client,
        email="ana.weber@gmail.com",
        full_name="Ana Weber",
        utm_source="google",
        consent=["marketing_email"],
    )
    await drain(app)
    second = await submit(
        client,
        email="AnaWeber+webinar@googlemail.com",
        phone="030 901820",
        title="Head of Sales",
        message="We spoke last week; ready for a quote.",
        utm_source="newsletter",
    )
    await drain(app)

    survivor, merged = await lead_view(client, auth, first), await lead_view(client, auth, second)
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
    assert event["detail"]["rule"] == "same_email"
    assert "email" in event["detail"]["matched_keys"]
    step = dedup_step(merged)
    assert (step["decision"], step["survivor"]) == ("same", first)
    # the duplicate is no second contact in the CRM; the survivor's record is updated
    assert [e["type"] for e in survivor["timeline"]][-1] == "crm.updated"
    assert merged["external_ids"] == {}
    crm = db.execute(
        "SELECT args FROM procrastinate_jobs WHERE task_name = 'crm.sync' ORDER BY id"
    ).fetchall()
    assert [row["args"]["lead_id"] for row in crm] == [first, first]


async def test_a_retried_submission_hears_its_first_answer_after_a_merge(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await submit(client, email="once@acme.de")
    await drain(app)
    headers = {"Idempotency-Key": "visit-2"}
    again = inputs(email="once@acme.de", message="again")
    first = await client.post(submissions_url(), json=again, headers=headers)
    await drain(app)  # merged into the first lead meanwhile
    retry = await client.post(submissions_url(), json=again, headers=headers)

    assert retry.json() == first.json()


async def test_the_same_phone_is_the_same_person_and_strangers_stay_apart(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await submit(client, email="ben@acme.de", phone="+49 30 901820")
    other = await submit(client, email="carla@acme.de", phone="+49 30 901821")
    await drain(app)
    again = await submit(client, "open", phone="+49 30 901820")
    await drain(app)  # merged before the colleague arrives (a worker may run both at once)
    colleague = await submit(client, email="dora@acme.de", phone="030 901820")  # same switchboard
    await drain(app)

    merged = await lead_view(client, auth, again)
    assert merged["duplicate_of"] == first
    assert (await lead_view(client, auth, other))["duplicate_of"] is None
    assert dedup_step(merged)["rule"] == "same_phone"
    apart = await lead_view(client, auth, colleague)
    assert apart["duplicate_of"] is None
    step = dedup_step(apart)
    assert step["decision"] == "possible"  # linked for a person, never merged
    assert [(p["lead"], p["rule"]) for p in step["possible"]] == [(first, "different_emails")]


async def test_two_tabs_at_the_same_moment_end_as_one_lead(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    for n in range(8):  # eight different submissions of one person, all queued
        await submit(client, email="race@acme.de", message=f"attempt {n}")

    await asyncio.gather(*(drain(app, concurrency=4) for _ in range(3)))

    live = db.execute(
        "SELECT count(*) AS n FROM leads WHERE email_key = 'race@acme.de' AND duplicate_of IS NULL"
    ).fetchone()
    merged = db.execute("SELECT count(*) AS n FROM leads WHERE status = 'merged'").fetchone()
    assert live == {"n": 1}
    assert merged == {"n": 7}
    moved = db.execute("SELECT count(DISTINCT lead_id) AS n FROM submissions").fetchone()
    assert moved == {"n": 1}


async def test_a_survivor_merged_by_a_person_meanwhile_is_not_merged_into(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: psycopg.Connection[Row],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = await submit(client, email="ana@acme.de", full_name="Ana Weber")
    other = await submit(client, email="zoe@acme.de", full_name="Zoe Brandt")
    await drain(app)
    again = await submit(client, email="ana@acme.de", full_name="Ana Weber", message="me again")
    lock_lead = dedup_repository.lock_lead

    async def a_person_merges_first(
        session: AsyncSession, batch: Batch, lead_id: uuid.UUID
    ) -> Lead | None:
        if str(lead_id) == first:  # between the candidate read and the survivor's lock
            await session.execute(
                update(Lead)
                .where(Lead.id == lead_id)
                .values(duplicate_of=uuid.UUID(other), status=LeadStatus.MERGED.value)
            )
        return await lock_lead(session, batch, lead_id)

    monkeypatch.setattr(dedup_repository, "lock_lead", a_person_merges_first)
    await drain(app)

    row = db.execute("SELECT status, duplicate_of FROM leads WHERE id = %s", (again,)).fetchone()
    assert row == {"status": "received", "duplicate_of": None}  # rolled back, to be retried
    attempt = db.execute("SELECT outcome, error FROM job_attempts").fetchone()
    assert attempt is not None
    assert attempt["outcome"] == "retry"
    assert "meanwhile" in attempt["error"]
