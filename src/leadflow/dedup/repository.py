"""All SQL of deduplication."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    all_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, VARCHAR, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from leadflow.db import advisory_lock
from leadflow.models import Lead, LeadMatch, LeadMatchKey, LeadStatus, MatchStatus, Submission
from leadflow.models.base import utcnow
from leadflow.stage import Batch, StateKey

# How many leads sharing keys with a new one are scored, best first.
CANDIDATES = 20


def _scopes(keys: Collection[str]) -> list[str]:
    return [f"dedup:{key}" for key in keys]


# The keys whose dedup locks the batch's transaction holds.
LOCKED = StateKey[set[str]]("dedup.locked", set)


async def lock_keys(session: AsyncSession, batch: Batch, keys: Collection[str]) -> None:
    """Serialise every transaction that looks for the same person until this one ends:
    the dedup locks of these keys, until the commit, in one statement, sorted (two
    transactions take shared keys in the same order).

    Two submissions of one person processed at once by two workers: the second
    waits here, then (its next statement) sees the first one committed."""
    await advisory_lock(session, *_scopes(keys))
    batch.state(LOCKED).update(keys)


def holds_locks(batch: Batch, keys: Collection[str]) -> bool:
    """Whether the batch's transaction holds the dedup locks of ``keys`` already."""
    return batch.state(LOCKED).issuperset(keys)


def _paired(lead_id: Any, statuses: Collection[str] = ()) -> Any:
    """The leads this lead has a pair record with (with one of ``statuses``), as an array."""
    other = case((LeadMatch.lead_id == lead_id, LeadMatch.match_id), else_=LeadMatch.lead_id)
    query = select(func.array_agg(other)).where(
        or_(LeadMatch.lead_id == lead_id, LeadMatch.match_id == lead_id)
    )
    if statuses:
        query = query.where(LeadMatch.status.in_(statuses))
    return query.scalar_subquery()


# A person said these are not the lead's duplicates.
APART = (MatchStatus.NOT_DUPLICATE.value, MatchStatus.UNMERGED.value)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A lead as the matcher reads it: its matching fields only (no ORM object)."""

    id: uuid.UUID
    status: str
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    company: str | None
    street: str | None
    city: str | None
    postcode: str | None
    country: str | None
    quality: dict[str, Any]


_MATCHED = (  # the fields of Candidate read from the lead's own columns
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "street",
    "city",
    "postcode",
    "country",
)
_QUALITY_READ = ("email_key", "phone_e164", "company_domain")  # what match_values reads


def _candidate_columns() -> list[Any]:
    return [
        Lead.id,
        Lead.status,
        Lead.duplicate_of,
        *(getattr(Lead, name) for name in _MATCHED),
        *(Lead.quality[key].astext.label(f"q_{key}") for key in _QUALITY_READ),
    ]


def _candidate(row: Any) -> Candidate:
    values = row._mapping
    return Candidate(
        id=row.id,
        status=row.status,
        quality={key: values[f"q_{key}"] for key in _QUALITY_READ},
        **{name: values[name] for name in _MATCHED},
    )


@functools.cache
def _candidates_query(limit: int, store: bool) -> Select[Any]:
    """Built once: the leads sharing the most keys (``:keys``) with ``:lead_id``, what the
    matcher reads of them, and the lead's pair records (kept apart, and all). With
    ``store``, the same statement replaces the lead's keys with ``:keys`` (its rows,
    which no other transaction writes, the lead being locked: that the rest of the
    statement does not see the change is no matter, it leaves the lead out anyway)."""
    lead_id = bindparam("lead_id", type_=Lead.id.type)
    keys = bindparam("keys", type_=ARRAY(VARCHAR))
    # Written so that every plan, the generic one of a prepared statement included and
    # whatever the tables' statistics say (a young table's are stale), looks each key
    # and each lead up by its index rather than reading a whole table for one lead:
    # joined laterally, and OFFSET 0 keeps the planner from flattening that to a join.
    wanted = func.unnest(keys).table_valued("key").render_derived(name="wanted")
    holders = (
        select(LeadMatchKey.lead_id)
        .where(LeadMatchKey.key == wanted.c.key, LeadMatchKey.lead_id != lead_id)
        .offset(0)
        .lateral("holders")
    )
    shared = func.count().label("shared")
    top = (
        select(holders.c.lead_id, shared)
        .select_from(wanted)
        .join(holders, true())
        .group_by(holders.c.lead_id)
        .order_by(shared.desc(), holders.c.lead_id)
        .limit(limit)
        .subquery("top")
    )
    lead = select(*_candidate_columns()).where(Lead.id == top.c.lead_id).offset(0).lateral("lead")
    query = (
        select(
            lead,
            _paired(lead_id, APART).label("apart"),
            _paired(lead_id).label("paired"),
        )
        .select_from(top)
        .join(lead, true())
        .order_by(top.c.shared.desc(), top.c.lead_id)
    )
    if not store:
        return query
    gone = (
        delete(LeadMatchKey)
        .where(LeadMatchKey.lead_id == lead_id, LeadMatchKey.key != all_(keys))
        .cte("gone")
    )
    added = (
        insert(LeadMatchKey)
        .from_select(["key", "lead_id"], select(func.unnest(keys), lead_id))
        .on_conflict_do_nothing()
        .cte("added")
    )
    return query.add_cte(gone, added)


async def candidates(
    session: AsyncSession, lead_id: uuid.UUID, keys: Collection[str], limit: int = CANDIDATES
) -> list[Lead | Candidate]:
    """Live leads sharing blocking keys with this one, those sharing the most first.

    A key of a merged lead leads to its survivor. Leads a person kept apart
    from this one are left out.
    """
    return (await candidates_and_pairs(session, lead_id, keys, limit))[0]


async def candidates_and_pairs(
    session: AsyncSession,
    lead_id: uuid.UUID,
    keys: Collection[str],
    limit: int = CANDIDATES,
    *,
    store: bool = False,
) -> tuple[list[Lead | Candidate], set[uuid.UUID]]:
    """``candidates``, and the leads this lead has a pair record with already (any
    status). One statement finds the leads, reads what the matcher needs of them and
    the lead's pairs (and with ``store`` replaces the lead's blocking keys with ``keys``:
    hold their locks, ``lock_keys``, for the candidates to be complete); merged leads'
    survivors take another only when there are any."""
    if not keys and not store:
        return [], set()
    query = _candidates_query(limit, store)
    rows = (await session.execute(query, {"lead_id": lead_id, "keys": sorted(keys)})).all()
    if not rows:
        return [], set()
    return await found_for(session, lead_id, rows, set(rows[0].apart or ())), set(
        rows[0].paired or ()
    )


async def found_for(
    session: AsyncSession, lead_id: uuid.UUID, rows: Sequence[Any], apart: set[uuid.UUID]
) -> list[Lead | Candidate]:
    """The live candidates of ``rows`` (what ``_candidate_columns`` reads, best first):
    a merged lead stands for its survivor, and the leads kept apart are left out.

    A candidate this transaction holds (a lead of its batch, a survivor it merged into)
    is read as the session has it now, not as the table had it."""
    current: dict[uuid.UUID, Lead | Candidate] = {}
    merged_into = {}
    for row in rows:
        held = session.identity_map.get(identity_key(Lead, row.id))  # the batch's among them
        lead = held if isinstance(held, Lead) else _candidate(row)
        current[row.id] = lead
        into = lead.duplicate_of if isinstance(lead, Lead) else row.duplicate_of
        if into is not None:
            merged_into[row.id] = into
    followed = await survivors(session, set(merged_into.values())) if merged_into else {}
    found: dict[uuid.UUID, Lead | Candidate] = {}
    for row in rows:
        into = merged_into.get(row.id)
        survivor = current[row.id] if into is None else followed.get(into)
        if survivor is not None:
            found.setdefault(survivor.id, survivor)
    return [
        lead
        for lead in found.values()
        if lead.id != lead_id and lead.id not in apart and lead.status != LeadStatus.MERGED.value
    ]


# A batch's keys at once: its leads' (:lead_ids) blocking keys replaced with (:lead_ids[i],
# :keys[i]), rows no other transaction writes (the leads are locked).
_STORE_KEYS = text(
    "WITH wanted AS (SELECT * FROM unnest(:lead_ids, :keys) AS w(lead_id, key)), "
    "gone AS (DELETE FROM lead_match_keys k WHERE k.lead_id = ANY(:batch) "
    "AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.lead_id = k.lead_id AND w.key = k.key)) "
    "INSERT INTO lead_match_keys (key, lead_id) SELECT key, lead_id FROM wanted "
    "ON CONFLICT DO NOTHING"
).bindparams(
    bindparam("lead_ids", type_=ARRAY(Lead.id.type)),
    bindparam("keys", type_=ARRAY(VARCHAR)),
    bindparam("batch", type_=ARRAY(Lead.id.type)),
)


@functools.cache
def _batch_candidates_query(limit: int) -> Select[Any]:
    """Built once: for the n-th lead of a batch (``:batch``, in order; its keys are the
    ``:keys`` whose ``:positions`` is n), what ``_candidates_query`` reads for it when the
    batch's leads go one after the other, each replacing its keys: the table's keys but
    those of the batch's leads up to the n-th, the ones before it holding their new keys
    instead; read before the batch stores its keys (``_STORE_KEYS``)."""
    positions = bindparam("positions", type_=ARRAY(Integer))
    keys = bindparam("keys", type_=ARRAY(VARCHAR))
    wanted = func.unnest(positions, keys).table_valued("n", "key").render_derived(name="wanted")
    earlier = func.unnest(positions, keys).table_valued("n", "key").render_derived(name="earlier")
    batch = (
        func.unnest(bindparam("batch", type_=ARRAY(Lead.id.type)))
        .table_valued("id", with_ordinality="pos")
        .render_derived(name="batch")
    )
    holders = (  # each key's leads in the table, through its index
        select(LeadMatchKey.lead_id).where(LeadMatchKey.key == wanted.c.key).offset(0)
    ).lateral("holders")
    replaced = (  # the n-th lead itself, and the leads before it: their new keys count
        select(1)
        .where(batch.c.id == holders.c.lead_id, batch.c.pos <= wanted.c.n)
        .correlate_except(batch)
        .exists()
    )
    in_table = (
        select(wanted.c.n, holders.c.lead_id)
        .select_from(wanted)
        .join(holders, true())
        .where(~replaced)
    )
    before = (  # the new keys of the batch's leads before the n-th
        select(wanted.c.n, batch.c.id.label("lead_id"))
        .select_from(wanted)
        .join(earlier, (earlier.c.key == wanted.c.key) & (earlier.c.n < wanted.c.n))
        .join(batch, batch.c.pos == earlier.c.n)
    )
    shares = union_all(in_table, before).subquery("shares")
    shared = func.count()
    rank = func.row_number().over(
        partition_by=shares.c.n, order_by=(shared.desc(), shares.c.lead_id)
    )
    counted = (
        select(shares.c.n, shares.c.lead_id, shared.label("shared"), rank.label("rank"))
        .group_by(shares.c.n, shares.c.lead_id)
        .subquery("counted")
    )
    top = select(counted).where(counted.c.rank <= limit).subquery("top")  # before the reads
    lead = (select(*_candidate_columns()).where(Lead.id == top.c.lead_id).offset(0)).lateral("lead")
    return (
        select(top.c.n, lead)
        .select_from(top)
        .join(lead, true())
        .order_by(top.c.n, top.c.shared.desc(), top.c.lead_id)
    )


@dataclass(frozen=True, slots=True)
class Found:
    """What a batch read for one of its leads before any was deduplicated."""

    rows: list[Any]  # the candidates, best first
    apart: set[uuid.UUID]  # leads a person kept apart from it
    paired: set[uuid.UUID]  # leads it has a pair record with


async def store_and_find(
    session: AsyncSession, batch: Sequence[uuid.UUID], keys: Sequence[Collection[str]]
) -> dict[uuid.UUID, Found]:
    """For a batch whose dedup locks are held: every lead's blocking keys replaced, and
    every lead's candidates and pair records read, in three statements: for the n-th lead,
    what its own lookup reads when the leads go one after the other, each replacing its
    keys (``found_for`` then reads the batch's earlier leads as the session has them)."""
    found = {lead_id: Found([], set(), set()) for lead_id in batch}
    flat = [(n, key) for n, its in enumerate(keys, start=1) for key in sorted(its)]
    if flat:
        params = {"positions": [f[0] for f in flat], "keys": [f[1] for f in flat]}
        query = _batch_candidates_query(CANDIDATES)
        for row in await session.execute(query, params | {"batch": list(batch)}):
            found[batch[row.n - 1]].rows.append(row)
    pairs = [(lead_id, key) for lead_id, its in zip(batch, keys, strict=True) for key in its]
    await session.execute(
        _STORE_KEYS,
        {"lead_ids": [p[0] for p in pairs], "keys": [p[1] for p in pairs], "batch": list(batch)},
    )
    statuses = select(LeadMatch.lead_id, LeadMatch.match_id, LeadMatch.status).where(
        or_(LeadMatch.lead_id.in_(batch), LeadMatch.match_id.in_(batch))
    )
    for one, other, status in await session.execute(statuses):
        for mine, theirs in ((one, other), (other, one)):
            if mine in found:
                found[mine].paired.add(theirs)
                if status in APART:
                    found[mine].apart.add(theirs)
    return found


async def survivors(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Lead]:
    """Each lead, or the lead it was merged into (survivors of survivors: a short chain)."""
    out: dict[uuid.UUID, Lead] = {}
    pending = {i: i for i in ids}
    for _ in range(5):
        if not pending:
            break
        rows = await session.scalars(select(Lead).where(Lead.id.in_(set(pending.values()))))
        by_id = {lead.id: lead for lead in rows}
        following = {}
        for original, current in pending.items():
            lead = by_id.get(current)
            if lead is None:
                continue
            if lead.duplicate_of is not None:
                following[original] = lead.duplicate_of
            else:
                out[original] = lead
        pending = following
    return out


async def lock_lead(session: AsyncSession, batch: Batch, lead_id: uuid.UUID) -> Lead | None:
    """The lead, locked until the commit, as it is now: read again if the session has an
    older copy (a candidate's survivor is read before it is locked, and another
    transaction may have changed it meanwhile). A lead of this transaction's batch, or
    one it has changed already (locked then), is taken as the session has it."""
    held = batch.leads.get(lead_id)
    if held is not None:
        return held
    known = session.identity_map.get(identity_key(Lead, lead_id))
    if isinstance(known, Lead) and known in session.dirty:
        return known
    query = (
        select(Lead)
        .where(Lead.id == lead_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(query)).first()


async def move_submissions(
    session: AsyncSession,
    batch: Batch,
    from_lead: uuid.UUID,
    to_lead: uuid.UUID,
    only: Sequence[uuid.UUID] | None = None,
) -> list[uuid.UUID]:
    """Attach submissions to another lead; the ids moved."""
    query = update(Submission).where(Submission.lead_id == from_lead)
    if only is not None:
        query = query.where(Submission.id.in_(only))
    moved = await session.scalars(query.values(lead_id=to_lead).returning(Submission.id))
    batch.forget_submissions(from_lead, to_lead)
    return list(moved)


async def matches_between(
    session: AsyncSession, lead_id: uuid.UUID, others: Collection[uuid.UUID]
) -> dict[uuid.UUID, LeadMatch]:
    """The pair records of a lead with each of ``others``, whichever way round, by other."""
    if not others:
        return {}
    rows = await session.scalars(
        select(LeadMatch).where(
            or_(
                (LeadMatch.lead_id == lead_id) & LeadMatch.match_id.in_(others),
                (LeadMatch.match_id == lead_id) & LeadMatch.lead_id.in_(others),
            )
        )
    )
    found: dict[uuid.UUID, LeadMatch] = {}
    for row in rows:
        found.setdefault(row.match_id if row.lead_id == lead_id else row.lead_id, row)
    return found


async def save_match(
    session: AsyncSession,
    lead_id: uuid.UUID,
    match_id: uuid.UUID,
    status: MatchStatus,
    *,
    probability: float | None = None,
    reason: dict[str, Any] | None = None,
    merge: dict[str, Any] | None = None,
    decided_by: str | None = None,
) -> None:
    """Record what became of a pair, whichever way round it was first linked."""
    existing = (await matches_between(session, lead_id, [match_id])).get(match_id)
    record_match(
        session,
        existing,
        lead_id,
        match_id,
        status,
        probability=probability,
        reason=reason,
        merge=merge,
        decided_by=decided_by,
    )


def record_match(
    session: AsyncSession,
    existing: LeadMatch | None,
    lead_id: uuid.UUID,
    match_id: uuid.UUID,
    status: MatchStatus,
    *,
    probability: float | None = None,
    reason: dict[str, Any] | None = None,
    merge: dict[str, Any] | None = None,
    decided_by: str | None = None,
) -> None:
    """``save_match`` with the pair's record (or None) already read (``matches_between``)."""
    decided_at: datetime | None = utcnow() if decided_by else None
    if existing is None:
        session.add(
            LeadMatch(
                lead_id=lead_id,
                match_id=match_id,
                status=status.value,
                probability=probability,
                reason=reason or {},
                merge=merge,
                decided_by=decided_by,
                decided_at=decided_at,
            )
        )
        return
    existing.lead_id, existing.match_id = lead_id, match_id
    existing.status = status.value
    if probability is not None:
        existing.probability = probability
    if reason is not None:
        existing.reason = reason
    existing.merge = merge
    existing.decided_by = decided_by
    existing.decided_at = decided_at


async def matches_of(session: AsyncSession, lead_id: uuid.UUID) -> Sequence[LeadMatch]:
    query = (
        select(LeadMatch)
        .where(or_(LeadMatch.lead_id == lead_id, LeadMatch.match_id == lead_id))
        .order_by(LeadMatch.created_at, LeadMatch.id)
    )
    return (await session.scalars(query)).all()


async def merge_record(session: AsyncSession, duplicate_id: uuid.UUID) -> LeadMatch | None:
    """The merge that took this lead into its survivor."""
    query = select(LeadMatch).where(
        LeadMatch.lead_id == duplicate_id, LeadMatch.status == MatchStatus.MERGED.value
    )
    return (await session.scalars(query.with_for_update())).first()


async def possible_pairs(
    session: AsyncSession, limit: int, before_id: int | None = None
) -> Sequence[LeadMatch]:
    """Pairs waiting for a person, newest first."""
    query = select(LeadMatch).where(LeadMatch.status == MatchStatus.POSSIBLE.value)
    if before_id is not None:
        query = query.where(LeadMatch.id < before_id)
    return (await session.scalars(query.order_by(LeadMatch.id.desc()).limit(limit))).all()


async def duplicate_counts(session: AsyncSession, since: datetime | None) -> dict[str, Any]:
    """Leads received, and merges by rule, since a time (all time when None)."""
    leads_query = select(func.count()).select_from(Lead).where(Lead.status != "imported")
    merges = (
        select(LeadMatch.reason["rule"].astext.label("rule"), func.count().label("n"))
        .where(LeadMatch.status == MatchStatus.MERGED.value)
        .group_by("rule")
    )
    possible = select(func.count()).where(LeadMatch.status == MatchStatus.POSSIBLE.value)
    if since is not None:
        leads_query = leads_query.where(Lead.created_at >= since)
        merges = merges.where(LeadMatch.created_at >= since)
        possible = possible.where(LeadMatch.created_at >= since)
    total = (await session.execute(leads_query)).scalar_one()
    by_rule = {row.rule or "unknown": row.n for row in await session.execute(merges)}
    open_pairs = (await session.execute(possible)).scalar_one()
    return {"leads": total, "merged": by_rule, "possible": open_pairs}
