"""The intake: one submission in, one lead (or the first answer again) out."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Config, Form
from leadflow.consent.service import record_form_consents
from leadflow.db import advisory_lock
from leadflow.errors import IdempotencyConflict, ValidationFailed
from leadflow.fields import ANONYMOUS_ID
from leadflow.intake import guards, repository
from leadflow.intake.idempotency import fingerprint
from leadflow.intake.mapping import Mapped, map_payload
from leadflow.jobs import defer
from leadflow.leads import repository as leads
from leadflow.models import Lead, LeadStatus, Submission
from leadflow.models.base import new_id, utcnow
from leadflow.pipeline.tasks import process_lead

ACCEPTED_STATUS = LeadStatus.RECEIVED.value


@dataclass(frozen=True, slots=True)
class RequestMeta:
    content_type: str
    ip: str | None = None
    user_agent: str | None = None
    referer: str | None = None
    origin: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Accepted:
    lead_id: uuid.UUID
    submission_id: uuid.UUID
    status: str
    replayed: bool
    next_url: str | None

    def body(self) -> dict[str, str]:
        return {
            "lead_id": str(self.lead_id),
            "submission_id": str(self.submission_id),
            "status": self.status,
        }


def read_submission(form: Form, payload: dict[str, Any]) -> Mapped:
    """Map and check a payload; raise ValidationFailed (422) when it cannot become a lead."""
    mapped = map_payload(form, payload)
    errors = [*mapped.errors, *guards.required_errors(mapped, form)]
    if not errors:
        errors = guards.contact_errors(mapped, form)
    if errors:
        raise ValidationFailed(
            "; ".join(f"{e.field} {e.reason}" for e in errors),
            errors=[e.as_dict() for e in errors],
        )
    return mapped


def _anonymous_id(extra: dict[str, Any]) -> str | None:
    """The snippet's browser id (``_lf_anonymous_id``): links earlier browsing to the lead."""
    value = extra.get(ANONYMOUS_ID)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:255]


async def submit(
    session: AsyncSession,
    *,
    config: Config,
    form_key: str,
    payload: dict[str, Any],
    meta: RequestMeta,
    idempotency_key: str | None,
) -> Accepted:
    form = config.forms[form_key]
    mapped = read_submission(form, payload)
    digest = fingerprint(form_key, payload)

    # Serialise submissions that could be the same, then look for the first one.
    await advisory_lock(session, f"key:{idempotency_key}" if idempotency_key else f"fp:{digest}")
    if idempotency_key:
        previous = await repository.by_idempotency_key(session, idempotency_key)
        if previous is not None and previous.fingerprint != digest:
            raise IdempotencyConflict(
                "This Idempotency-Key was already used with a different submission; "
                "use a new key for a new submission."
            )
    else:
        previous = await repository.recent_same_payload(
            session, form_key, digest, config.duplicate_window(form)
        )
    if previous is not None:
        return _accepted(previous, replayed=True, next_url=mapped.next_url)

    submission = await _store(
        session, form_key, form, payload, mapped, meta, idempotency_key, digest
    )
    return _accepted(submission, replayed=False, next_url=mapped.next_url)


def _accepted(submission: Submission, *, replayed: bool, next_url: str | None) -> Accepted:
    # The first answer, word for word: the lead may since have been merged into
    # another, but a retry must hear what the first attempt heard.
    return Accepted(
        lead_id=uuid.UUID(str(submission.response["lead_id"])),
        submission_id=submission.id,
        status=str(submission.response["status"]),
        replayed=replayed,
        next_url=next_url,
    )


async def _store(
    session: AsyncSession,
    form_key: str,
    form: Form,
    payload: dict[str, Any],
    mapped: Mapped,
    meta: RequestMeta,
    idempotency_key: str | None,
    digest: str,
) -> Submission:
    now = utcnow()
    spam = guards.spam_reasons(mapped, form, now_ms=int(time.time() * 1000))
    lead = Lead(
        id=new_id(),
        form_key=form_key,
        status=LeadStatus.QUARANTINED.value if spam else LeadStatus.RECEIVED.value,
        status_changed_at=now,
        submitted_at=now,
        client_tz_offset_minutes=mapped.tz_offset_minutes,
        first_touch=mapped.first_touch,
        last_touch=mapped.last_touch,
        **mapped.fields,
    )
    session.add(lead)
    submission_id = new_id()
    # A bot is answered exactly like a person: the same status, the same shape.
    response = {
        "lead_id": str(lead.id),
        "submission_id": str(submission_id),
        "status": ACCEPTED_STATUS,
    }
    submission = Submission(
        id=submission_id,
        lead_id=lead.id,
        form_key=form_key,
        idempotency_key=idempotency_key,
        fingerprint=digest,
        content_type=meta.content_type,
        raw_payload=payload,
        fields=mapped.fields,
        extra=mapped.extra,
        anonymous_id=_anonymous_id(mapped.extra),
        ip=meta.ip,
        user_agent=meta.user_agent,
        request_meta={
            "referer": meta.referer,
            "origin": meta.origin,
            "headers": meta.headers,
            "ignored": mapped.ignored,
        },
        spam_reasons=spam,
        response=response,
        received_at=now,
    )
    session.add(submission)
    await session.flush()
    await leads.add_event(
        session,
        lead.id,
        "received",
        {
            "submission_id": str(submission.id),
            "form_key": form_key,
            "content_type": meta.content_type,
            "fields": sorted(mapped.fields),
            "unmapped": sorted(mapped.extra),
            "ignored": mapped.ignored,
        },
        at=now,
    )
    await record_form_consents(
        session,
        lead_id=lead.id,
        submission_id=submission.id,
        form_key=form_key,
        items=form.consent,
        ticked=mapped.consents,
        ip=meta.ip,
        user_agent=meta.user_agent,
    )
    if spam:
        await leads.add_event(session, lead.id, "quarantined", {"reasons": spam})
    else:
        await defer(
            session,
            process_lead,
            queueing_lock=f"lead.process:{lead.id}",
            lead_id=str(lead.id),
        )
    return submission
