"""Group commit: submissions that arrive together share a transaction, and still each
get their own answer, their own lead, and their own failure."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError, OperationalError

from leadflow.config import Config
from leadflow.errors import IdempotencyConflict
from leadflow.intake import writer as writer_module
from leadflow.intake.service import Accepted, Pending, RequestMeta, prepare
from leadflow.intake.writer import GroupCommit
from tests.conftest import count

Row = dict[str, Any]
META = RequestMeta(content_type="application/json", ip="203.0.113.9", user_agent="test")


def pending(config: Config, email: str, key: str | None = None, **fields: str) -> Pending:
    return prepare(config, "contact", {"email": email, **fields}, META, key)


def writer_of(app: FastAPI) -> GroupCommit:
    writer: GroupCommit = app.state.runtime.intake
    return writer


async def test_submissions_arriving_together_share_a_commit_and_keep_their_own_leads(
    app: FastAPI, config: Config, db: psycopg.Connection[Row]
) -> None:
    writer = writer_of(app)
    answers = await asyncio.gather(
        *(writer.submit(pending(config, f"p{n}@acme.de")) for n in range(20))
    )

    assert len({a.lead_id for a in answers}) == 20
    assert not any(a.replayed for a in answers)
    rows = db.execute("SELECT email, xmin::text AS tx FROM leads").fetchall()
    assert sorted(r["email"] for r in rows) == sorted(f"p{n}@acme.de" for n in range(20))
    assert len({r["tx"] for r in rows}) < 20  # fewer transactions than submissions
    assert count(db, "procrastinate_jobs") == count(db, "submissions") == 20


async def test_a_row_the_database_refuses_fails_alone(
    app: FastAPI, config: Config, db: psycopg.Connection[Row], caplog: pytest.LogCaptureFixture
) -> None:
    writer = writer_of(app)
    items = [pending(config, f"ok{n}@acme.de") for n in range(5)]
    bad = pending(config, "bad@acme.de")
    bad.mapped.fields["country"] = "x" * 100  # longer than the column: the database says no
    results = await asyncio.gather(
        *(writer.submit(item) for item in [*items[:2], bad, *items[2:]]),
        return_exceptions=True,
    )

    assert isinstance(results[2], DBAPIError)
    assert all(isinstance(r, Accepted) for r in results[:2] + results[3:])
    emails = {r["email"] for r in db.execute("SELECT email FROM leads").fetchall()}
    assert emails == {f"ok{n}@acme.de" for n in range(5)}
    assert count(db, "procrastinate_jobs") == 5
    assert "storing each on its own" in caplog.text


async def test_repeats_within_one_batch_hear_the_first_answer(
    app: FastAPI, config: Config, db: psycopg.Connection[Row]
) -> None:
    writer = writer_of(app)
    results = await asyncio.gather(
        writer.submit(pending(config, "twice@acme.de", name="Ana Weber")),
        writer.submit(pending(config, "twice@acme.de", name="Ana Weber")),
        writer.submit(pending(config, "keyed@acme.de", key="k-1")),
        writer.submit(pending(config, "other@acme.de", key="k-1")),
        writer.submit(pending(config, "keyed@acme.de", key="k-1")),
        return_exceptions=True,
    )
    first, again, keyed, conflict, keyed_again = results

    assert isinstance(first, Accepted)
    assert isinstance(again, Accepted)
    assert (again.lead_id, again.submission_id) == (first.lead_id, first.submission_id)
    assert (first.replayed, again.replayed) == (False, True)
    assert isinstance(conflict, IdempotencyConflict)
    assert isinstance(keyed, Accepted)
    assert isinstance(keyed_again, Accepted)
    assert keyed_again.lead_id == keyed.lead_id
    assert keyed_again.replayed
    assert count(db, "leads") == count(db, "submissions") == 2


async def test_a_client_that_leaves_does_not_lose_its_submission(
    app: FastAPI, config: Config, db: psycopg.Connection[Row]
) -> None:
    writer = writer_of(app)
    request = asyncio.create_task(writer.submit(pending(config, "gone@acme.de")))
    await asyncio.sleep(0)  # the submission is in the writer's hands
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await writer.close()

    row = db.execute("SELECT email, status FROM leads").fetchone()
    assert row == {"email": "gone@acme.de", "status": "received"}
    assert count(db, "procrastinate_jobs") == 1


async def test_an_unreachable_database_is_a_503_to_retry_and_stores_nothing(
    app: FastAPI, db: psycopg.Connection[Row], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*_: object) -> None:
        raise OperationalError("INSERT INTO leads", {}, psycopg.OperationalError("refused"))

    monkeypatch.setattr(writer_module, "store", down)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post(
            "/v1/forms/contact/submissions", json={"email": "later@acme.de"}
        )

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert "Retry" in response.json()["detail"]
    assert count(db, "leads") == 0
