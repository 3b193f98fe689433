"""The intake: checked submissions in, leads (or the first answers again) out.

``prepare`` does everything that needs no database (mapping, checks, spam
guards) and raises a 4xx error for bad input. ``store`` then writes a batch of
prepared submissions in its caller's transaction with a fixed number of
statements, whatever the batch's size: the advisory locks (one per idempotency
key or payload, taken in one statement), one lookup of earlier answers, one
statement for the new rows of every table (``repository.insert_batch``) and one
batch defer for the jobs. The group commit (``writer.GroupCommit``) feeds it the
submissions that arrive together, so under load many share one transaction and
one commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Config, Form
from leadflow.consent.service import form_consent_rows
from leadflow.errors import IdempotencyConflict, ValidationFailed
from leadflow.fields import ANONYMOUS_ID
from leadflow.intake import guards, repository
from leadflow.intake.idempotency import fingerprint
from leadflow.intake.mapping import Mapped, map_payload
from leadflow.jobs import defer_named
from leadflow.models import LeadStatus
from leadflow.models.base import new_id, utcnow

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
        """The 202 answer (``schemas.SubmissionAccepted``): what was stored, and where the
        lead can be read (the admin API) as it moves through the pipeline."""
        return {
            "lead_id": str(self.lead_id),
            "submission_id": str(self.submission_id),
            "status": self.status,
            "lead_url": lead_path(self.lead_id),
        }


def lead_path(lead_id: uuid.UUID) -> str:
    """Where the admin API shows the lead (``GET /v1/leads/{id}``, bearer token)."""
    return f"/v1/leads/{lead_id}"


@dataclass(frozen=True, slots=True)
class Pending:
    """A submission that passed every check and waits for its transaction."""

    form_key: str
    form: Form
    payload: dict[str, Any]
    mapped: Mapped
    meta: RequestMeta
    idempotency_key: str | None
    digest: str
    window: timedelta
    spam: list[str]
    received_at: datetime

    @property
    def lock_scope(self) -> str:
        """Submissions that could be the same one take the same lock."""
        return f"key:{self.idempotency_key}" if self.idempotency_key else f"fp:{self.digest}"


@dataclass(frozen=True, slots=True)
class _First:
    """The first answer given to a submission, which every repeat hears again."""

    submission_id: uuid.UUID
    fingerprint: str
    response: dict[str, Any]


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


def prepare(
    config: Config,
    form_key: str,
    payload: dict[str, Any],
    meta: RequestMeta,
    idempotency_key: str | None,
) -> Pending:
    """Everything about a submission that needs no database; bad input raises a 4xx error."""
    form = config.forms[form_key]
    mapped = read_submission(form, payload)
    now = utcnow()
    return Pending(
        form_key=form_key,
        form=form,
        payload=payload,
        mapped=mapped,
        meta=meta,
        idempotency_key=idempotency_key,
        digest=fingerprint(form_key, payload),
        window=config.duplicate_window(form),
        spam=guards.spam_reasons(mapped, form, now_ms=int(now.timestamp() * 1000)),
        received_at=now,
    )


async def store(
    session: AsyncSession, batch: Sequence[Pending]
) -> list[Accepted | IdempotencyConflict]:
    """Store ``batch`` in the session's transaction: one answer per submission, in order.

    A submission that repeats an earlier one (the same Idempotency-Key, or without
    a key the same payload to the same form within the form's duplicate window),
    in the database or earlier in the batch, gets the first answer and stores
    nothing; the same key with another payload gets an IdempotencyConflict."""
    # Serialise the transactions that could hold the same submission, then look.
    await repository.lock(session, (item.lock_scope for item in batch))
    by_key, by_print = await _earlier(session, batch)
    rows = _Rows()
    answers: list[Accepted | IdempotencyConflict] = []
    for item in batch:
        key, same = item.idempotency_key, (item.form_key, item.digest)
        first = by_key.get(key) if key else by_print.get(same)
        if first is not None and first.fingerprint != item.digest:
            answers.append(
                IdempotencyConflict(
                    "This Idempotency-Key was already used with a different submission; "
                    "use a new key for a new submission."
                )
            )
            continue
        replayed = first is not None
        if first is None:
            first = rows.add(item)
            if key:
                by_key[key] = first
            by_print.setdefault(same, first)
        answers.append(_accepted(first, replayed=replayed, next_url=item.mapped.next_url))
    await rows.insert(session)
    return answers


async def _earlier(
    session: AsyncSession, batch: Sequence[Pending]
) -> tuple[dict[str, _First], dict[tuple[str, str], _First]]:
    """The first answers already stored: by idempotency key, and by (form, payload)
    for the submissions within their form's duplicate window (the database's clock)."""
    windows = {item.form_key: item.window for item in batch}
    keyless = [item for item in batch if not item.idempotency_key]
    rows = await repository.earlier_submissions(
        session,
        keys=[item.idempotency_key for item in batch if item.idempotency_key],
        forms=sorted({item.form_key for item in keyless}),
        prints=sorted({item.digest for item in keyless}),
        window=max((windows[item.form_key] for item in keyless), default=timedelta(0)),
    )
    by_key: dict[str, _First] = {}
    oldest: dict[tuple[str, str], tuple[datetime, _First]] = {}
    for row in rows:
        first = _First(row.id, row.fingerprint, row.response)
        if row.idempotency_key is not None:
            by_key[row.idempotency_key] = first
        window = windows.get(row.form_key)
        same = (row.form_key, row.fingerprint)
        if window is None or row.received_at < row.now - window:
            continue
        if same not in oldest or row.received_at < oldest[same][0]:
            oldest[same] = (row.received_at, first)
    return by_key, {same: first for same, (_, first) in oldest.items()}


def _accepted(first: _First, *, replayed: bool, next_url: str | None) -> Accepted:
    # The first answer, word for word: the lead may since have been merged into
    # another, but a retry must hear what the first attempt heard.
    return Accepted(
        lead_id=uuid.UUID(str(first.response["lead_id"])),
        submission_id=first.submission_id,
        status=str(first.response["status"]),
        replayed=replayed,
        next_url=next_url,
    )


def _anonymous_id(extra: dict[str, Any]) -> str | None:
    """The snippet's browser id (``_lf_anonymous_id``): links earlier browsing to the lead."""
    value = extra.get(ANONYMOUS_ID)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:255]


@dataclass
class _Rows:
    """The rows of a batch's new submissions, table by table."""

    leads: list[dict[str, Any]] = field(default_factory=list)
    submissions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    consents: list[dict[str, Any]] = field(default_factory=list)
    new_leads: list[uuid.UUID] = field(default_factory=list)  # to process

    def add(self, item: Pending) -> _First:
        mapped, meta, now = item.mapped, item.meta, item.received_at
        lead_id, submission_id = new_id(), new_id()
        # The rows go to the database as JSON: their ids and times are text already,
        # made once each rather than once per row that names them.
        lead, submission, at, created = (
            str(lead_id),
            str(submission_id),
            now.isoformat(),
            utcnow().isoformat(),
        )
        self.leads.append(
            mapped.fields
            | {
                "id": lead,
                "form_key": item.form_key,
                "status": (LeadStatus.QUARANTINED if item.spam else LeadStatus.RECEIVED).value,
                "status_changed_at": at,
                "submitted_at": at,
                "client_tz_offset_minutes": mapped.tz_offset_minutes,
                "first_touch": mapped.first_touch,
                "last_touch": mapped.last_touch,
                "created_at": created,
                "updated_at": created,
            }
        )
        # A bot is answered exactly like a person: the same status, the same shape.
        response = {"lead_id": lead, "submission_id": submission, "status": ACCEPTED_STATUS}
        self.submissions.append(
            {
                "id": submission,
                "lead_id": lead,
                "form_key": item.form_key,
                "idempotency_key": item.idempotency_key,
                "fingerprint": item.digest,
                "content_type": meta.content_type,
                "raw_payload": item.payload,
                "fields": mapped.fields,
                "extra": mapped.extra,
                "anonymous_id": _anonymous_id(mapped.extra),
                "ip": meta.ip,
                "user_agent": meta.user_agent,
                "request_meta": {
                    "referer": meta.referer,
                    "origin": meta.origin,
                    "headers": meta.headers,
                    "ignored": mapped.ignored,
                },
                "spam_reasons": item.spam,
                "response": response,
                "received_at": at,
            }
        )
        self.events.append(
            {
                "lead_id": lead,
                "type": "received",
                "at": at,
                "detail": {
                    "submission_id": submission,
                    "form_key": item.form_key,
                    "content_type": meta.content_type,
                    "fields": sorted(mapped.fields),
                    "unmapped": sorted(mapped.extra),
                    "ignored": mapped.ignored,
                },
            }
        )
        consents, consent_events = form_consent_rows(
            lead_id=lead_id,
            submission_id=submission_id,
            form_key=item.form_key,
            items=item.form.consent,
            ticked=mapped.consents,
            ip=meta.ip,
            user_agent=meta.user_agent,
            at=now,
        )
        self.consents += consents
        self.events += consent_events
        if item.spam:
            self.events.append(
                {
                    "lead_id": lead,
                    "type": "quarantined",
                    "at": at,
                    "detail": {"reasons": item.spam},
                }
            )
        else:
            self.new_leads.append(lead_id)
        return _First(submission_id, item.digest, response)

    async def insert(self, session: AsyncSession) -> None:
        await repository.insert_batch(
            session,
            leads=self.leads,
            submissions=self.submissions,
            events=self.events,
            consents=self.consents,
        )
        await queue_new_leads(session, self.new_leads)


async def queue_new_leads(session: AsyncSession, lead_ids: Sequence[uuid.UUID]) -> None:
    """Queue the processing of the leads the intake writes in one transaction: a
    ``lead.process`` job for a lone lead, one ``lead.process_batch`` job for several."""
    if len(lead_ids) == 1:
        lead_id = str(lead_ids[0])
        lock = f"lead.process:{lead_id}"
        await defer_named(session, "lead.process", queueing_lock=lock, lead_id=lead_id)
    elif lead_ids:
        ids = [str(lead_id) for lead_id in lead_ids]
        await defer_named(session, "lead.process_batch", lead_ids=ids)
