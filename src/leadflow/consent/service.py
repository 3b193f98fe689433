"""Recording consent given on a form."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import ConsentItem
from leadflow.leads import repository as leads
from leadflow.models import ConsentRecord

FORM_CHECKBOX = "web_form_checkbox"


async def record_form_consents(
    session: AsyncSession,
    *,
    lead_id: uuid.UUID,
    submission_id: uuid.UUID,
    form_key: str,
    items: list[ConsentItem],
    ticked: Mapping[str, bool],
    ip: str | None,
    user_agent: str | None,
) -> list[ConsentRecord]:
    """One ledger entry per ticked box, with the policy version and the text's hash."""
    records = []
    for item in items:
        if not ticked.get(item.input_name):
            continue
        record = ConsentRecord(
            lead_id=lead_id,
            submission_id=submission_id,
            purpose=item.purpose,
            status="granted",
            policy_version=item.policy_version,
            text=item.text,
            text_hash=item.text_hash,
            method=FORM_CHECKBOX,
            form_key=form_key,
            ip=ip,
            user_agent=user_agent,
        )
        session.add(record)
        records.append(record)
        await leads.add_event(
            session,
            lead_id,
            "consent.granted",
            {
                "purpose": item.purpose,
                "policy_version": item.policy_version,
                "text_hash": item.text_hash,
                "method": FORM_CHECKBOX,
            },
        )
    return records
