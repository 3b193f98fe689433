"""Recording consent given on a form."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from leadflow.config import ConsentItem
from leadflow.models.base import new_id

FORM_CHECKBOX = "web_form_checkbox"


def form_consent_rows(
    *,
    lead_id: uuid.UUID,
    submission_id: uuid.UUID,
    form_key: str,
    items: list[ConsentItem],
    ticked: Mapping[str, bool],
    ip: str | None,
    user_agent: str | None,
    at: datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ledger rows for the ticked boxes (with the policy version and the hash of
    the text the form showed) and the timeline events that announce them."""
    records: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for item in items:
        if not ticked.get(item.input_name):
            continue
        records.append(
            {
                "id": new_id(),
                "lead_id": lead_id,
                "submission_id": submission_id,
                "purpose": item.purpose,
                "status": "granted",
                "policy_version": item.policy_version,
                "text": item.text,
                "text_hash": item.text_hash,
                "method": FORM_CHECKBOX,
                "form_key": form_key,
                "ip": ip,
                "user_agent": user_agent,
                "recorded_at": at,
            }
        )
        events.append(
            {
                "lead_id": lead_id,
                "type": "consent.granted",
                "at": at,
                "detail": {
                    "purpose": item.purpose,
                    "policy_version": item.policy_version,
                    "text_hash": item.text_hash,
                    "method": FORM_CHECKBOX,
                },
            }
        )
    return records, events
