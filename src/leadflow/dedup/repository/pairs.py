"""Pair records (merged, possible, kept apart), the survivors of merges, and their counts."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models import Lead, LeadMatch, MatchStatus, Submission
from leadflow.models.base import utcnow
from leadflow.stage import Batch


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
