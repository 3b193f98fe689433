"""The batch dedup lookup (``store_and_find``): a lead of a batch ends as
it would when the batch's leads are deduplicated one after the other, in its order.

A lead of the batch may hold blocking keys from an earlier run (unmerged and
requeued, an imported survivor reopened, ...): an earlier lead of the batch can then
find it (by those old keys) and change it -- link it as a possible pair, or merge into
it -- before its own turn. Each scenario has its reference (the leads alone, one after
the other) and the batch."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg
from fastapi import FastAPI

from leadflow.db import transaction
from leadflow.dedup import repository as dedup_repository
from leadflow.dedup.service import _prepared
from leadflow.models import Lead
from leadflow.pipeline import tasks
from tests.pipeline.test_batches import statuses, submitted

Row = dict[str, Any]


def _ids(*lead_ids: str) -> list[uuid.UUID]:
    return [uuid.UUID(lead_id) for lead_id in lead_ids]


async def _again(db: psycopg.Connection[Row], lead_id: str) -> None:
    """The lead is processed once more (as after an unmerge or a reopen): it keeps the
    blocking keys its earlier run stored."""
    db.execute("UPDATE leads SET status = 'received' WHERE id = %s", (lead_id,))
    db.execute("DELETE FROM procrastinate_jobs")


def _pairs(db: psycopg.Connection[Row]) -> list[tuple[str, str, str]]:
    rows = db.execute("SELECT lead_id::text, match_id::text, status FROM lead_matches").fetchall()
    return sorted((r["lead_id"], r["match_id"], r["status"]) for r in rows)


def _keys(db: psycopg.Connection[Row], lead_id: str) -> set[str]:
    rows = db.execute("SELECT key FROM lead_match_keys WHERE lead_id = %s", (lead_id,))
    return {r["key"] for r in rows.fetchall()}


# --- 1. a pair an earlier lead of the batch linked with a later one ----------------------


async def _switchboard(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> tuple[str, str]:
    """Dora, processed before (her keys stored), comes round again; Ben, new, shares her
    switchboard number: a possible pair (two addresses)."""
    [dora] = await submitted(client, {"email": "dora@acme.de", "tel": "030 901820"})
    db.execute("DELETE FROM procrastinate_jobs")
    await tasks.process(app.state.runtime, _ids(dora))
    [ben] = await submitted(client, {"email": "ben@acme.de", "tel": "+49 30 901820"})
    await _again(db, dora)
    return ben, dora


async def test_alone_a_pair_linked_by_the_lead_before_is_one_record(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    """The reference: Ben links Dora (found by her stored keys); Dora then reads that
    pair record (``paired``) and updates it rather than adding a second."""
    ben, dora = await _switchboard(app, client, db)

    await tasks.process(app.state.runtime, _ids(ben))
    await tasks.process(app.state.runtime, _ids(dora))

    assert _pairs(db) == [(dora, ben, "possible")]


async def test_in_a_batch_a_pair_linked_by_an_earlier_lead_is_one_record(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    """The same two as a batch: Dora's pair records, read before Ben linked her, do not
    hold Ben's record; she reads them again on her turn and updates it, rather than
    adding (dora, ben) next to (ben, dora) (the unique constraint is on the ordered pair
    only: nothing else would stop a second record for one pair)."""
    ben, dora = await _switchboard(app, client, db)

    await tasks.process(app.state.runtime, _ids(ben, dora))

    assert _pairs(db) == [(dora, ben, "possible")]


# --- 2. a later lead of the batch merged into by an earlier one --------------------------


async def _returning_survivor(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> tuple[str, str, str]:
    """Ana (processed before, no phone) comes round again; her new submission (same
    email, a phone) merges into her and gives her the phone; a lead known by that phone
    only (no email: the same phone is then the same person) is found by her new keys."""
    [ana] = await submitted(client, {"email": "ana.weber@acme.de", "name": "Ana Weber"})
    db.execute("DELETE FROM procrastinate_jobs")
    await tasks.process(app.state.runtime, _ids(ana))
    rt = app.state.runtime
    async with transaction(rt.sessions) as session:
        phone_only = Lead(
            form_key="contact",
            status="routed",
            queue="triage",  # a routed lead has an owner or a queue
            first_name="Zed",
            last_name="Quist",
            phone="+4930555111",
            quality={"phone_e164": "+4930555111", "phone_valid": True},
        )
        session.add(phone_only)
        await session.flush()
        _, keys = _prepared(phone_only)
        assert "p:30555111" in keys
        await dedup_repository.candidates_and_pairs(session, phone_only.id, keys, store=True)
    [again] = await submitted(
        client, {"email": "ana.weber@acme.de", "name": "Ana Weber", "tel": "030 555111"}
    )
    await _again(db, ana)
    assert "p:30555111" not in _keys(db, ana)
    return ana, again, str(phone_only.id)


async def test_alone_a_survivor_judged_after_a_merge_reads_its_new_keys(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    """The reference: the new submission merges into Ana (same email), Ana gets the
    phone; Ana's own turn stores keys with the phone and finds the phone-only lead."""
    ana, again, phone_only = await _returning_survivor(app, client, db)

    await tasks.process(app.state.runtime, _ids(again))
    await tasks.process(app.state.runtime, _ids(ana))

    assert "p:30555111" in _keys(db, ana)
    row = db.execute("SELECT duplicate_of::text FROM leads WHERE id = %s", (ana,)).fetchone()
    assert statuses(db, [again, ana]) == ["merged", "merged"]
    assert row == {"duplicate_of": phone_only}


async def test_in_a_batch_a_survivor_judged_after_a_merge_reads_its_new_keys(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    """The same two as a batch: Ana's candidates were read (and her keys stored) from
    her values before the merge; the merge changes her, so on her turn she looks up
    anew with her new values: she meets the phone-only lead, and her stored keys hold
    the phone (a later lead of the batch, or a later run, finds her by it)."""
    ana, again, phone_only = await _returning_survivor(app, client, db)

    await tasks.process(app.state.runtime, _ids(again, ana))

    row = db.execute("SELECT duplicate_of::text FROM leads WHERE id = %s", (ana,)).fetchone()
    assert statuses(db, [again, ana]) == ["merged", "merged"]
    assert row == {"duplicate_of": phone_only}
    assert "p:30555111" in _keys(db, ana)
