"""All SQL about leads and their timeline."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, event, func, inspect, or_, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified, set_committed_value

from leadflow.models import ConsentRecord, Lead, LeadEvent, Submission
from leadflow.models.base import utcnow
from leadflow.stage import Batch


async def add_event(
    session: AsyncSession,
    lead_id: uuid.UUID,
    type_: str,
    detail: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
    duration_ms: float | None = None,
) -> LeadEvent:
    event = LeadEvent(
        lead_id=lead_id,
        type=type_,
        detail=detail or {},
        at=at or utcnow(),
        duration_ms=duration_ms,
    )
    session.add(event)
    return event


async def get(session: AsyncSession, lead_id: uuid.UUID, *, lock: bool = False) -> Lead | None:
    return await session.get(Lead, lead_id, with_for_update=lock)


# Statements over several leads, built once: their ids as one array parameter.
_IDS = func.any(bindparam("ids", type_=ARRAY(Lead.id.type)))
_LOCK_MANY = select(Lead).where(Lead.id == _IDS).order_by(Lead.id).with_for_update()
_SUBMISSIONS_OF = (
    select(Submission).where(Submission.lead_id == _IDS).order_by(Submission.received_at)
)


def hold(session: AsyncSession, leads: Sequence[Lead]) -> Batch:
    """The batch of leads this transaction runs through the stages, locked from its
    start; when there are several, the flush writes them in one executemany
    (``write_alike``)."""
    batch = Batch(leads)
    if len(leads) > 1:
        event.listen(session.sync_session, "before_flush", _writes_alike(batch))
    return batch


def _writes_alike(batch: Batch) -> Callable[[Session, Any, Any], None]:
    def before_flush(session: Session, flush_context: Any, instances: Any) -> None:
        write_alike(session, batch)

    return before_flush


def write_alike(session: Session, batch: Batch) -> None:
    """Before a flush of a batch: every changed lead of it writes the same columns (all
    that any of them changed), so that the flush sends one executemany, one round trip,
    instead of an UPDATE per lead (SQLAlchemy batches consecutive rows that set the same
    columns, and leaves out a column set to the value it had: hence committed, then
    flagged, for every lead). Only the batch's leads, locked since the transaction
    began: another lead (a merge's survivor) writes what it changed, no more."""
    changed = [lead for lead in session.dirty if isinstance(lead, Lead) and lead.id in batch.leads]
    if len(changed) < 2:
        return
    every = set().union(*(inspect(lead).committed_state.keys() & _COLUMNS for lead in changed))
    for lead in changed:
        for key in every:
            set_committed_value(lead, key, getattr(lead, key))
            flag_modified(lead, key)


_COLUMNS = frozenset(attr.key for attr in inspect(Lead).column_attrs)


async def lock_many(session: AsyncSession, lead_ids: Sequence[uuid.UUID]) -> list[Lead]:
    """The leads that exist of ``lead_ids``, locked for this transaction in the order of
    their ids (two transactions locking overlapping sets take them in the same order)."""
    return list((await session.scalars(_LOCK_MANY, {"ids": list(lead_ids)})).all())


async def events(session: AsyncSession, lead_id: uuid.UUID) -> Sequence[LeadEvent]:
    result = await session.scalars(
        select(LeadEvent).where(LeadEvent.lead_id == lead_id).order_by(LeadEvent.id)
    )
    return result.all()


async def consents(session: AsyncSession, lead_id: uuid.UUID) -> Sequence[ConsentRecord]:
    """The lead's consent ledger, with the entries of every lead merged into it, also
    through leads merged in turn (the ledger is append-only: entries stay where they
    were written, and a merge of a survivor leaves its duplicates pointing at it)."""
    merged = select(Lead.id).where(Lead.duplicate_of == lead_id).cte("merged", recursive=True)
    # UNION, not UNION ALL: ends on a lead already found, should duplicate_of ever loop.
    merged = merged.union(select(Lead.id).where(Lead.duplicate_of == merged.c.id))
    result = await session.scalars(
        select(ConsentRecord)
        .where(
            or_(ConsentRecord.lead_id == lead_id, ConsentRecord.lead_id.in_(select(merged.c.id)))
        )
        .order_by(ConsentRecord.recorded_at, ConsentRecord.purpose, ConsentRecord.id)
    )
    return result.all()


async def submissions(
    session: AsyncSession, batch: Batch, lead_id: uuid.UUID
) -> Sequence[Submission]:
    """The lead's submissions, oldest first; read once per batch (its stages all need
    them). Whatever moves submissions has the batch forget them (``Batch.forget_submissions``)."""
    cached = batch.submissions.get(lead_id)
    if cached is None:
        await read_submissions(session, batch, [lead_id])
        cached = batch.submissions[lead_id]
    return cached


async def read_submissions(
    session: AsyncSession, batch: Batch, lead_ids: Sequence[uuid.UUID]
) -> None:
    """Read the submissions of several leads in one statement, for ``submissions``."""
    found: dict[uuid.UUID, list[Submission]] = {lead_id: [] for lead_id in lead_ids}
    for submission in await session.scalars(_SUBMISSIONS_OF, {"ids": list(lead_ids)}):
        found[submission.lead_id].append(submission)
    batch.submissions.update(found)


async def page(
    session: AsyncSession,
    *,
    status: str | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    email_key: str | None = None,
) -> tuple[Sequence[Lead], int]:
    """Newest first; ``after`` is the (created_at, id) of the last lead already seen;
    ``email_key``: only the live leads (not merged away) of that email."""
    query = select(Lead)
    count = select(func.count()).select_from(Lead)
    if status is not None:
        query = query.where(Lead.status == status)
        count = count.where(Lead.status == status)
    if email_key is not None:
        same = (Lead.email_key == email_key, Lead.duplicate_of.is_(None))
        query, count = query.where(*same), count.where(*same)
    if after is not None:
        query = query.where(tuple_(Lead.created_at, Lead.id) < tuple_(*after))
    query = query.order_by(Lead.created_at.desc(), Lead.id.desc()).limit(limit)
    leads = (await session.scalars(query)).all()
    total = (await session.execute(count)).scalar_one()
    return leads, total
