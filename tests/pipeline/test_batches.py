"""Leads the intake writes together go through the pipeline as one batch job, and a
batch that fails hands each of its leads a job of its own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import procrastinate
import psycopg
import pytest
from fastapi import FastAPI

from leadflow.config import Config
from leadflow.connectors.base import CrmLead
from leadflow.connectors.fakes import RecordingCrm
from leadflow.db import transaction
from leadflow.intake.service import queue_new_leads
from leadflow.models import Lead
from leadflow.pipeline import repository, tasks
from leadflow.pipeline.maintenance import requeue_stalled
from leadflow.pipeline.stages import STAGES, Stage
from leadflow.stage import Batch, PermanentFailure, RetryableFailure, StageResult
from tests.dedup.test_dedup_step import get
from tests.pipeline.conftest import drain, events_of
from tests.pipeline.test_engine import use_crm

URL = "/v1/forms/contact/submissions"
Row = dict[str, Any]
STAGE_EVENTS = ["received", "lead.validate", "lead.dedup", "lead.score", "lead.route"]


async def submitted(client: httpx.AsyncClient, *bodies: dict[str, str]) -> list[str]:
    """Submit one by one (no worker runs), in this order."""
    lead_ids = []
    for body in bodies:
        response = await client.post(URL, json=body)
        assert response.status_code == 202
        lead_ids.append(str(response.json()["lead_id"]))
    return lead_ids


async def as_one_batch(app: FastAPI, db: psycopg.Connection[Row], lead_ids: list[str]) -> None:
    """Queue the leads as the intake does when it writes them in one transaction."""
    db.execute("DELETE FROM procrastinate_jobs")
    rt = app.state.runtime
    async with transaction(rt.sessions) as session:
        await queue_new_leads(session, [uuid.UUID(lead_id) for lead_id in lead_ids])
    jobs = db.execute("SELECT task_name, args FROM procrastinate_jobs").fetchall()
    assert jobs == [{"task_name": "lead.process_batch", "args": {"lead_ids": lead_ids}}]


async def synced_together(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row], count: int
) -> list[str]:
    """Submit ``count`` people, write them as one batch, run the worker: all synced."""
    lead_ids = await submitted(client, *({"email": f"team{n}@acme.de"} for n in range(count)))
    await as_one_batch(app, db, lead_ids)
    await drain(app)
    assert statuses(db, lead_ids) == ["synced"] * count
    return lead_ids


def statuses(db: psycopg.Connection[Row], lead_ids: Sequence[str]) -> list[str]:
    rows = db.execute(
        "SELECT id::text, status FROM leads WHERE id = ANY(%s::uuid[])", (list(lead_ids),)
    ).fetchall()
    found = {row["id"]: row["status"] for row in rows}
    return [found[lead_id] for lead_id in lead_ids]


def job_states(db: psycopg.Connection[Row]) -> list[tuple[str, str]]:
    rows = db.execute(
        "SELECT task_name, status FROM procrastinate_jobs "
        "WHERE queue_name <> 'maintenance' ORDER BY id"
    ).fetchall()
    return [(row["task_name"], row["status"]) for row in rows]


async def test_leads_written_together_are_processed_and_synced_as_one_batch(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row], crm_log: Path
) -> None:
    lead_ids = await synced_together(app, client, db, 4)

    for lead_id in lead_ids:
        assert events_of(db, lead_id) == [*STAGE_EVENTS, "crm.synced"]
    # One job for the stages, one CRM call for the four records.
    assert job_states(db) == [("lead.process_batch", "succeeded"), ("crm.sync_batch", "succeeded")]
    calls = RecordingCrm(crm_log).calls()
    assert sorted(c["lead"]["lead_id"] for c in calls) == sorted(lead_ids)
    assert {(c["action"], c["batch"]) for c in calls} == {("create", 4)}
    synced = db.execute(
        "SELECT detail FROM lead_events WHERE type = 'crm.synced' AND lead_id = %s",
        (lead_ids[0],),
    ).fetchone()
    assert synced is not None
    assert synced["detail"]["batch"] == 4


async def test_the_same_person_twice_in_one_batch_is_merged_into_the_first(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row], crm_log: Path
) -> None:
    first, other, again = await submitted(
        client,
        {"email": "ana.weber@acme.de", "name": "Ana Weber"},
        {"email": "ben@zeta.de"},
        {"email": "Ana.Weber@acme.de", "name": "Ana Weber", "tel": "+49 30 1234567"},
    )
    await as_one_batch(app, db, [first, other, again])

    await drain(app)

    assert statuses(db, [first, other, again]) == ["synced", "synced", "merged"]
    row = db.execute("SELECT duplicate_of::text, phone FROM leads WHERE id = %s", (again,))
    assert row.fetchone() == {"duplicate_of": first, "phone": "+49301234567"}
    survivor = db.execute("SELECT phone FROM leads WHERE id = %s", (first,)).fetchone()
    assert survivor == {"phone": "+49301234567"}  # merged before it was scored and synced
    calls = RecordingCrm(crm_log).calls()
    assert sorted(c["lead"]["lead_id"] for c in calls) == sorted([first, other])
    [ana] = [c for c in calls if c["lead"]["lead_id"] == first]
    assert ana["lead"]["phone"] == "+49301234567"


def failing_for(email: str, error: Exception) -> tuple[Stage, ...]:
    """The stages, with validation refusing the lead with this email."""

    async def validate(session: Any, batch: Batch, lead: Lead, config: Config) -> StageResult:
        if lead.email == email:
            raise error
        return await STAGES[0].run(session, batch, lead, config)

    return (Stage("validate", STAGES[0].leaves, validate), *STAGES[1:])


@pytest.fixture
async def good_bad_fine(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Three leads submitted; validation fails the second for good."""
    monkeypatch.setattr(
        tasks, "STAGES", failing_for("bad@acme.de", PermanentFailure("no such mailbox"))
    )
    return await submitted(
        client, {"email": "good@acme.de"}, {"email": "bad@acme.de"}, {"email": "fine@acme.de"}
    )


async def test_a_lead_that_fails_in_a_batch_fails_alone_and_the_others_go_on(
    app: FastAPI, db: psycopg.Connection[Row], crm_log: Path, good_bad_fine: list[str]
) -> None:
    good, bad, fine = good_bad_fine
    await as_one_batch(app, db, [good, bad, fine])

    await drain(app)

    assert statuses(db, [good, bad, fine]) == ["synced", "failed", "synced"]
    # The batch kept nothing: each lead went through the stages once, in a job of its own.
    assert events_of(db, good) == ["received", "job.batch_split", *STAGE_EVENTS[1:], "crm.synced"]
    assert events_of(db, bad) == ["received", "job.batch_split", "job.dead_lettered"]
    split = db.execute(
        "SELECT detail FROM lead_events WHERE type = 'job.batch_split' AND lead_id = %s", (bad,)
    ).fetchone()
    assert split == {
        "detail": {
            "task": "lead.process",
            "batch": 3,
            "error": "PermanentFailure: no such mailbox",
        }
    }
    dead = db.execute(
        "SELECT task_name, args FROM procrastinate_jobs WHERE status = 'failed'"
    ).fetchall()
    assert dead == [{"task_name": "lead.process", "args": {"lead_id": bad}}]
    assert sorted(c["lead"]["lead_id"] for c in RecordingCrm(crm_log).calls()) == sorted(
        [good, fine]
    )


class FailingBatchCrm(RecordingCrm):
    """Refuses batch calls; takes leads one at a time."""

    async def upsert_leads(
        self, leads: Sequence[CrmLead], *, idempotency_keys: Sequence[str]
    ) -> list[str]:
        if len(leads) > 1:
            raise RetryableFailure("HTTP 502: bad gateway")
        return await super().upsert_leads(leads, idempotency_keys=idempotency_keys)


async def test_a_failed_crm_batch_call_is_retried_lead_by_lead(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: psycopg.Connection[Row],
    crm_log: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_crm(monkeypatch, FailingBatchCrm(crm_log))
    lead_ids = await submitted(client, {"email": "one@acme.de"}, {"email": "two@acme.de"})
    await as_one_batch(app, db, lead_ids)

    await drain(app)

    assert statuses(db, lead_ids) == ["synced", "synced"]
    assert events_of(db, lead_ids[0]) == [*STAGE_EVENTS, "job.batch_split", "crm.synced"]
    calls = RecordingCrm(crm_log).calls()
    assert sorted((c["lead"]["lead_id"], c["action"], c["batch"]) for c in calls) == sorted(
        (lead_id, "create", 1) for lead_id in lead_ids
    )
    assert ("crm.sync_batch", "succeeded") in job_states(db)
    assert job_states(db).count(("crm.sync", "succeeded")) == 2


async def test_a_lead_whose_batch_waits_is_not_stuck(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    lead_ids = await submitted(client, {"email": "wait1@acme.de"}, {"email": "wait2@acme.de"})
    await as_one_batch(app, db, lead_ids)
    rt = app.state.runtime

    async with transaction(rt.sessions) as session:
        waiting = await repository.stuck_leads(session, timedelta(0))
    db.execute("DELETE FROM procrastinate_jobs")
    async with transaction(rt.sessions) as session:
        lost = await repository.stuck_leads(session, timedelta(0))

    assert waiting == []
    assert sorted(str(lead.id) for lead in lost) == sorted(lead_ids)


async def test_lead_jobs_waiting_in_the_queue_are_taken_together(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row], crm_log: Path
) -> None:
    lead_ids = await submitted(client, *({"email": f"backlog{n}@acme.de"} for n in range(5)))
    assert job_states(db) == [("lead.process", "todo")] * 5  # one job each, as submitted

    await drain(app, concurrency=1)

    assert statuses(db, lead_ids) == ["synced"] * 5
    routed = db.execute("SELECT xmin::text AS tx FROM lead_events WHERE type = 'lead.route'")
    assert len({row["tx"] for row in routed.fetchall()}) == 1  # one transaction for the five
    assert job_states(db)[:5] == [("lead.process", "succeeded")] * 5
    assert {(c["action"], c["batch"]) for c in RecordingCrm(crm_log).calls()} == {("create", 5)}
    for lead_id in lead_ids:
        assert events_of(db, lead_id) == [*STAGE_EVENTS, "crm.synced"]


async def test_a_lead_failing_among_waiting_jobs_fails_alone(
    app: FastAPI, db: psycopg.Connection[Row], good_bad_fine: list[str]
) -> None:
    good, bad, fine = good_bad_fine

    await drain(app, concurrency=1)

    assert statuses(db, [good, bad, fine]) == ["synced", "failed", "synced"]
    for lead_id in (good, fine):  # nothing of the failed try shows: it was rolled back
        assert events_of(db, lead_id) == [*STAGE_EVENTS, "crm.synced"]
    assert events_of(db, bad) == ["received", "job.dead_lettered"]
    dead = db.execute("SELECT args FROM procrastinate_jobs WHERE status = 'failed'").fetchall()
    assert dead == [{"args": {"lead_id": bad}}]


async def test_a_dead_batch_job_is_found_by_any_of_its_leads(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row], auth: dict[str, str]
) -> None:
    lead_ids = await submitted(client, {"email": "dl1@acme.de"}, {"email": "dl2@acme.de"})
    await as_one_batch(app, db, lead_ids)
    # Only when handing its leads on failed too, for 33 hours (the database was down).
    db.execute("UPDATE procrastinate_jobs SET status = 'failed'")

    found = await client.get("/v1/dead-letters", params={"lead_id": lead_ids[1]}, headers=auth)
    other = await client.get(
        "/v1/dead-letters", params={"lead_id": str(uuid.uuid4())}, headers=auth
    )

    assert found.status_code == 200
    [item] = found.json()["items"]
    assert (item["kind"], item["args"]) == ("lead.process_batch", {"lead_ids": lead_ids})
    assert other.json()["items"] == []


async def test_batches_of_lookalikes_run_at_once_without_deadlock(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    names = ["Ana Weber", "Ben Kurz", "Carla Ruiz", "Dan Ito"]
    first = await submitted(
        client, *({"email": f"a{n}@alpha.de", "name": x} for n, x in enumerate(names))
    )
    second = await submitted(
        client, *({"email": f"b{n}@beta.de", "name": x} for n, x in enumerate(names))
    )

    # The same names (the same dedup keys), taken in opposite orders by two batches.
    for _ in range(3):
        db.execute("UPDATE leads SET status = 'received'")
        outcomes = await asyncio.gather(
            tasks.process(app.state.runtime, [uuid.UUID(i) for i in first]),
            tasks.process(app.state.runtime, [uuid.UUID(i) for i in reversed(second)]),
            return_exceptions=True,
        )
        assert list(outcomes) == [None, None]  # no DeadlockDetected

    assert set(statuses(db, first + second)) == {"routed"}


async def test_a_job_that_ran_before_runs_alone(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    lead_ids = await submitted(client, *({"email": f"again{n}@acme.de"} for n in range(4)))
    # The third one's job was requeued after its worker died (or failed): maybe the lead
    # that takes workers down, so it must not take others down with it.
    db.execute(
        "UPDATE procrastinate_jobs SET attempts = 1 WHERE args->>'lead_id' = %s", (lead_ids[2],)
    )

    await drain(app, concurrency=1)

    rows = db.execute(
        "SELECT lead_id::text, xmin::text AS tx FROM lead_events WHERE type = 'lead.route'"
    ).fetchall()
    tx = {row["lead_id"]: row["tx"] for row in rows}
    assert tx[lead_ids[0]] == tx[lead_ids[1]] == tx[lead_ids[3]]
    assert tx[lead_ids[2]] != tx[lead_ids[0]]
    assert statuses(db, lead_ids) == ["synced"] * 4


async def test_a_lead_queued_twice_in_one_run_is_processed_once(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    [lead_id] = await submitted(client, {"email": "twice@acme.de"})

    await tasks.process(app.state.runtime, [uuid.UUID(lead_id), uuid.UUID(lead_id)])

    assert events_of(db, lead_id) == STAGE_EVENTS
    assignments = db.execute("SELECT count(*) AS n FROM assignments").fetchone()
    assert assignments == {"n": 1}


async def test_two_returns_of_one_person_in_one_batch_both_merge_into_the_first(
    app: FastAPI,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    db: psycopg.Connection[Row],
    crm_log: Path,
) -> None:
    first, again, third = await submitted(
        client,
        {"email": "ana.weber@acme.de", "name": "Ana Weber"},
        {"email": "Ana.Weber@acme.de", "tel": "+49 30 1234567"},
        # More like the second than like the first as the table has them: matched with the
        # second, it would be merged into a merged lead.
        {"email": "ana.weber@acme.de", "tel": "030 1234567", "title": "Head of Sales"},
    )
    await as_one_batch(app, db, [first, again, third])

    await drain(app)

    assert statuses(db, [first, again, third]) == ["synced", "merged", "merged"]
    for duplicate in (again, third):  # in the batch's one go: nothing failed, nothing retried
        assert events_of(db, duplicate) == ["received", "lead.validate", "lead.dedup"]
        lead = await get(client, auth, duplicate)
        assert (lead["status"], lead["duplicate_of"]) == ("merged", first)
        [step] = [e["detail"] for e in lead["timeline"] if e["type"] == "lead.dedup"]
        assert (step["decision"], step["rule"], step["survivor"]) == ("same", "same_email", first)
    survivor = await get(client, auth, first)
    assert (survivor["status"], survivor["duplicate_of"]) == ("synced", None)
    assert (survivor["phone"], survivor["title"]) == ("+49301234567", "Head of Sales")
    assert len(survivor["submissions"]) == 3
    merged = [e["detail"] for e in survivor["timeline"] if e["type"] == "lead.duplicate_merged"]
    assert [m["duplicate"] for m in merged] == [again, third]
    assert sorted((d["lead_id"], d["status"], d["direction"]) for d in survivor["duplicates"]) == (
        sorted([(again, "merged", "into_this"), (third, "merged", "into_this")])
    )
    calls = RecordingCrm(crm_log).calls()
    assert [(c["lead"]["lead_id"], c["action"]) for c in calls] == [(first, "create")]
    assert (calls[0]["lead"]["phone"], calls[0]["lead"]["title"]) == (
        "+49301234567",
        "Head of Sales",
    )


async def test_a_possible_duplicate_in_a_batch_and_the_leads_after_it(
    app: FastAPI,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    db: psycopg.Connection[Row],
    crm_log: Path,
) -> None:
    # One switchboard number, three addresses: never the same person without a person.
    ben, dora, carl, dora_again = await submitted(
        client,
        {"email": "ben@acme.de", "tel": "+49 30 901820"},
        {"email": "dora@acme.de", "tel": "030 901820"},
        {"email": "carl@acme.de", "tel": "030 901820"},
        {"email": "dora@acme.de", "name": "Dora Lind"},  # Dora returns, in the same batch
    )
    await as_one_batch(app, db, [ben, dora, carl, dora_again])

    await drain(app)

    assert statuses(db, [ben, dora, carl, dora_again]) == ["synced", "synced", "synced", "merged"]
    told = {"lead.possible_duplicate", "lead.duplicate_merged"}  # by the leads after them
    for lead_id, told_of in ((ben, [dora, carl]), (dora, [carl, dora_again]), (carl, [])):
        events = events_of(db, lead_id)  # in the batch's one go: nothing failed or retried
        assert [t for t in events if t not in told] == [*STAGE_EVENTS, "crm.synced"]
        rows = db.execute(
            "SELECT coalesce(detail->>'lead', detail->>'duplicate') AS other FROM lead_events "
            "WHERE lead_id = %s AND type = ANY(%s) ORDER BY id",
            (lead_id, sorted(told)),
        ).fetchall()
        assert [row["other"] for row in rows] == told_of
    possible = {}
    for lead_id in (dora, carl):
        lead = await get(client, auth, lead_id)
        [step] = [e["detail"] for e in lead["timeline"] if e["type"] == "lead.dedup"]
        assert (step["outcome"], step["decision"]) == ("new", "possible")
        possible[lead_id] = sorted((p["lead"], p["rule"]) for p in step["possible"])
    assert possible == {
        dora: [(ben, "different_emails")],
        carl: sorted([(ben, "different_emails"), (dora, "different_emails")]),
    }
    pairs = db.execute("SELECT lead_id::text, match_id::text, status FROM lead_matches").fetchall()
    assert sorted((p["lead_id"], p["match_id"], p["status"]) for p in pairs) == sorted(
        [
            (dora, ben, "possible"),
            (carl, ben, "possible"),
            (carl, dora, "possible"),
            (dora_again, dora, "merged"),
        ]
    )
    returned = await get(client, auth, dora_again)
    assert returned["duplicate_of"] == dora
    [step] = [e["detail"] for e in returned["timeline"] if e["type"] == "lead.dedup"]
    assert (step["decision"], step["rule"], step["survivor"]) == ("same", "same_email", dora)
    survivor = await get(client, auth, dora)
    assert (survivor["first_name"], survivor["last_name"]) == ("Dora", "Lind")
    synced = sorted(c["lead"]["lead_id"] for c in RecordingCrm(crm_log).calls())
    assert synced == sorted([ben, dora, carl])


class _Unreachable:
    """The queue as a worker sees it while the database restarts: giving a job back fails
    with a connection error; finishing it would go through (another pooled connection)."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        self.finished: list[int] = []

    async def retry_job(self, job: Any, retry_at: Any = None) -> None:
        raise procrastinate.exceptions.ConnectorException("connection failed: shutting down")

    async def finish_job(self, job: Any, **kwargs: Any) -> None:
        self.finished.append(job.id)
        await self.manager.finish_job(job, **kwargs)


async def test_a_taken_job_that_cannot_be_given_back_is_never_finished(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row], monkeypatch: Any
) -> None:
    """Found by bench-pipeline's outage run: a batch failed as the database went down, the
    give-back failed too, and the taken job was finished as done, its lead left `received`."""
    (lead_id,) = await submitted(client, {"email": "taken@acme.de"})
    manager = app.state.runtime.jobs.job_manager
    worker_id = await manager.register_worker()
    job = await manager.fetch_job(queues=["leads"], worker_id=worker_id)
    assert job is not None
    monkeypatch.setattr(tasks, "stop_after_delay", lambda _: tasks.stop_after_delay(0.5))
    unreachable = _Unreachable(manager)

    await tasks._settle(unreachable, [job], done=False)  # type: ignore[arg-type]

    assert unreachable.finished == []
    assert job_states(db) == [("lead.process", "doing")]  # requeued when the worker run ends
    await manager.unregister_worker(worker_id)
    assert await requeue_stalled(app.state.runtime) == 1
    await drain(app, concurrency=1)
    assert statuses(db, [lead_id]) == ["synced"]
