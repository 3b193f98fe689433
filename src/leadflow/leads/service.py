"""Reading leads for the API: one lead with its story, or a page of leads."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.dedup import service as dedup
from leadflow.errors import NotFound, ValidationFailed
from leadflow.leads import repository
from leadflow.leads.schemas import (
    ConsentOut,
    DuplicateOut,
    EventOut,
    LeadOut,
    LeadPage,
    LeadSummary,
    SourceOut,
)
from leadflow.models import LeadMatch, MatchStatus
from leadflow.stage import Batch
from leadflow.validation.email import analyse_email


def encode_cursor(created_at: datetime, lead_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{lead_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, _, lead_id = raw.partition("|")
        return datetime.fromisoformat(created_at), uuid.UUID(lead_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed(
            "The cursor is not one this API gave out.",
            errors=[{"field": "cursor", "reason": "use next_cursor from the previous page"}],
        ) from exc


def _duplicate(lead_id: uuid.UUID, pair: LeadMatch) -> DuplicateOut:
    mine = pair.lead_id == lead_id
    direction = "peer"
    if pair.status == MatchStatus.MERGED.value:
        direction = "this_into" if mine else "into_this"
    return DuplicateOut(
        lead_id=pair.match_id if mine else pair.lead_id,
        status=pair.status,
        direction=direction,
        probability=pair.probability,
        summary=str(pair.reason.get("summary", "")),
        decided_by=pair.decided_by,
        created_at=pair.created_at,
        decided_at=pair.decided_at,
    )


async def get_lead(session: AsyncSession, lead_id: uuid.UUID) -> LeadOut:
    lead = await repository.get(session, lead_id)
    if lead is None:
        raise NotFound(f"There is no lead {lead_id}.")
    data = {name: getattr(lead, name) for name in LeadOut.model_fields if hasattr(lead, name)}
    consents = await repository.consents(session, lead_id)
    events = await repository.events(session, lead_id)
    submissions = await repository.submissions(session, Batch(), lead_id)
    pairs = await dedup.pairs_of(session, lead_id)
    data |= {
        "duplicates": [_duplicate(lead_id, p) for p in pairs],
        "source": SourceOut.model_validate(lead),
        "consent": [ConsentOut.model_validate(c) for c in consents],
        "timeline": [EventOut.model_validate(e) for e in events],
        "submissions": [s.id for s in submissions],
    }
    return LeadOut.model_validate(data)


async def list_leads(
    session: AsyncSession,
    *,
    status: str | None,
    limit: int,
    cursor: str | None,
    email: str | None = None,
) -> LeadPage:
    """A page of leads, newest first; with ``email``, the live leads of that address (its
    match key: case, ``+tags`` and Gmail's dots do not count)."""
    after = decode_cursor(cursor) if cursor else None
    key = None
    if email is not None:
        key = analyse_email(email).key
        if key is None:
            raise ValidationFailed(
                f"{email!r} is not an email address.",
                errors=[{"field": "email", "reason": "not an email address"}],
            )
    leads, total = await repository.page(
        session, status=status, limit=limit, after=after, email_key=key
    )
    next_cursor = None
    if len(leads) == limit:
        next_cursor = encode_cursor(leads[-1].created_at, leads[-1].id)
    return LeadPage(
        items=[LeadSummary.model_validate(lead) for lead in leads],
        total=total,
        next_cursor=next_cursor,
    )
