"""The ``lead.dedup`` stage: a returning person updates their lead instead of making a new one."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Config
from leadflow.dedup import repository
from leadflow.dedup.survivorship import MERGED_FIELDS, merge_fields
from leadflow.leads import repository as leads
from leadflow.models import Lead, LeadStatus
from leadflow.pipeline.results import StageResult


def _fields(lead: Lead) -> dict[str, Any]:
    return {name: getattr(lead, name) for name in MERGED_FIELDS}


async def dedupe_lead(session: AsyncSession, lead: Lead, config: Config) -> StageResult:
    quality = lead.quality or {}
    lead.email_key = quality.get("email_key")
    lead.phone_key = quality.get("phone_e164")
    keys = {"email": lead.email_key, "phone": lead.phone_key}
    await repository.lock_keys(session, [f"{kind}:{key}" for kind, key in keys.items() if key])
    survivor = await repository.existing_match(session, lead.id, lead.email_key, lead.phone_key)
    if survivor is None:
        return StageResult({"outcome": "new", "decision": "new"})

    matched_on = [
        kind
        for kind, key in keys.items()
        if key and key == (survivor.email_key if kind == "email" else survivor.phone_key)
    ]
    if matched_on == ["phone"] and lead.email_key and survivor.email_key:
        # One number, two different addresses: a shared switchboard, not one person.
        detail = {
            "outcome": "new",
            "decision": "new",
            "not_merged": {
                "lead": str(survivor.id),
                "matched_on": ["phone"],
                "reason": "different email addresses",
            },
        }
        return StageResult(detail)
    changes = merge_fields(
        _fields(survivor), _fields(lead), config.dedup.survivorship, config.dedup.default_rule
    )
    for name, value in changes.items():
        setattr(survivor, name, value)
    if "email" in changes:
        survivor.email_key = lead.email_key
    if "phone" in changes:
        survivor.phone_key = lead.phone_key
    survivor.first_touch = survivor.first_touch or lead.first_touch
    survivor.last_touch = lead.last_touch or survivor.last_touch
    await repository.move_submissions(session, lead.id, survivor.id)
    lead.duplicate_of = survivor.id
    reason = {
        "matched_on": matched_on,
        "similarity": {kind: 1.0 for kind in matched_on},
        "changed_fields": sorted(changes),
    }
    await leads.add_event(
        session, survivor.id, "lead.duplicate_merged", {"duplicate": str(lead.id), **reason}
    )
    detail = {"outcome": "merged", "decision": "same", "survivor": str(survivor.id), **reason}
    return StageResult(detail, halt=LeadStatus.MERGED, refresh=(survivor.id,))
