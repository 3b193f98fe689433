"""Group commit: submissions that arrive together share a transaction, and still each
get their own answer, their own lead, and their own failure."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, cast

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from procrastinate.exceptions import ConnectorException
from sqlalchemy.exc import DBAPIError, OperationalError

from leadflow.config import Config
from leadflow.db import create_engine, session_factory
from leadflow.errors import IdempotencyConflict, database_unavailable
from leadflow.intake import service as service_module
from leadflow.intake import writer as writer_module
from leadflow.intake.service import Accepted, Pending, RequestMeta, prepare
from leadflow.intake.writer import GroupCommit
from tests.conftest import count, queued_leads

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
    transactions = {r["tx"] for r in rows}
    assert len(transactions) < 20  # fewer transactions than submissions
    assert count(db, "submissions") == 20
    # Each lead is queued once: alone in a lead.process job, or in its batch's one job.
    assert queued_leads(db) == sorted(str(a.lead_id) for a in answers)
    assert count(db, "procrastinate_jobs") == len(transactions)


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


async def test_an_unreachable_database_is_a_503_to_retry_and_the_batch_is_rolled_back(
    app: FastAPI, db: psycopg.Connection[Row], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*_: object) -> None:  # the connection breaks after the inserts
        raise OperationalError("SELECT procrastinate_defer_jobs_v1", {}, psycopg.OperationalError())

    monkeypatch.setattr(service_module, "queue_new_leads", down)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post(
            "/v1/forms/contact/submissions", json={"email": "later@acme.de"}
        )

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert "Retry in a few seconds" in response.json()["detail"]
    assert count(db, "leads") == count(db, "submissions") == 0


def test_procrastinate_wrapping_a_lost_connection_counts_as_the_database_unavailable() -> None:
    wrapped = ConnectorException("defer failed")
    wrapped.__cause__ = psycopg.OperationalError("server closed the connection unexpectedly")
    bug = ConnectorException("defer failed")
    bug.__cause__ = KeyError("queue")

    assert database_unavailable(wrapped)
    assert not database_unavailable(bug)
    assert not database_unavailable(ValueError("no"))


async def test_a_batch_with_a_bad_row_still_answers_its_repeats_once(
    app: FastAPI, config: Config, db: psycopg.Connection[Row]
) -> None:
    writer = writer_of(app)
    bad = pending(config, "bad@acme.de")
    bad.mapped.fields["country"] = "x" * 100
    results = await asyncio.gather(
        writer.submit(bad),
        writer.submit(pending(config, "dup@acme.de")),
        writer.submit(pending(config, "dup@acme.de")),
        return_exceptions=True,
    )
    _, first, again = results

    assert isinstance(first, Accepted)
    assert isinstance(again, Accepted)
    assert again.lead_id == first.lead_id
    assert again.replayed
    assert count(db, "leads") == 1


async def test_a_repeat_hears_the_oldest_of_several_earlier_answers(
    app: FastAPI, config: Config, db: psycopg.Connection[Row]
) -> None:
    writer = writer_of(app)
    oldest = await writer.submit(pending(config, "p@acme.de", key="k-1"))
    newer = await writer.submit(pending(config, "p@acme.de", key="k-2"))  # the key decides
    again = await writer.submit(pending(config, "p@acme.de"))

    assert newer.lead_id != oldest.lead_id
    assert again.lead_id == oldest.lead_id
    assert again.replayed


async def test_each_form_keeps_its_own_duplicate_window_within_one_batch(
    app: FastAPI, config: Config, db: psycopg.Connection[Row]
) -> None:
    short = config.forms["open"].model_copy(update={"duplicate_window": timedelta(minutes=1)})
    config.forms["open"] = short
    writer = writer_of(app)
    first = await writer.submit(prepare(config, "open", {"email": "w@acme.de"}, META, None))
    db.execute("UPDATE submissions SET received_at = received_at - interval '5 minutes'")
    contact, later = await asyncio.gather(
        writer.submit(pending(config, "c@acme.de")),  # contact's window is 10 minutes
        writer.submit(prepare(config, "open", {"email": "w@acme.de"}, META, None)),
    )

    assert later.lead_id != first.lead_id  # 5 minutes is outside open's 1-minute window
    assert not later.replayed
    assert not contact.replayed
    assert count(db, "leads") == 3


async def test_two_api_processes_racing_on_one_submission_make_one_lead(
    app: FastAPI, config: Config, database_url: str, db: psycopg.Connection[Row]
) -> None:
    engines = [create_engine(database_url, pool_size=2) for _ in range(2)]
    writers = [GroupCommit(session_factory(engine)) for engine in engines]
    try:
        keyed = [pending(config, "race@acme.de", key="tab-1") for _ in range(6)]
        same = [pending(config, "same@acme.de") for _ in range(6)]
        results = await asyncio.gather(
            *(writers[n % 2].submit(item) for n, item in enumerate([*keyed, *same]))
        )
    finally:
        for engine in engines:
            await engine.dispose()

    assert len({r.lead_id for r in results[:6]}) == 1
    assert len({r.lead_id for r in results[6:]}) == 1
    assert sum(not r.replayed for r in results) == 2
    leads = db.execute("SELECT id::text FROM leads ORDER BY id").fetchall()
    assert len(leads) == 2
    assert queued_leads(db) == sorted(row["id"] for row in leads)


async def test_a_submission_arriving_as_the_committers_finish_is_still_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @contextlib.asynccontextmanager
    async def transaction(_: object) -> AsyncIterator[None]:
        await gate
        yield None

    async def store(_: object, batch: list[str]) -> list[str]:
        return [f"stored {item}" for item in batch]

    monkeypatch.setattr(writer_module, "transaction", transaction)
    monkeypatch.setattr(writer_module, "store", store)
    writer = GroupCommit(cast(Any, None), parallel=2)
    first = asyncio.create_task(writer.submit(cast(Any, "x1")))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    second = asyncio.create_task(writer.submit(cast(Any, "x2")))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    gate.set_result(None)  # both transactions end in the same turn of the loop
    third = asyncio.create_task(writer.submit(cast(Any, "x3")))

    assert await asyncio.wait_for(asyncio.gather(first, second, third), 2) == [
        "stored x1",
        "stored x2",
        "stored x3",
    ]
