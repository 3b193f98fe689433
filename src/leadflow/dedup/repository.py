"""All SQL of deduplication."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db import advisory_lock
from leadflow.models import Lead, LeadStatus, Submission


async def lock_keys(session: AsyncSession, keys: Iterable[str]) -> None:
    """Serialise every transaction that looks for the same person until this one ends.

    Two submissions of one person processed at once by two workers: the second
    waits here, then sees the first one committed. Sorted, so no deadlock.
    """
    for key in sorted(set(keys)):
        await advisory_lock(session, f"dedup:{key}")


async def existing_match(
    session: AsyncSession, lead_id: uuid.UUID, email_key: str | None, phone_key: str | None
) -> Lead | None:
    """The earliest live lead sharing the email key or the phone number."""
    conditions = []
    if email_key:
        conditions.append(Lead.email_key == email_key)
    if phone_key:
        conditions.append(Lead.phone_key == phone_key)
    if not conditions:
        return None
    query = (
        select(Lead)
        .where(
            or_(*conditions),
            Lead.id != lead_id,
            Lead.duplicate_of.is_(None),
            Lead.status != LeadStatus.MERGED.value,
        )
        .order_by(Lead.created_at, Lead.id)
        .limit(1)
        .with_for_update()
    )
    return (await session.scalars(query)).first()


async def move_submissions(session: AsyncSession, from_lead: uuid.UUID, to_lead: uuid.UUID) -> None:
    await session.execute(
        update(Submission).where(Submission.lead_id == from_lead).values(lead_id=to_lead)
    )
