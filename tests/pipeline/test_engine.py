"""The pipeline on PostgreSQL: stages, effects once, retries, dead letters, replay."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from leadflow.connectors.base import CrmLead
from leadflow.connectors.fakes import RecordingCrm
from leadflow.pipeline import crm as pipeline_crm
from leadflow.pipeline import tasks
from leadflow.stage import PermanentFailure, RetryableFailure
from tests.pipeline.conftest import drain, events_of, job_context

URL = "/v1/forms/contact/submissions"
Row = dict[str, Any]
STAGE_EVENTS = ["received", "lead.validate", "lead.dedup", "lead.score", "lead.route"]


async def submit(client: httpx.AsyncClient, email: str) -> str:
    response = await client.post(URL, json={"email": email})
    assert response.status_code == 202
    return str(response.json()["lead_id"])


def lead_status(db: psycopg.Connection[Row], lead_id: str) -> str:
    row = db.execute("SELECT status FROM leads WHERE id = %s", (lead_id,)).fetchone()
    assert row is not None
    return str(row["status"])


def fast_forward(db: psycopg.Connection[Row]) -> None:
    """Make every waiting job due now: the clock jumps, nobody sleeps."""
    db.execute("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo'")


async def test_a_lead_without_crm_ends_routed_with_a_timed_event_per_stage(
    app_without_crm: FastAPI, db: psycopg.Connection[Row]
) -> None:
    transport = httpx.ASGITransport(app=app_without_crm)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        lead_id = await submit(client, "stages@acme.de")
    await drain(app_without_crm)

    assert lead_status(db, lead_id) == "routed"
    assert events_of(db, lead_id) == STAGE_EVENTS
    stages = db.execute(
        "SELECT type, duration_ms, detail FROM lead_events "
        "WHERE lead_id = %s AND type LIKE 'lead.%%'",
        (lead_id,),
    ).fetchall()
    assert all(row["duration_ms"] is not None and row["duration_ms"] >= 0 for row in stages)
    assert [row["detail"]["status"] for row in stages] == [
        "validated",
        "deduplicated",
        "scored",
        "routed",
    ]
    assert stages[0]["detail"]["outcome"] == "passed"  # validate: real checks
    assert stages[1]["detail"]["decision"] == "new"  # dedup: nobody like this yet
    assert stages[2]["detail"]["segment"] == "cold"  # score: the test config has no rules
    route = stages[3]["detail"]  # the test config's one rule: everyone to ana
    assert (route["owner"], route["queue"], route["rule"]) == ("ana@example.com", None, "everyone")


async def test_with_a_crm_the_lead_is_synced_once(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row], crm_log: Path
) -> None:
    lead_ids = [await submit(client, f"sync{n}@acme.de") for n in range(5)]
    await drain(app)

    assert {lead_status(db, lead_id) for lead_id in lead_ids} == {"synced"}
    calls = RecordingCrm(crm_log).calls()
    assert sorted(c["lead"]["lead_id"] for c in calls) == sorted(lead_ids)
    assert {c["action"] for c in calls} == {"create"}
    assert events_of(db, lead_ids[0]) == [*STAGE_EVENTS, "crm.synced"]
    external = db.execute("SELECT external_ids FROM leads WHERE id = %s", (lead_ids[0],)).fetchone()
    assert external is not None
    assert external["external_ids"]["recording"].startswith("rec-")


async def test_running_a_job_twice_does_not_repeat_its_effect(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row], crm_log: Path
) -> None:
    lead_id = await submit(client, "twice@acme.de")
    await drain(app)
    # at-least-once delivery: the same jobs come again
    await tasks.process(app.state.runtime, [uuid.UUID(lead_id)])
    await pipeline_crm.sync_to_crm(job_context(app, "crm.sync"), lead_id)

    assert len(RecordingCrm(crm_log).calls()) == 1
    assert events_of(db, lead_id).count("lead.route") == 1


class FlakyCrm:
    """Fails ``failures`` times with ``error``, then records like the real fake."""

    name = "recording"

    def __init__(self, path: Path, failures: int, error: Exception) -> None:
        self.inner = RecordingCrm(path)
        self.left = failures
        self.error = error

    async def upsert_lead(self, lead: CrmLead, *, idempotency_key: str) -> str:
        if self.left > 0:
            self.left -= 1
            raise self.error
        return await self.inner.upsert_lead(lead, idempotency_key=idempotency_key)


def use_crm(monkeypatch: pytest.MonkeyPatch, crm: Any) -> None:
    monkeypatch.setattr(pipeline_crm, "crm_from_config", lambda config, data_dir: crm)


async def test_a_retryable_failure_is_retried_on_schedule_until_it_succeeds(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: psycopg.Connection[Row],
    crm_log: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_crm(monkeypatch, FlakyCrm(crm_log, 2, RetryableFailure("HTTP 503: maintenance")))
    lead_id = await submit(client, "flaky@acme.de")

    await drain(app)
    job = db.execute(
        "SELECT status, attempts, scheduled_at - now() AS wait FROM procrastinate_jobs "
        "WHERE task_name = 'crm.sync'"
    ).fetchone()
    assert job is not None
    assert (job["status"], job["attempts"]) == ("todo", 1)
    assert 7 <= job["wait"].total_seconds() <= 13  # 10 s +/- 20 % jitter
    assert lead_status(db, lead_id) == "routed"

    fast_forward(db)
    await drain(app)
    fast_forward(db)
    await drain(app)

    assert lead_status(db, lead_id) == "synced"
    assert events_of(db, lead_id)[-3:] == [
        "job.retry_scheduled",
        "job.retry_scheduled",
        "crm.synced",
    ]
    attempts = db.execute("SELECT outcome, error FROM job_attempts ORDER BY id").fetchall()
    assert [(a["outcome"], a["error"]) for a in attempts] == [
        ("retry", "HTTP 503: maintenance")
    ] * 2
    assert len(RecordingCrm(crm_log).calls()) == 1


async def test_exhausted_retries_dead_letter_and_replay_keeps_the_history(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: psycopg.Connection[Row],
    crm_log: Path,
    auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crm = FlakyCrm(crm_log, 4, RetryableFailure("HTTP 502: bad gateway"))
    use_crm(monkeypatch, crm)
    lead_id = await submit(client, "dead@acme.de")
    await drain(app)
    for _ in range(3):  # the schedule has three delays: 10s, 1m, 1h
        fast_forward(db)
        await drain(app)

    assert lead_status(db, lead_id) == "failed"
    letters = (await client.get("/v1/dead-letters", headers=auth)).json()["items"]
    assert len(letters) == 1
    letter = letters[0]
    assert (letter["kind"], letter["lead_id"]) == ("crm.sync", lead_id)
    assert letter["error"] == "RetryableFailure: HTTP 502: bad gateway"
    assert [a["outcome"] for a in letter["history"]] == ["retry", "retry", "retry", "dead"]
    assert events_of(db, lead_id)[-1] == "job.dead_lettered"

    replayed = await client.post(f"/v1/dead-letters/{letter['job_id']}/replay", headers=auth)
    assert replayed.status_code == 202
    assert replayed.json() == {"replayed": [letter["job_id"]]}
    await drain(app)

    assert lead_status(db, lead_id) == "synced"
    assert (await client.get("/v1/dead-letters", headers=auth)).json()["items"] == []
    history = db.execute(
        "SELECT outcome FROM job_attempts WHERE job_id = %s ORDER BY id", (letter["job_id"],)
    ).fetchall()
    assert [h["outcome"] for h in history] == ["retry", "retry", "retry", "dead", "replayed"]
    again = await client.post(f"/v1/dead-letters/{letter['job_id']}/replay", headers=auth)
    assert again.status_code == 404


async def test_a_permanent_failure_dead_letters_at_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: psycopg.Connection[Row],
    crm_log: Path,
    auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_crm(monkeypatch, FlakyCrm(crm_log, 1, PermanentFailure("HTTP 400: invalid email")))
    lead_id = await submit(client, "bad@acme.de")
    await drain(app)

    assert lead_status(db, lead_id) == "failed"
    letters = (await client.get("/v1/dead-letters?kind=crm.sync", headers=auth)).json()["items"]
    assert [a["outcome"] for a in letters[0]["history"]] == ["dead"]
    assert "invalid email" in letters[0]["error"]


async def test_dead_letter_filters_and_bulk_replay(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: psycopg.Connection[Row],
    crm_log: Path,
    auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_crm(monkeypatch, FlakyCrm(crm_log, 3, PermanentFailure("HTTP 403: no access")))
    lead_ids = [await submit(client, f"bulk{n}@acme.de") for n in range(3)]
    await drain(app)

    one = await client.get(f"/v1/dead-letters?lead_id={lead_ids[1]}", headers=auth)
    other_kind = await client.get("/v1/dead-letters?kind=lead.process", headers=auth)
    future = await client.get("/v1/dead-letters?since=2999-01-01T00:00:00Z", headers=auth)
    no_filter = await client.post("/v1/dead-letters/replay", json={}, headers=auth)
    assert [item["lead_id"] for item in one.json()["items"]] == [lead_ids[1]]
    assert other_kind.json()["items"] == []
    assert future.json()["items"] == []
    assert no_filter.status_code == 422

    bulk = await client.post("/v1/dead-letters/replay", json={"kind": "crm.sync"}, headers=auth)
    assert len(bulk.json()["replayed"]) == 3
    await drain(app)
    assert {lead_status(db, lead_id) for lead_id in lead_ids} == {"synced"}


async def test_queue_health_shows_ready_scheduled_and_dead_jobs(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: psycopg.Connection[Row],
    crm_log: Path,
    auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await submit(client, "waiting@acme.de")
    waiting = (await client.get("/v1/queue", headers=auth)).json()["tasks"]
    assert [(t["task"], t["ready"]) for t in waiting] == [("lead.process", 1)]
    assert waiting[0]["oldest_ready_seconds"] >= 0

    use_crm(monkeypatch, FlakyCrm(crm_log, 1, RetryableFailure("timeout")))
    await drain(app)
    health = {t["task"]: t for t in (await client.get("/v1/queue", headers=auth)).json()["tasks"]}
    assert health["crm.sync"]["scheduled"] == 1
    assert health["crm.sync"]["retrying"] == 1
    assert health["crm.sync"]["retries_24h"] == 1
    assert "lead.process" not in health or health["lead.process"]["ready"] == 0


async def test_the_lead_timeline_shows_the_failure_reason(
    app: FastAPI,
    client: httpx.AsyncClient,
    crm_log: Path,
    auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_crm(
        monkeypatch, FlakyCrm(crm_log, 1, RetryableFailure("HTTP 429: slow down", retry_after=600))
    )
    lead_id = await submit(client, "timeline@acme.de")
    await drain(app)

    timeline = (await client.get(f"/v1/leads/{lead_id}", headers=auth)).json()["timeline"]
    retry = timeline[-1]
    assert retry["type"] == "job.retry_scheduled"
    assert retry["detail"]["task"] == "crm.sync"
    assert retry["detail"]["error"] == "RetryableFailure: HTTP 429: slow down"
    assert json.dumps(retry["detail"]).count("retry_at") == 1
