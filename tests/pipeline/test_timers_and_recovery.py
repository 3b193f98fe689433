"""Timers, periodic checks and crash recovery, with the clock moved by hand."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import psycopg
from fastapi import FastAPI

from leadflow.db import transaction
from leadflow.jobs import job_app
from leadflow.models.base import utcnow
from leadflow.pipeline import maintenance, service
from tests.pipeline.conftest import drain, events_of, job_context

Row = dict[str, Any]
FIRED: list[str] = []


@job_app.task(name="test.deadline", queue="timers")
async def deadline_reached(lead_id: str) -> None:
    FIRED.append(lead_id)


async def _lead(client: httpx.AsyncClient, email: str) -> str:
    response = await client.post("/v1/forms/contact/submissions", json={"email": email})
    return str(response.json()["lead_id"])


async def test_a_timer_fires_at_its_time_and_not_before(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    FIRED.clear()
    lead_id = await _lead(client, "timer@acme.de")
    rt = app.state.runtime
    async with transaction(rt.sessions) as session:
        await service.schedule_timer(
            session, deadline_reached, at=utcnow() + timedelta(hours=4), lead_id=uuid.UUID(lead_id)
        )

    await drain(app)
    assert FIRED == []

    db.execute(
        "UPDATE procrastinate_jobs SET scheduled_at = now() WHERE task_name = 'test.deadline'"
    )
    await drain(app)
    assert [lead_id] == FIRED


async def test_timers_of_a_lead_can_be_cancelled(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    FIRED.clear()
    mine, other = await _lead(client, "mine@acme.de"), await _lead(client, "other@acme.de")
    rt = app.state.runtime
    async with transaction(rt.sessions) as session:
        for lead_id in (mine, other):
            for hours in (1, 2):
                await service.schedule_timer(
                    session,
                    deadline_reached,
                    at=utcnow() + timedelta(hours=hours),
                    lead_id=uuid.UUID(lead_id),
                )
    async with transaction(rt.sessions) as session:
        cancelled = await service.cancel_timers(session, uuid.UUID(mine), ["test.deadline"])

    db.execute(
        "UPDATE procrastinate_jobs SET scheduled_at = now() WHERE task_name = 'test.deadline'"
    )
    await drain(app)
    assert cancelled == 2
    assert [other, other] == FIRED
    assert "timers.cancelled" in events_of(db, mine)


def take_with_a_dead_worker(db: psycopg.Connection[Row]) -> None:
    """A worker took the lead.process job, then died: its heartbeat is a minute old."""
    worker = db.execute(
        "INSERT INTO procrastinate_workers (last_heartbeat) "
        "VALUES (now() - interval '60 seconds') RETURNING id"
    ).fetchone()
    assert worker is not None
    db.execute(
        "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s "
        "WHERE task_name = 'lead.process'",
        (worker["id"],),
    )


async def test_a_job_of_a_dead_worker_is_requeued_and_runs(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    lead_id = await _lead(client, "orphan@acme.de")
    take_with_a_dead_worker(db)
    recovered = await maintenance.recover_stalled(
        job_context(app, "queue.recover_stalled"), timestamp=0
    )
    await drain(app)

    assert recovered == 1
    assert events_of(db, lead_id)[:2] == ["received", "job.recovered"]
    assert db.execute("SELECT status FROM leads").fetchone() == {"status": "synced"}
    stalled = db.execute("SELECT outcome, error_type FROM job_attempts").fetchall()
    assert stalled == [{"outcome": "stalled", "error_type": "WorkerLost"}]


async def test_a_lead_stuck_with_nothing_queued_is_flagged_and_requeued(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    lead_id = await _lead(client, "stuck@acme.de")
    fresh_id = await _lead(client, "fresh@acme.de")
    # Its job vanished (say, deleted by hand) and it has waited past pipeline.stuck_after.
    db.execute("DELETE FROM procrastinate_jobs")
    db.execute(
        "UPDATE leads SET status_changed_at = now() - interval '6 minutes' WHERE id = %s",
        (lead_id,),
    )

    flagged = await maintenance.check_stuck_leads(job_context(app, "lead.check_stuck"), timestamp=0)
    await drain(app)

    assert flagged == 1
    assert events_of(db, lead_id)[1] == "alert.lead_stuck"
    assert db.execute("SELECT status FROM leads WHERE id = %s", (lead_id,)).fetchone() == {
        "status": "synced"
    }
    assert events_of(db, fresh_id) == ["received"]  # not stuck yet: left alone


async def test_concurrent_workers_run_each_step_once(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    lead_ids = [await _lead(client, f"many{n}@acme.de") for n in range(40)]

    await asyncio.gather(*(drain(app, concurrency=4) for _ in range(3)))

    counts = db.execute(
        "SELECT type, count(*) AS n FROM lead_events GROUP BY type ORDER BY type"
    ).fetchall()
    assert {row["type"]: row["n"] for row in counts} == {
        "received": 40,
        "lead.validate": 40,
        "lead.dedup": 40,
        "lead.score": 40,
        "lead.route": 40,
        "crm.synced": 40,
    }
    statuses = db.execute("SELECT DISTINCT status FROM leads").fetchall()
    assert statuses == [{"status": "synced"}]
    assert len(lead_ids) == 40


async def test_a_job_that_keeps_killing_its_worker_ends_as_a_dead_letter(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row], auth: dict[str, str]
) -> None:
    await _lead(client, "oom@acme.de")
    for _ in range(service.MAX_STALLS):
        take_with_a_dead_worker(db)
        await maintenance.recover_stalled(job_context(app, "queue.recover_stalled"), timestamp=0)

    job = db.execute(
        "SELECT status FROM procrastinate_jobs WHERE task_name = 'lead.process'"
    ).fetchone()
    assert job == {"status": "failed"}
    assert db.execute("SELECT status FROM leads").fetchone() == {"status": "failed"}
    letters = (await client.get("/v1/dead-letters", headers=auth)).json()["items"]
    assert [a["outcome"] for a in letters[0]["history"]] == ["stalled"] * 4 + ["dead"]
