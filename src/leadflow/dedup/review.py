"""What a person decides on duplicates: merge two leads, keep them apart, undo a merge."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Config
from leadflow.dedup import repository
from leadflow.dedup.service import judge, merge
from leadflow.dedup.survivorship import restore_ownership
from leadflow.errors import Conflict, NotFound, ValidationFailed
from leadflow.jobs import queue_webhooks
from leadflow.leads import repository as leads
from leadflow.models import Lead, LeadStatus, MatchStatus
from leadflow.models.base import utcnow
from leadflow.stage import Batch


async def _live(session: AsyncSession, batch: Batch, lead_id: uuid.UUID) -> Lead:
    lead = await repository.lock_lead(session, batch, lead_id)
    if lead is None:
        raise NotFound(f"There is no lead {lead_id}.")
    if lead.duplicate_of is not None or lead.status == LeadStatus.MERGED.value:
        raise Conflict(f"Lead {lead_id} was merged into {lead.duplicate_of}.")
    return lead


async def merge_by_person(
    session: AsyncSession, config: Config, duplicate_id: uuid.UUID, survivor_id: uuid.UUID, by: str
) -> tuple[Lead, dict[str, Any]]:
    """A person merges one lead into another; returns the survivor and what changed."""
    if duplicate_id == survivor_id:
        raise ValidationFailed(
            "A lead cannot be merged into itself.",
            errors=[{"field": "into", "reason": "the same lead as in the path"}],
        )
    batch = Batch()
    # Locked in one order: two people merging the same two leads never wait for each other.
    locked = {i: await _live(session, batch, i) for i in sorted((duplicate_id, survivor_id))}
    survivor, duplicate = locked[survivor_id], locked[duplicate_id]
    verdict = judge(duplicate, survivor, config)
    reason = {**verdict.reason(), "rule": "person"}
    result = await merge(
        session,
        batch,
        survivor,
        duplicate,
        config,
        reason=reason,
        probability=None,
        decided_by=by,
    )
    await leads.add_event(
        session, duplicate.id, "lead.merged", {"into": str(survivor.id), "by": by, **result}
    )
    data = {"lead_id": str(duplicate.id), "into": str(survivor.id), "by": by}
    await queue_webhooks(session, config, "lead.merged", duplicate.id, data)
    return survivor, result


async def keep_apart(
    session: AsyncSession, lead_id: uuid.UUID, other_id: uuid.UUID, by: str
) -> None:
    """A person says two leads are different people: they are never merged or linked again."""
    if lead_id == other_id:
        raise ValidationFailed(
            "A lead is always a duplicate of itself.",
            errors=[{"field": "of", "reason": "the same lead as in the path"}],
        )
    for one in (lead_id, other_id):
        if await leads.get(session, one) is None:
            raise NotFound(f"There is no lead {one}.")
    await repository.save_match(
        session, lead_id, other_id, MatchStatus.NOT_DUPLICATE, decided_by=by
    )
    for one, two in ((lead_id, other_id), (other_id, lead_id)):
        await leads.add_event(session, one, "lead.not_duplicate", {"of": str(two), "by": by})


async def unmerge(
    session: AsyncSession, duplicate_id: uuid.UUID, by: str
) -> tuple[Lead, uuid.UUID]:
    """Undo a merge: the lead comes back with its own values and submissions.

    The survivor's fields that the merge changed go back to their old values
    unless they were changed again since. The pair is remembered as kept apart.
    """
    batch = Batch()
    duplicate = await repository.lock_lead(session, batch, duplicate_id)
    if duplicate is None:
        raise NotFound(f"There is no lead {duplicate_id}.")
    record = await repository.merge_record(session, duplicate_id)
    if duplicate.duplicate_of is None or record is None or record.merge is None:
        raise Conflict(f"Lead {duplicate_id} is not merged into another lead.")
    survivor = await repository.lock_lead(session, batch, record.match_id)
    assert survivor is not None
    undo = record.merge
    merged_values = {name: getattr(duplicate, name) for name in undo["fields"]}
    restored = []
    for name, old in undo["fields"].items():
        if name == "owner":
            if restore_ownership(survivor, undo, merged_values[name]):
                restored.append(name)
        elif getattr(survivor, name) == merged_values[name]:
            setattr(survivor, name, old)
            restored.append(name)
    if "email" in restored:
        survivor.email_key = undo["keys"]["email_key"]
    if "phone" in restored:
        survivor.phone_key = undo["keys"]["phone_key"]
    if survivor.last_touch == duplicate.last_touch:
        survivor.last_touch = undo["last_touch"]
    survivor.first_touch = undo["first_touch"]
    submissions = [uuid.UUID(s) for s in undo["submissions"]]
    await repository.move_submissions(session, batch, survivor.id, duplicate.id, only=submissions)
    duplicate.duplicate_of = None
    status = undo["status"]
    duplicate.set_status(
        LeadStatus.DEDUPLICATED if status == LeadStatus.MERGED.value else LeadStatus(status)
    )
    await repository.save_match(
        session, duplicate.id, survivor.id, MatchStatus.UNMERGED, decided_by=by
    )
    await leads.add_event(
        session,
        survivor.id,
        "lead.merge_undone",
        {"lead": str(duplicate.id), "by": by, "restored_fields": restored},
    )
    await leads.add_event(
        session,
        duplicate.id,
        "lead.unmerged",
        {"from": str(survivor.id), "by": by, "at": utcnow().isoformat()},
    )
    return duplicate, survivor.id
