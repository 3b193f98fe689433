"""``POST /v1/events``: Segment-style ``page``, ``track`` and ``identify`` calls.

From the Leadflow snippet in the browser (anonymous id only) or from a CDP
server-side (with the admin token, which may also name the person by email).
Activity reaches a lead three ways: the browser's anonymous id was posted with
a form (``_lf_anonymous_id``, the snippet adds it), an earlier event of the
same anonymous id was already linked, or a trusted call names the email
(``scoring/behaviour.py`` stores and links them).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from leadflow.config import Config
from leadflow.db import transaction
from leadflow.deps import RuntimeDep, bearer, client_ip, is_admin
from leadflow.errors import Forbidden, UnsupportedMediaType, ValidationFailed
from leadflow.intake.parsing import check_storable, media_type, parse_json, read_body
from leadflow.schemas import inline_schema, problem_responses
from leadflow.scoring.behaviour import record_calls
from leadflow.scoring.calls import Batch, Call, Recorded

router = APIRouter(tags=["behaviour"])


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
            media: {"schema": inline_schema(_CALLS)} for media in ("application/json", "text/plain")
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
