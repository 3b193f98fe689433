"""The dedup locks: on the blocking keys of a person, and on the leads a merge changes."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from leadflow.db import advisory_lock
from leadflow.models import Lead
from leadflow.stage import Batch, StateKey


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
