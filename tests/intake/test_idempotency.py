"""Submitting twice creates one lead: by Idempotency-Key, or by identical payload."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg

from leadflow.db import lock_id
from leadflow.intake.idempotency import fingerprint
from tests.conftest import count
from tests.factories import submissions_url

URL = submissions_url()
Row = dict[str, Any]


def test_fingerprint_ignores_key_order_but_not_values() -> None:
    assert fingerprint("f", {"a": "1", "b": "2"}) == fingerprint("f", {"b": "2", "a": "1"})
    assert fingerprint("f", {"a": "1"}) != fingerprint("f", {"a": "2"})
    assert fingerprint("f", {"a": "1"}) != fingerprint("g", {"a": "1"})


def test_lock_ids_fit_a_bigint() -> None:
    ids = {lock_id(f"key:{n}") for n in range(1000)}
    assert len(ids) == 1000
    assert all(-(2**63) <= i < 2**63 for i in ids)


async def test_same_key_same_payload_returns_the_first_answer(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    headers = {"Idempotency-Key": "order-7f3a"}
    first = await client.post(URL, json={"email": "a@acme.de"}, headers=headers)
    again = await client.post(URL, json={"email": "a@acme.de"}, headers=headers)

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert count(db, "leads") == count(db, "submissions") == count(db, "procrastinate_jobs") == 1


async def test_same_key_other_payload_is_refused(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    headers = {"Idempotency-Key": "order-7f3a"}
    await client.post(URL, json={"email": "a@acme.de"}, headers=headers)
    other = await client.post(URL, json={"email": "b@acme.de"}, headers=headers)

    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert "different submission" in other.json()["detail"]
    assert count(db, "leads") == 1


async def test_concurrent_requests_with_one_key_make_exactly_one_lead(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    headers = {"Idempotency-Key": "tab-race-1"}
    responses = await asyncio.gather(
        *(client.post(URL, json={"email": "race@acme.de"}, headers=headers) for _ in range(12))
    )

    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["lead_id"] for r in responses}) == 1
    assert count(db, "leads") == count(db, "submissions") == count(db, "procrastinate_jobs") == 1


async def test_identical_payload_without_key_within_the_window_is_one_lead(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    payload = {"email": "double@acme.de", "name": "Double Click"}
    responses = await asyncio.gather(*(client.post(URL, json=payload) for _ in range(5)))
    different = await client.post(URL, json={**payload, "msg": "one more thing"})

    assert len({r.json()["lead_id"] for r in responses}) == 1
    assert different.json()["lead_id"] != responses[0].json()["lead_id"]
    assert count(db, "leads") == 2


async def test_identical_payload_after_the_window_is_a_new_submission(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    payload = {"email": "later@acme.de"}
    first = await client.post(URL, json=payload)
    db.execute("UPDATE submissions SET received_at = received_at - interval '11 minutes'")
    later = await client.post(URL, json=payload)

    assert later.json()["lead_id"] != first.json()["lead_id"]
    assert count(db, "leads") == 2
