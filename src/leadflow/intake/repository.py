"""All SQL of the intake."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models import Submission


async def by_idempotency_key(session: AsyncSession, key: str) -> Submission | None:
    result = await session.scalars(select(Submission).where(Submission.idempotency_key == key))
    return result.first()


async def recent_same_payload(
    session: AsyncSession, form_key: str, fingerprint: str, window: timedelta
) -> Submission | None:
    result = await session.scalars(
        select(Submission)
        .where(
            Submission.form_key == form_key,
            Submission.fingerprint == fingerprint,
            Submission.received_at >= func.now() - window,  # the database's clock, one trip
        )
        .order_by(Submission.received_at)
        .limit(1)
    )
    return result.first()
