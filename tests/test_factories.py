"""The factories build what the service itself would: leads as the pipeline leaves them,
rows the database takes, and the inputs the test forms post."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from leadflow.models import LeadStatus
from tests.factories import (
    account,
    activity,
    inputs,
    insert,
    lead,
    lead_row,
    submit,
)
from tests.pipeline.conftest import drain

Row = dict[str, Any]


def test_inputs_use_each_forms_own_names() -> None:
    assert inputs(email="a@acme.de", full_name="Ana Weber", company="Acme", consent=["terms"]) == {
        "email": "a@acme.de",
        "name": "Ana Weber",
        "org": "Acme",
        "consent_terms": "yes",
    }
    assert inputs("open", email="a@acme.de", title="CTO") == {"Mail": "a@acme.de", "title": "CTO"}


async def test_a_validated_lead_carries_what_the_validation_step_gives(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    values = {"email": "Ben.Ortiz@Initech.com", "phone": "030 901820", "company": "Initech"}
    real = lead_row(db, await submit(client, **values))
    await drain(app)
    real = lead_row(db, str(real["id"]))

    built = lead(LeadStatus.VALIDATED, **values)

    assert (built.email, built.phone, built.company_domain) == (
        real["email"],
        real["phone"],
        real["company_domain"],
    )
    assert built.quality is not None
    assert built.quality == {key: real["quality"][key] for key in built.quality}


async def test_a_routed_lead_has_one_owner_or_one_queue_and_a_reason_like_routings(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    real = lead_row(db, await submit(client, email="cara@globex.de"))
    await drain(app)
    reason = lead_row(db, str(real["id"]))["routing_reason"]

    owned, queued = lead(LeadStatus.ROUTED), lead(LeadStatus.ROUTED, queue="triage")

    assert (owned.owner, owned.queue) == ("ana@example.com", None)
    assert (queued.owner, queued.queue) == (None, "triage")
    for built in (owned, queued):
        assert built.routing_reason is not None
        assert set(built.routing_reason) == set(reason) - {"by", "at"}


@pytest.mark.parametrize("status", list(LeadStatus))
async def test_a_lead_at_any_status_is_a_row_the_database_takes(
    app: FastAPI, db: psycopg.Connection[Row], status: LeadStatus
) -> None:
    built = lead(status)
    await insert(app.state.runtime.sessions, built)

    row = lead_row(db, str(built.id))
    assert (row["status"], row["email"]) == (status.value, built.email)
    assert (row["owner"] is None) != (row["queue"] is None) or row["routing_reason"] is None


async def test_accounts_and_activities_are_rows_the_database_takes(
    app: FastAPI, db: psycopg.Connection[Row]
) -> None:
    person = lead(LeadStatus.ROUTED, email="dan@globex.de")
    await insert(app.state.runtime.sessions, person, account("Globex GmbH", domain="globex.de"))
    await insert(
        app.state.runtime.sessions,
        activity(lead_id=person.id, email_key="dan@globex.de", ago=timedelta(days=2)),
        activity("track", name="Demo requested", email_key="dan@globex.de"),
    )

    accounts = db.execute("SELECT name, name_key, domain FROM accounts").fetchall()
    activities = db.execute(
        "SELECT type, lead_id, path, now() - occurred_at > interval '1 day' AS old "
        "FROM activities ORDER BY occurred_at"
    ).fetchall()
    assert accounts == [{"name": "Globex GmbH", "name_key": "globex", "domain": "globex.de"}]
    assert activities == [
        {"type": "page", "lead_id": person.id, "path": "/pricing", "old": True},
        {"type": "track", "lead_id": None, "path": "/pricing", "old": False},
    ]
