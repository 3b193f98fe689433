"""Behaviour calls stored as activity, linked to the lead they belong to, and re-scored.

Trust decides what a call may do: anyone can report that an anonymous browser viewed
a page, but only a trusted caller can say that the browser is ana@acme.com, so nobody
can raise a stranger's score by posting their email. A linked lead that was scored
already is scored again, debounced: one re-score job waits per lead,
``scoring.rescore_debounce`` after the first new event.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Config
from leadflow.dedup.service import survivors
from leadflow.jobs import queue_rescore
from leadflow.models.base import utcnow
from leadflow.scoring import repository
from leadflow.scoring.calls import Call, Recorded
from leadflow.validation.email import analyse_email


async def record_calls(
    session: AsyncSession, config: Config, calls: list[Call], *, trusted: bool
) -> Recorded:
    now = utcnow()
    email_keys = {
        call.messageId or "": analyse_email(call.email()).key
        for call in calls
        if trusted and call.email()
    }
    anonymous = await repository.leads_by_anonymous_id(
        session, {c.anonymousId for c in calls if c.anonymousId}
    )
    by_email = await repository.leads_by_email_key(session, {k for k in email_keys.values() if k})
    rows: list[dict[str, Any]] = []
    for call in calls:
        key = email_keys.get(call.messageId or "") if trusted else None
        lead_id = (by_email.get(key) if key else None) or anonymous.get(call.anonymousId or "")
        occurred = min(call.timestamp or now, now)  # a clock ahead of ours is not the future
        rows.append(
            {
                "message_id": call.messageId or f"lf-{uuid.uuid4()}",
                "type": call.type,
                "lead_id": lead_id,
                "anonymous_id": call.anonymousId,
                "user_id": call.userId if trusted else None,
                "email_key": key,
                "name": call.event if call.type == "track" else call.name,
                "url": call.url(),
                "path": call.path(),
                "properties": call.properties,
                "occurred_at": occurred,
                "received_at": now,
            }
        )
    stored = await repository.store_activities(session, rows)
    linked = {lead_id for lead_id in stored if lead_id is not None}
    merged_into = await survivors(session, linked)
    delay = config.scoring.rescore_debounce
    for lead in {lead.id: lead for lead in merged_into.values()}.values():
        if lead.score is not None:
            await queue_rescore(session, lead.id, now + delay if delay > timedelta(0) else None)
    return Recorded(accepted=len(stored), linked=sum(lead_id is not None for lead_id in stored))
