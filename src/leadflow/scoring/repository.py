"""The SQL of scoring: behaviour rows (linked, read, stored) and the leads due a re-score."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Row, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models import Activity, Lead, Submission

_ACTIVITY = (Activity.type, Activity.occurred_at, Activity.name, Activity.path)

# Link to each lead (:lead_ids, with their :positions in the batch) the unlinked rows of
# its anonymous ids (:anonymous, one row each; NULL for none) or email (:emails, maybe
# NULL), the batch's first lead first; and read the rows of the leads (:batch) since :since.
# A data-modifying CTE's rows are not visible to the rest of its statement, so the rows
# it links come from its RETURNING.
_LINK_ACTIVITIES = text(
    "WITH wanted AS (SELECT * FROM unnest(:positions, :lead_ids, :anonymous, :emails) "
    "AS w(position, lead_id, anonymous_id, email_key)), "
    "chosen AS (SELECT DISTINCT ON (a.id) a.id, w.lead_id FROM activities a JOIN wanted w "
    "ON a.anonymous_id = w.anonymous_id OR a.email_key = w.email_key "
    "WHERE a.lead_id IS NULL ORDER BY a.id, w.position), "
    "linked AS (UPDATE activities a SET lead_id = c.lead_id FROM chosen c "
    "WHERE a.id = c.id AND a.lead_id IS NULL "
    "RETURNING a.lead_id, a.type, a.occurred_at, a.name, a.path) "
    "SELECT lead_id, type, occurred_at, name, path, false AS new FROM activities "
    "WHERE lead_id = ANY(:batch) AND occurred_at >= :since "
    "UNION ALL SELECT *, true FROM linked"
).bindparams(
    bindparam("positions", type_=ARRAY(Integer)),
    bindparam("lead_ids", type_=ARRAY(Activity.lead_id.type)),
    bindparam("anonymous", type_=ARRAY(Activity.anonymous_id.type)),
    bindparam("emails", type_=ARRAY(Activity.email_key.type)),
    bindparam("batch", type_=ARRAY(Activity.lead_id.type)),
    bindparam("since", type_=Activity.occurred_at.type),
)


async def link_and_read(
    session: AsyncSession,
    wanted: Sequence[tuple[int, uuid.UUID, str | None, str | None]],
    batch: Sequence[uuid.UUID],
    since: datetime,
) -> Sequence[Row[Any]]:
    """Link the unlinked rows ``wanted`` asks for ((position, lead id, anonymous id,
    email key), the first position winning a row two could claim) and read the batch's
    rows since ``since``: (lead_id, type, occurred_at, name, path, new)."""
    names = ("positions", "lead_ids", "anonymous", "emails")
    params: dict[str, Any] = {name: [row[i] for row in wanted] for i, name in enumerate(names)}
    params |= {"batch": list(batch), "since": since}
    return (await session.execute(_LINK_ACTIVITIES, params)).all()


async def activity_since(
    session: AsyncSession, lead_id: uuid.UUID, since: datetime
) -> Sequence[Row[str, datetime, str | None, str | None]]:
    """A lead's behaviour rows since ``since``: (type, occurred_at, name, path)."""
    query = select(*_ACTIVITY).where(Activity.lead_id == lead_id, Activity.occurred_at >= since)
    return (await session.execute(query)).all()


async def outdated_leads(session: AsyncSession, version: str, limit: int) -> Sequence[Lead]:
    """Up to ``limit`` scored leads (newest first, locked, skipping locked ones) whose
    score came from other rules than ``version``."""
    query = (
        select(Lead)
        .where(
            Lead.score.is_not(None),
            Lead.duplicate_of.is_(None),
            Lead.ruleset_version.is_distinct_from(version),
        )
        .order_by(Lead.created_at.desc())
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(query)).all()


async def decaying_leads(session: AsyncSession, before: datetime, limit: int) -> Sequence[Lead]:
    """Up to ``limit`` leads holding behaviour points last scored before ``before``
    (oldest first, locked, skipping locked ones)."""
    query = (
        select(Lead)
        .where(
            Lead.score.is_not(None),
            Lead.duplicate_of.is_(None),
            Lead.score_breakdown.contains([{"category": "behaviour"}]),
            Lead.updated_at < before,
        )
        .order_by(Lead.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(query)).all()


async def leads_by_anonymous_id(session: AsyncSession, ids: set[str]) -> dict[str, uuid.UUID]:
    """The lead each anonymous id belongs to: by an earlier linked event, else by a form post."""
    if not ids:
        return {}
    found: dict[str, uuid.UUID] = {}
    from_forms = select(Submission.anonymous_id, Submission.lead_id).where(
        Submission.anonymous_id.in_(sorted(ids))
    )
    from_events = (
        select(Activity.anonymous_id, Activity.lead_id)
        .where(Activity.anonymous_id.in_(sorted(ids)), Activity.lead_id.is_not(None))
        .distinct()
    )
    for anonymous_id, lead_id in [
        *await session.execute(from_events),
        *await session.execute(from_forms),
    ]:
        if anonymous_id and lead_id:
            found.setdefault(anonymous_id, lead_id)
    return found


async def leads_by_email_key(session: AsyncSession, keys: set[str]) -> dict[str, uuid.UUID]:
    """The first (surviving) lead of each email key."""
    if not keys:
        return {}
    rows = await session.execute(
        select(Lead.email_key, Lead.id)
        .where(Lead.email_key.in_(sorted(keys)), Lead.duplicate_of.is_(None))
        .order_by(Lead.created_at)
    )
    found: dict[str, uuid.UUID] = {}
    for key, lead_id in rows:
        if key:
            found.setdefault(key, lead_id)
    return found


async def store_activities(
    session: AsyncSession, rows: Sequence[dict[str, Any]]
) -> list[uuid.UUID | None]:
    """Insert behaviour rows (a message id seen before is skipped); the lead id of each
    row stored."""
    stored = await session.execute(
        insert(Activity)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(Activity.lead_id)
    )
    return [lead_id for (lead_id,) in stored]
