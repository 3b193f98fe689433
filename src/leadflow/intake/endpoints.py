"""Public intake routes: form submissions, CORS preflight, the hosted form."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from leadflow.config import Config, Form
from leadflow.deps import RuntimeDep, client_ip
from leadflow.errors import Forbidden, NotFound
from leadflow.intake import hosted
from leadflow.intake.idempotency import check_key
from leadflow.intake.parsing import FORM_TYPES, media_type, parse_body, read_body
from leadflow.intake.schemas import SUBMISSION_BODY, SUBMISSION_PARAMETERS, SubmissionAccepted
from leadflow.intake.service import Accepted, RequestMeta, prepare
from leadflow.runtime import Runtime
from leadflow.schemas import problem_responses

router = APIRouter(tags=["intake"])

KEPT_HEADERS = ("accept-language", "dnt", "sec-gpc")


def _form(config: Config, form_key: str) -> Form:
    form = config.forms.get(form_key)
    if form is None:
        raise NotFound(f"There is no form {form_key!r}.")
    return form


def _origin_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else None


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}".lower()


def _origin_allowed(form: Form, origin: str | None, request: Request) -> bool:
    if origin is None or origin.lower() == _own_origin(request):
        return True
    return not form.allowed_origins or origin.lower() in form.allowed_origins


def _cors_headers(origin: str | None) -> dict[str, str]:
    if origin is None:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def _redirect_target(form: Form, form_key: str, accepted: Accepted, request: Request) -> str:
    next_origin = _origin_of(accepted.next_url)
    if (
        accepted.next_url
        and next_origin
        and (next_origin in form.allowed_origins or next_origin == _own_origin(request))
    ):
        return accepted.next_url  # only to the form's own sites: no open redirect
    target = form.thank_you_url or hosted.thanks_path(form_key)
    parts = urlsplit(target)
    own = not parts.netloc or _origin_of(target) == _own_origin(request)
    if own and parts.path == hosted.thanks_path(form_key) and not parts.query:
        # Our own thank-you page shows the visitor the lead's id as a reference; another
        # site's page is sent nothing it did not ask for.
        origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""
        return origin + hosted.thanks_url(form_key, accepted.lead_id)
    return target


@router.post(
    "/v1/forms/{form_key}/submissions",
    status_code=202,
    response_model=SubmissionAccepted,
    summary="Submit a form",
    openapi_extra=SUBMISSION_BODY | SUBMISSION_PARAMETERS,
    responses={
        303: {"description": "A plain HTML form post: redirect to the thank-you page"},
        **problem_responses(400, 403, 404, 413, 415, 422, 429, 503),
    },
)
async def submit_form(request: Request) -> Response:
    """Store a submission as a lead and queue its processing, in one transaction
    (shared with the submissions that arrive at the same moment: a group commit).

    Answers 202 with the lead's id. The same `Idempotency-Key` (or, without a
    key, the same payload within the form's duplicate window) returns the first
    answer again and creates nothing. A plain HTML form post is redirected (303)
    to the form's thank-you page.
    """
    # Read from the request itself rather than declared as parameters: FastAPI's
    # solving of them took ~65 µs of the ~165 µs its routing and response took per
    # request. SUBMISSION_PARAMETERS documents them exactly as before.
    form_key: str = request.path_params["form_key"]
    runtime: Runtime = request.app.state.runtime
    idempotency_key = request.headers.get("idempotency-key")
    config = runtime.config
    form = _form(config, form_key)
    origin = request.headers.get("origin")
    if not _origin_allowed(form, origin, request):
        raise Forbidden(f"Submissions to {form_key!r} are not accepted from {origin}.")
    key = check_key(idempotency_key)
    ip = client_ip(request)
    await runtime.rate_limiter.check(config, form_key, ip)
    payload = await parse_body(request, await read_body(request, config.intake.max_body_bytes))
    meta = RequestMeta(
        content_type=media_type(request),
        ip=ip,
        user_agent=request.headers.get("user-agent"),
        referer=request.headers.get("referer"),
        origin=origin,
        headers={h: request.headers[h] for h in KEPT_HEADERS if h in request.headers},
    )
    accepted = await runtime.intake.submit(prepare(config, form_key, payload, meta, key))
    headers = _cors_headers(origin)
    if accepted.replayed:
        headers["Idempotent-Replayed"] = "true"
    if meta.content_type in FORM_TYPES and "text/html" in request.headers.get("accept", ""):
        target = _redirect_target(form, form_key, accepted, request)
        return RedirectResponse(target, status_code=303, headers=headers)
    return JSONResponse(accepted.body(), status_code=202, headers=headers)


@router.options("/v1/forms/{form_key}/submissions", include_in_schema=False)
async def preflight(form_key: str, request: Request, runtime: RuntimeDep) -> Response:
    form = _form(runtime.config, form_key)
    origin = request.headers.get("origin")
    if not _origin_allowed(form, origin, request):
        raise Forbidden(f"Submissions to {form_key!r} are not accepted from {origin}.")
    headers = _cors_headers(origin) | {
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, Idempotency-Key",
        "Access-Control-Max-Age": "600",
    }
    return Response(status_code=204, headers=headers)


@router.get(
    "/f/{form_key}",
    response_class=HTMLResponse,
    summary="The hosted form",
    responses=problem_responses(404, 422),
)
async def hosted_form(form_key: str, runtime: RuntimeDep) -> HTMLResponse:
    """A working HTML form for a configured form, for demos and for sites without one."""
    form = _form(runtime.config, form_key)
    return HTMLResponse(hosted.render_form(form_key, form))


@router.get(
    "/f/{form_key}/thanks",
    response_class=HTMLResponse,
    summary="The hosted thank-you page",
    responses=problem_responses(404, 422),
)
async def hosted_thanks(
    form_key: str,
    runtime: RuntimeDep,
    ref: Annotated[
        str | None,
        Query(max_length=64, description="The lead id, shown to the visitor as a reference."),
    ] = None,
) -> HTMLResponse:
    """Where a plain HTML post of the hosted form lands; shows the lead id as a reference
    (anything but a lead id in ``ref`` is left out)."""
    form = _form(runtime.config, form_key)
    return HTMLResponse(hosted.render_thanks(form_key, form, hosted.reference_of(ref)))
