"""A lead of a batch ends as it would alone, in the batch's order; and what a batch
reads once, or with its lookups shaped for any plan, equals the plain per-lead lookup
(written out here as the reference)."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from rapidfuzz import fuzz
from sqlalchemy import Select, bindparam, exists, func, literal, select, union_all
from sqlalchemy.dialects.postgresql import ARRAY, VARCHAR
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Config, load_config_text
from leadflow.db import transaction
from leadflow.dedup import repository as dedup_repository
from leadflow.dedup.matching import Kind, normalise
from leadflow.dedup.repository.candidates import (
    APART,
    CANDIDATES,
    _candidate_columns,
    _candidates_query,
    _paired,
)
from leadflow.models import Account, Lead, LeadMatch, LeadMatchKey
from leadflow.models.base import utcnow
from leadflow.pipeline import tasks
from leadflow.pipeline.stages import STAGES
from leadflow.routing import service as routing
from leadflow.stage import Batch, RetryableFailure
from tests.pipeline.conftest import drain
from tests.pipeline.test_batches import as_one_batch, statuses, submitted

Row = dict[str, Any]

CONFIG = """
intake:
  rate_limits: {per_ip: 10000/minute, per_form: 10000/minute}
forms:
  contact:
    fields: {name: full_name, org: company}
    required: [email]
owners:
  - {email: a@x.com}
  - {email: b@x.com}
  - {email: c@x.com}
  - {email: capped@x.com, max_per_day: 2}
teams:
  sales: {members: [a@x.com, b@x.com]}
routing:
  rules:
    - {id: capped, when: {field: utm_campaign, equals: capped}, to: {owner: capped@x.com}}
    - {id: team, to: {team: sales}, strategy: round_robin}
scoring:
  thresholds: {warm: 30, hot: 60}
  segments:
    cold: {notify: [none], to_person: false}
    warm: {}
    hot: {}
  rules:
    - id: biz
      category: data_quality
      points: 40
      when: {field: quality.email_kind, equals: business}
    - id: pricing
      category: behaviour
      points: 5
      when: {events: {type: page, path: /pricing, within: 7d}}
"""


@pytest.fixture
def config() -> Config:
    """No CRM: the leads end ``routed``; business emails are warm, the others cold
    (nurture: to no person)."""
    return load_config_text(CONFIG, "batch-review.yaml")


def lead_row(db: psycopg.Connection[Row], lead_id: str) -> Row:
    row = db.execute(
        "SELECT status, owner, queue, company_domain, routing_reason->>'rule' AS rule "
        "FROM leads WHERE id = %s",
        (lead_id,),
    ).fetchone()
    assert row is not None
    return row


# --- routing: the company's owner -------------------------------------------------------


async def _owner_then_colleague(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> tuple[str, str]:
    """A known person of acme.de (owner c@x.com, back in the pipeline: a free email,
    cold, so to nurture now: no owner any more) and a new colleague (business email)."""
    known, colleague = await submitted(
        client,
        {"email": "kim@gmail.com", "website": "https://acme.de"},
        {"email": "lou@acme.de"},
    )
    db.execute(
        "UPDATE leads SET owner = 'c@x.com', company_domain = 'acme.de' WHERE id = %s", (known,)
    )
    return known, colleague


async def test_alone_a_colleague_does_not_follow_an_owner_the_company_lost(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    """The reference: one after the other, each alone."""
    known, colleague = await _owner_then_colleague(client, db)
    db.execute("DELETE FROM procrastinate_jobs")

    await tasks.process(app.state.runtime, [uuid.UUID(known)])
    await tasks.process(app.state.runtime, [uuid.UUID(colleague)])

    assert lead_row(db, known)["owner"] is None  # nurture
    assert lead_row(db, known)["company_domain"] == "acme.de"
    row = lead_row(db, colleague)
    assert (row["owner"] in ("a@x.com", "b@x.com"), row["rule"]) == (True, "team")


async def test_in_a_batch_a_colleague_does_not_follow_an_owner_the_company_lost(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    """The same two as a batch: the company's owners were read before the batch
    routed its first lead, which gave up c@x.com (to a queue: no assignment to an
    owner for ``_assigned_here`` to see), so the colleague goes to c@x.com."""
    known, colleague = await _owner_then_colleague(client, db)
    await as_one_batch(app, db, [known, colleague])

    await drain(app)

    assert lead_row(db, known)["owner"] is None
    row = lead_row(db, colleague)
    assert (row["owner"] in ("a@x.com", "b@x.com"), row["rule"]) == (True, "team"), row


def _flushing_route(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stages, with a flush after each lead is routed (as a savepoint, a queued
    job or any future read with autoflush would do)."""
    route = STAGES[3]

    async def run(session: AsyncSession, batch: Batch, lead: Lead, config: Config) -> Any:
        result = await route.run(session, batch, lead, config)
        await session.flush()
        return result

    monkeypatch.setattr(tasks, "STAGES", (*STAGES[:3], dataclasses.replace(route, run=run)))


@pytest.mark.parametrize("flush", [False, True])
async def test_a_cap_holds_in_a_batch_even_if_something_flushes(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: psycopg.Connection[Row],
    monkeypatch: pytest.MonkeyPatch,
    flush: bool,
) -> None:
    if flush:
        _flushing_route(monkeypatch)
    lead_ids = await submitted(
        client, *({"email": f"p{n}@firm{n}.de", "utm_campaign": "capped"} for n in range(5))
    )
    await as_one_batch(app, db, lead_ids)

    await drain(app)

    assert statuses(db, lead_ids) == ["routed"] * 5
    owners = [lead_row(db, lead_id)["owner"] for lead_id in lead_ids]
    assert owners == ["capped@x.com", "capped@x.com", None, None, None]
    n = db.execute("SELECT count(*) AS n FROM assignments WHERE owner = 'capped@x.com'")
    assert n.fetchone() == {"n": 2}


@pytest.mark.parametrize("flush", [False, True])
async def test_a_colleague_in_a_batch_follows_the_earlier_one_even_if_something_flushes(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: psycopg.Connection[Row],
    monkeypatch: pytest.MonkeyPatch,
    flush: bool,
) -> None:
    """The batch's earlier colleague counts whether its assignment is still in the
    session or was written out meanwhile (the company's owners were read before it)."""
    if flush:
        _flushing_route(monkeypatch)
    first, second = await submitted(client, {"email": "ann@acme.de"}, {"email": "bob@acme.de"})
    await as_one_batch(app, db, [first, second])

    await drain(app)

    one, two = lead_row(db, first), lead_row(db, second)
    assert one["owner"] in ("a@x.com", "b@x.com")
    assert (two["owner"], two["rule"]) == (one["owner"], "sticky"), (one, two)


# --- write_alike: a survivor read before it was locked ----------------------------------


async def _survivor_changed_meanwhile(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: psycopg.Connection[Row],
    monkeypatch: pytest.MonkeyPatch,
    change: str,
) -> tuple[str, str, str, str]:
    """Ana's lead (the survivor), her second lead merged into it, then a batch: a
    stranger and Ana a third time. The survivor is read (``survivors``: the merged
    candidate leads to it) before the merge locks it; in between, another transaction
    commits ``change`` on it. Returns (survivor, third, stranger, another lead)."""
    survivor, merged, other, again, elsewhere = await submitted(
        client,
        {"email": "ana@acme.de"},
        {"email": "ana@acme.de", "name": "Ana Weber"},
        {"email": "zed@zeta.de"},
        {"email": "ana@acme.de", "name": "Ana W."},
        {"email": "ana.weber@globex.de"},
    )
    db.execute("DELETE FROM procrastinate_jobs")
    for lead_id in (survivor, merged, elsewhere):
        await tasks.process(app.state.runtime, [uuid.UUID(lead_id)])
    assert statuses(db, [survivor, merged, elsewhere]) == ["routed", "merged", "routed"]
    lock_lead = dedup_repository.lock_lead
    meanwhile = []

    async def changed_meanwhile(
        session: AsyncSession, batch: Batch, lead_id: uuid.UUID
    ) -> Lead | None:
        if str(lead_id) == survivor:
            meanwhile.append(lead_id)
            db.execute(change, {"id": survivor, "into": elsewhere})
        return await lock_lead(session, batch, lead_id)

    monkeypatch.setattr(dedup_repository, "lock_lead", changed_meanwhile)

    if "duplicate_of" in change:  # merged meanwhile: judged again, later, against the other
        with pytest.raises(RetryableFailure, match="meanwhile"):
            await tasks.process(app.state.runtime, [uuid.UUID(other), uuid.UUID(again)])
        assert statuses(db, [other, again]) == ["received", "received"]  # nothing kept
    else:
        await tasks.process(app.state.runtime, [uuid.UUID(other), uuid.UUID(again)])
        assert statuses(db, [other, again]) == ["routed", "merged"]
    assert meanwhile  # the survivor was locked after another transaction wrote on it
    return survivor, again, other, elsewhere


async def test_a_merge_in_a_batch_keeps_a_status_written_meanwhile_on_the_survivor(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: psycopg.Connection[Row],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A person marks the survivor contacted meanwhile: the merge changes the survivor's
    fields, and keeps the status (the survivor is read again when locked, and writes
    only what the merge changed, not every column the batch's leads changed)."""
    change = "UPDATE leads SET status = 'contacted' WHERE id = %(id)s"
    survivor, *_ = await _survivor_changed_meanwhile(app, client, db, monkeypatch, change)

    assert lead_row(db, survivor)["status"] == "contacted"


async def test_a_merge_in_a_batch_does_not_revive_a_survivor_merged_meanwhile(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: psycopg.Connection[Row],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A person merges the survivor into another lead (POST /merge) meanwhile: the lead
    is judged again later (against the lead that lives on), and the survivor's row is
    left as the person's merge wrote it, not written back from the stale copy."""
    change = (
        "UPDATE leads SET status = 'merged', duplicate_of = %(into)s, "
        "status_changed_at = now() WHERE id = %(id)s"
    )
    survivor, _, _, elsewhere = await _survivor_changed_meanwhile(
        app, client, db, monkeypatch, change
    )

    row = db.execute(
        "SELECT status, duplicate_of::text FROM leads WHERE id = %s", (survivor,)
    ).fetchone()
    assert row == {"status": "merged", "duplicate_of": elsewhere}


# --- dedup: the candidates query --------------------------------------------------------


def _plain_candidates_query(limit: int) -> Select[Any]:
    """The reference: the same lookup as a plain join (what the lateral form must equal)."""
    lead_id = bindparam("lead_id", type_=Lead.id.type)
    shared = func.count().label("shared")
    top = (
        select(LeadMatchKey.lead_id, shared)
        .where(
            LeadMatchKey.key == func.any(bindparam("keys", type_=ARRAY(VARCHAR))),
            LeadMatchKey.lead_id != lead_id,
        )
        .group_by(LeadMatchKey.lead_id)
        .order_by(shared.desc(), LeadMatchKey.lead_id)
        .limit(limit)
        .subquery()
    )
    return (
        select(
            *_candidate_columns(),
            _paired(lead_id, APART).label("apart"),
            _paired(lead_id).label("paired"),
        )
        .join(top, Lead.id == top.c.lead_id)
        .order_by(top.c.shared.desc(), top.c.lead_id)
    )


async def test_the_lateral_candidates_query_reads_what_the_plain_join_does(app: FastAPI) -> None:
    rt = app.state.runtime
    rng = random.Random(7)
    keys = [f"k{n}" for n in range(12)]
    now = utcnow()
    async with transaction(rt.sessions) as session:
        leads = [
            Lead(
                form_key="contact",
                status=(status := rng.choice(["routed", "merged", "received"])),
                queue="triage" if status == "routed" else None,  # routed: owner or queue
                email=f"p{n}@x.de",
                first_name=rng.choice(["Ana", None]),
                quality={"email_key": f"p{n}@x.de", "company_domain": "x.de"},
                submitted_at=now,
            )
            for n in range(40)
        ]
        session.add_all(leads)
        await session.flush()
        for lead in leads:
            for key in rng.sample(keys, rng.randint(0, 5)):
                session.add(LeadMatchKey(key=key, lead_id=lead.id))
    async with transaction(rt.sessions) as session:
        for lead in leads[:15]:
            wanted = sorted(rng.sample(keys, rng.randint(1, 6)))
            for limit in (3, 20):
                params = {"lead_id": lead.id, "keys": wanted}
                plain = (await session.execute(_plain_candidates_query(limit), params)).all()
                new = (await session.execute(_candidates_query(limit, False), params)).all()
                assert [tuple(r) for r in new] == [tuple(r) for r in plain]
                stored = (await session.execute(_candidates_query(limit, True), params)).all()
                assert [tuple(r) for r in stored] == [tuple(r) for r in plain]
                mine = await session.scalars(
                    select(LeadMatchKey.key).where(LeadMatchKey.lead_id == lead.id)
                )
                assert sorted(mine) == wanted


async def test_a_batch_reads_each_leads_candidates_as_one_after_the_other(
    app: FastAPI,
) -> None:
    """The batch's one lookup (``store_and_find``) returns for each lead what the lead's
    own lookup returns when the leads go one after the other, each storing its keys:
    the batch's earlier leads among the candidates, the later ones not; the lead's pair
    records (kept apart, and all) with them."""
    rt = app.state.runtime
    rng = random.Random(11)
    keys = [f"k{n}" for n in range(10)]
    now = utcnow()

    def lead(n: int) -> Lead:
        return Lead(
            form_key="contact",
            status="received",
            email=f"p{n}@x.de",
            quality={"email_key": f"p{n}@x.de"},
            submitted_at=now,
        )

    async with transaction(rt.sessions) as session:
        known = [lead(n) for n in range(30)]
        batch = [lead(100 + n) for n in range(8)]
        session.add_all([*known, *batch])
        await session.flush()
        for one in known:
            for key in rng.sample(keys, rng.randint(0, 4)):
                session.add(LeadMatchKey(key=key, lead_id=one.id))
        session.add(LeadMatchKey(key="k0", lead_id=batch[5].id))  # an earlier run's key
        for one, other, status in ((0, 0, "not_duplicate"), (3, 1, "possible")):
            session.add(LeadMatch(lead_id=batch[one].id, match_id=known[other].id, status=status))
    wanted = [sorted(rng.sample(keys, rng.randint(0, 5))) for _ in batch]
    ids = [one.id for one in batch]

    async with transaction(rt.sessions) as session:  # one after the other
        alone = []
        for lead_id, its in zip(ids, wanted, strict=True):
            params = {"lead_id": lead_id, "keys": its}
            rows = (await session.execute(_candidates_query(CANDIDATES, True), params)).all()
            apart = set(rows[0].apart or ()) if rows else set()
            paired = set(rows[0].paired or ()) if rows else set()
            alone.append(([row.id for row in rows], apart, paired))
        await session.rollback()

    async with transaction(rt.sessions) as session:  # the batch at once
        found = await dedup_repository.store_and_find(session, ids, wanted)
        together = [
            ([row.id for row in found[lead_id].rows], found[lead_id].apart, found[lead_id].paired)
            for lead_id in ids
        ]
        stored = (await session.execute(select(LeadMatchKey.lead_id, LeadMatchKey.key))).all()
        await session.rollback()

    for n, (mine, theirs) in enumerate(zip(together, alone, strict=True)):
        rows_alone, apart, paired = theirs
        assert mine[0] == rows_alone, n
        if rows_alone:  # alone, a lead without candidates reads no pairs (nor needs them)
            assert (mine[1], mine[2]) == (apart, paired), n
    assert any(batch_id in together[n][0] for n in range(8) for batch_id in ids)
    assert {(lead_id, key) for lead_id, key in stored if lead_id in ids} == {
        (lead_id, key) for lead_id, its in zip(ids, wanted, strict=True) for key in its
    }


# --- routing: accounts and company owners -----------------------------------------------


async def _one_account(session: AsyncSession, lead: Lead) -> Account | None:
    """The reference: one lead's account looked up by itself (domain, else the names
    starting with its first word, the closest at 90 or more)."""
    key = normalise(Kind.COMPANY, lead.company) if lead.company else ""
    first_word = key.split(" ", 1)[0]
    if not lead.company_domain and not first_word:
        return None
    domain = bindparam("domain", type_=Account.domain.type)
    prefix = bindparam("prefix", type_=Account.name_key.type)
    by_domain = select(Account.id, literal(0).label("by_name")).where(Account.domain == domain)
    by_name = (
        select(Account.id, literal(1).label("by_name"))
        .where(
            prefix != "",
            Account.name_key.startswith(prefix),
            ~exists(select(1).where(Account.domain == domain)),
        )
        .limit(50)
    )
    found = union_all(by_domain, by_name).subquery()
    query = select(Account, found.c.by_name).join(found, Account.id == found.c.id)
    named: list[Account] = []
    params = {"domain": lead.company_domain, "prefix": first_word}
    for row in await session.execute(query, params):
        if not row.by_name:
            return row[0]  # type: ignore[no-any-return,unused-ignore]
        named.append(row[0])
    best = max(named, key=lambda a: fuzz.token_sort_ratio(key, a.name_key), default=None)
    if best is not None and fuzz.token_sort_ratio(key, best.name_key) >= 90:
        return best
    return None


async def test_accounts_of_a_batch_are_the_accounts_of_each_lead(app: FastAPI) -> None:
    rt = app.state.runtime
    names = ["Initrode AG", "Initrode", "Initrode Labs", "Globex GmbH", "Globex", "Hooli Inc"]
    async with transaction(rt.sessions) as session:
        for n, name in enumerate(names):
            domain = None if n % 2 else f"{name.split()[0].lower()}{n}.com"
            session.add(Account(name=name, name_key=normalise(Kind.COMPANY, name), domain=domain))
    companies = [None, "", "Initrode", "INITRODE AG", "Globex Logistics", "hooli", "Zeta", "Glob"]
    domains = [None, "initrode0.com", "globex3.com", "nowhere.com"]
    batch = [
        Lead(id=uuid.uuid4(), form_key="contact", company=company, company_domain=domain)
        for company in companies
        for domain in domains
    ]
    async with transaction(rt.sessions) as session:
        together = await routing.find_accounts(session, batch)
        for lead, account in zip(batch, together, strict=True):
            alone = await _one_account(session, lead)
            assert (lead.company, lead.company_domain, account and account.id) == (
                lead.company,
                lead.company_domain,
                alone and alone.id,
            )


async def test_company_owners_of_one_lead_is_the_plain_query(
    app: FastAPI, db: psycopg.Connection[Row]
) -> None:
    """Leads of one company with owners changed at different times; each asks for the
    most recent other one (the plain query: LIMIT 1 leaving the lead itself out)."""
    rt = app.state.runtime
    now = utcnow()
    ids = []
    async with transaction(rt.sessions) as session:
        for owner in ["a@x.com", None, "b@x.com", "c@x.com", None]:
            lead = Lead(
                form_key="contact",
                company_domain="acme.de",
                owner=owner,
                submitted_at=now,
            )
            session.add(lead)
            await session.flush()
            ids.append(lead.id)
    for n, lead_id in enumerate(ids):  # the third most recent, then the first, ...
        db.execute(
            "UPDATE leads SET updated_at = now() - %s WHERE id = %s",
            (timedelta(days=[5, 1, 3, 200, 0][n]), lead_id),
        )
    since = now - timedelta(days=90)
    async with transaction(rt.sessions) as session:
        for lead_id in ids:
            lead = await session.get(Lead, lead_id)
            assert lead is not None
            plain = (
                await session.execute(
                    select(Lead.owner)
                    .where(
                        Lead.company_domain == "acme.de",
                        Lead.owner.is_not(None),
                        Lead.id != lead_id,
                        Lead.updated_at >= since,
                    )
                    .order_by(Lead.updated_at.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            new = await routing._company_owner(session, Batch(), lead, "acme.de", since)
            assert new == plain


# --- scoring: browsing linked to a batch ------------------------------------------------


@pytest.mark.parametrize("together", [False, True])
async def test_a_lead_known_by_nothing_keeps_the_browsing_linked_to_it_before(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row], together: bool
) -> None:
    """A lead with no email (cleared) and no browser id: nothing to link, but what was
    linked to it before (in the horizon) is read; and an unlinked row of its address
    is not taken."""
    bare, other = await submitted(client, {"email": "bare@acme.de"}, {"email": "oth@zeta.de"})
    db.execute("UPDATE leads SET email = NULL WHERE id = %s", (bare,))
    rows = [(bare, "bare@acme.de", 1), (bare, "bare@acme.de", 400), (None, "bare@acme.de", 1)]
    rows.append((None, "oth@zeta.de", 400))  # linked, counted, too old to score
    for n, (lead_id, email, days) in enumerate(rows):
        db.execute(
            "INSERT INTO activities (message_id, type, lead_id, email_key, path, occurred_at, "
            "received_at) VALUES (%s, 'page', %s, %s, '/pricing', now() - %s, now())",
            (f"m{n}", lead_id, email, timedelta(days=days)),
        )
    db.execute("DELETE FROM procrastinate_jobs")

    if together:
        await tasks.process(app.state.runtime, [uuid.UUID(bare), uuid.UUID(other)])
    else:
        await tasks.process(app.state.runtime, [uuid.UUID(bare)])
        await tasks.process(app.state.runtime, [uuid.UUID(other)])

    assert statuses(db, [bare, other]) == ["routed", "routed"]
    linked = db.execute("SELECT message_id, lead_id::text FROM activities ORDER BY message_id")
    assert [(r["message_id"], r["lead_id"]) for r in linked] == [
        ("m0", bare),
        ("m1", bare),
        ("m2", None),
        ("m3", other),
    ]
    for lead_id, linked, rules in ((bare, None, ["pricing"]), (other, 1, ["biz"])):
        step = db.execute(
            "SELECT detail FROM lead_events WHERE lead_id = %s AND type = 'lead.score'",
            (lead_id,),
        ).fetchone()
        assert step is not None
        assert step["detail"].get("linked_activity") == linked
        row = db.execute("SELECT score_breakdown FROM leads WHERE id = %s", (lead_id,))
        breakdown = row.fetchone()
        assert breakdown is not None
        assert [line["rule"] for line in breakdown["score_breakdown"]] == rules


# --- routing: two batches at once -------------------------------------------------------


async def test_two_batches_at_once_share_a_cap_and_the_turns(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    """Each batch reads the counts and turns once, under the routing lock: the second
    waits for the first's commit and reads what it wrote (its assignments, its turns)."""
    capped = await submitted(
        client, *({"email": f"c{n}@cap{n}.de", "utm_campaign": "capped"} for n in range(6))
    )
    team = await submitted(client, *({"email": f"t{n}@team{n}.de"} for n in range(6)))
    db.execute("DELETE FROM procrastinate_jobs")
    one = [*capped[:3], *team[:3]]
    two = [*capped[3:], *team[3:]]

    outcomes = await asyncio.gather(
        tasks.process(app.state.runtime, [uuid.UUID(i) for i in one]),
        tasks.process(app.state.runtime, [uuid.UUID(i) for i in two]),
        return_exceptions=True,
    )

    assert list(outcomes) == [None, None]
    assert statuses(db, capped + team) == ["routed"] * 12
    owners = [lead_row(db, lead_id)["owner"] for lead_id in capped]
    assert owners.count("capped@x.com") == 2
    taken = [lead_row(db, lead_id)["owner"] for lead_id in team]
    assert sorted(taken) == ["a@x.com"] * 3 + ["b@x.com"] * 3, taken
