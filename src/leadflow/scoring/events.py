"""``POST /v1/events``: Segment-style ``page``, ``track`` and ``identify`` calls.

From the Leadflow snippet in the browser (anonymous id only) or from a CDP
server-side (with the admin token, which may also name the person by email).
Trust decides what an event may do: anyone can report that an anonymous
browser viewed a page, but only a trusted caller can say that the browser is
ana@acme.com, so nobody can raise a stranger's score by posting their email.

Activity reaches a lead three ways: the browser's anonymous id was posted with
a form (``_lf_anonymous_id``, the snippet adds it), an earlier event of the
same anonymous id was already linked, or a trusted call names the email. A
linked lead that was scored already is scored again, debounced: one re-score
job waits per lead, ``scoring.rescore_debounce`` after the first new event.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Config
from leadflow.db import transaction
from leadflow.dedup.service import survivors
from leadflow.deps import RuntimeDep, bearer, client_ip, is_admin
from leadflow.errors import Forbidden, UnsupportedMediaType, ValidationFailed
from leadflow.intake.parsing import check_storable, media_type, parse_json, read_body
from leadflow.jobs import queue_rescore
from leadflow.models import Activity, Lead, Submission
from leadflow.models.base import utcnow
from leadflow.schemas import problem_responses
from leadflow.validation.email import analyse_email

router = APIRouter(tags=["behaviour"])

MAX_BATCH = 100


class Call(BaseModel):
    """One call of the Segment spec (the fields Leadflow reads; others are ignored)."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["page", "track", "identify"]
    anonymousId: str | None = Field(default=None, min_length=1, max_length=255)  # noqa: N815
    userId: str | None = Field(default=None, min_length=1, max_length=255)  # noqa: N815
    messageId: str | None = Field(default=None, min_length=1, max_length=255)  # noqa: N815
    event: str | None = Field(default=None, max_length=255, description="track: the event name.")
    name: str | None = Field(default=None, max_length=255, description="page: the page name.")
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime | None = None

    @model_validator(mode="after")
    def _who_and_what(self) -> Call:
        if not self.anonymousId and not self.userId:
            raise ValueError("give anonymousId or userId")
        if self.type == "track" and not self.event:
            raise ValueError("a track call needs event (its name)")
        if self.timestamp is not None and self.timestamp.tzinfo is None:
            raise ValueError("timestamp needs a time zone (ISO 8601 with Z or an offset)")
        return self

    def url(self) -> str | None:
        page = self.context.get("page") if isinstance(self.context.get("page"), dict) else {}
        value = self.properties.get("url") or (page or {}).get("url")
        return str(value)[:4096] if value else None

    def path(self) -> str | None:
        page = self.context.get("page") if isinstance(self.context.get("page"), dict) else {}
        value = self.properties.get("path") or (page or {}).get("path")
        if not value and self.url():
            try:
                value = urlsplit(self.url()).path
            except ValueError:
                value = None
        return str(value)[:2048] if value else None

    def email(self) -> str | None:
        for value in (self.traits.get("email"), self.properties.get("email"), self.userId):
            if isinstance(value, str) and "@" in value:
                return value
        return None


class Batch(BaseModel):
    batch: list[Call] = Field(min_length=1, max_length=MAX_BATCH)


class Recorded(BaseModel):
    accepted: int = Field(description="Calls stored (a messageId seen before is not stored again).")
    linked: int = Field(description="Of those, calls attached to a known lead.")


async def _leads_by_anonymous_id(session: AsyncSession, ids: set[str]) -> dict[str, uuid.UUID]:
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


async def _leads_by_email_key(session: AsyncSession, keys: set[str]) -> dict[str, uuid.UUID]:
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


async def record_calls(
    session: AsyncSession, config: Config, calls: list[Call], *, trusted: bool
) -> Recorded:
    now = utcnow()
    email_keys = {
        call.messageId or "": analyse_email(call.email()).key
        for call in calls
        if trusted and call.email()
    }
    anonymous = await _leads_by_anonymous_id(
        session, {c.anonymousId for c in calls if c.anonymousId}
    )
    by_email = await _leads_by_email_key(session, {k for k in email_keys.values() if k})
    rows = []
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
    stored = (
        await session.execute(
            insert(Activity)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["message_id"])
            .returning(Activity.lead_id)
        )
    ).all()
    linked = {lead_id for (lead_id,) in stored if lead_id is not None}
    merged_into = await survivors(session, linked)
    delay = config.scoring.rescore_debounce
    for lead in {lead.id: lead for lead in merged_into.values()}.values():
        if lead.score is not None:
            await queue_rescore(session, lead.id, now + delay if delay > timedelta(0) else None)
    return Recorded(accepted=len(stored), linked=sum(1 for (lid,) in stored if lid is not None))


def _allowed_origin(config: Config, origin: str | None) -> bool:
    if origin is None:
        return True
    origins = {o for form in config.forms.values() for o in form.allowed_origins}
    return origin.lower() in origins


_CALLS: TypeAdapter[Batch | Call] = TypeAdapter(Batch | Call)
EVENTS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": {"anyOf": [Batch.model_json_schema(), Call.model_json_schema()]}}
            for media in ("application/json", "text/plain")
        },
    }
}


def _calls(body: bytes) -> list[Call]:
    payload = parse_json(body)
    check_storable(payload)
    try:
        parsed = _CALLS.validate_python(payload)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in err["loc"][1:]) or "body", "reason": err["msg"]}
            for err in exc.errors()
        ]
        raise ValidationFailed(
            "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5]), errors=errors
        ) from exc
    return parsed.batch if isinstance(parsed, Batch) else [parsed]


@router.post(
    "/v1/events",
    status_code=202,
    response_model=Recorded,
    openapi_extra=EVENTS_BODY,
    responses=problem_responses(400, 403, 413, 415, 422, 429),
)
async def track(request: Request, runtime: RuntimeDep) -> Response:
    """Record behaviour: Segment's page, track and identify calls, one or ``{"batch": [...]}``.

    JSON, sent as ``application/json`` or ``text/plain`` (what a browser beacon
    can send without a preflight). Without the admin token only anonymous
    activity is taken: the email or userId of an untrusted call never links it
    to a lead."""
    config = runtime.config
    origin = request.headers.get("origin")
    if not _allowed_origin(config, origin):
        raise Forbidden(f"Events are not accepted from {origin}.")
    if media_type(request) not in ("application/json", "text/plain"):
        raise UnsupportedMediaType("Send the calls as JSON (application/json or text/plain).")
    await runtime.rate_limiter.check(config, "_events", client_ip(request))
    calls = _calls(await read_body(request, config.intake.max_body_bytes))
    trusted = is_admin(request, await bearer(request))
    async with transaction(runtime.sessions) as session:
        recorded = await record_calls(session, config, calls, trusted=trusted)
    headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {}
    return JSONResponse(recorded.model_dump(), status_code=202, headers=headers)


@router.options("/v1/events", include_in_schema=False)
async def events_preflight(request: Request, runtime: RuntimeDep) -> Response:
    origin = request.headers.get("origin")
    if not _allowed_origin(runtime.config, origin):
        raise Forbidden(f"Events are not accepted from {origin}.")
    headers = {
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "600",
    }
    if origin:
        headers |= {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return Response(status_code=204, headers=headers)
