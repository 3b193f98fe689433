"""One error hierarchy, rendered as RFC 9457 problem details by one handler."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from procrastinate.exceptions import ConnectorException
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from leadflow.rendering import render

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://leadflow.dev/problems/"


class LeadflowError(Exception):
    """Base of every error a client may see. Subclasses set ``status`` and ``code``."""

    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors or [])
        self.headers = dict(headers or {})


class InvalidBody(LeadflowError):
    status, code, title = 400, "invalid-body", "The request body could not be read"


class Unauthorized(LeadflowError):
    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str = "A valid bearer token is required.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(LeadflowError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(LeadflowError):
    status, code, title = 404, "not-found", "Not found"


class IdempotencyConflict(LeadflowError):
    status, code, title = 422, "idempotency-key-reused", "Idempotency key reused"


class Conflict(LeadflowError):
    status, code, title = 409, "conflict", "Not possible in the resource's current state"


class PayloadTooLarge(LeadflowError):
    status, code, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(LeadflowError):
    status, code, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(LeadflowError):
    status, code, title = 422, "validation-failed", "The submission is not valid"


class RateLimited(LeadflowError):
    status, code, title = 429, "rate-limited", "Too many requests"


def problem(
    status: int,
    *,
    code: str,
    title: str,
    detail: str,
    instance: str | None = None,
    errors: Sequence[Mapping[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_HTML = ("text/html", "application/xhtml+xml")
_JSON = ("application/json", PROBLEM_JSON)


def prefers_html(accept: str) -> bool:
    """A browser asking for a page (``Accept: text/html,...,*/*;q=0.8``), not an API
    client: ``*/*``, no Accept, or JSON named as high as HTML keep problem+json."""
    html = json = 0.0
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media.lower() in _HTML:
            html = max(html, quality)
        elif media.lower() in _JSON:
            json = max(json, quality)
    return html > 0 and html > json


def _not_found_page(request: Request, detail: str) -> HTMLResponse:
    page = render("not_found.html", path=request.url.path, detail=detail)
    return HTMLResponse(page, status_code=404)


async def _leadflow_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LeadflowError)
    if exc.status == 404 and prefers_html(request.headers.get("accept", "")):
        return _not_found_page(request, exc.detail)
    return problem(
        exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        errors=exc.errors,
        headers=exc.headers,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404 and prefers_html(request.headers.get("accept", "")):
        return _not_found_page(request, "There is no page at this address.")
    phrase = HTTPStatus(exc.status_code).phrase
    return problem(
        exc.status_code,
        code=phrase.lower().replace(" ", "-"),
        title=phrase,
        detail=str(exc.detail),
        instance=request.url.path,
        headers=exc.headers,
    )


async def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": ".".join(str(p) for p in err["loc"]), "reason": err["msg"]}
        for err in exc.errors()
    ]
    return problem(
        422,
        code=ValidationFailed.code,
        title="The request is not valid",
        detail="; ".join(f"{e['field']}: {e['reason']}" for e in errors),
        instance=request.url.path,
        errors=errors,
    )


DATABASE_RETRY_AFTER = "5"


def database_unavailable(exc: BaseException) -> bool:
    """The database went away (restart, failover, network), gave up on the
    transaction (timeout, deadlock), or no connection was free in time: nothing
    is wrong with the request, and a retry a few seconds later will most likely
    succeed. procrastinate wraps the driver's errors in its own."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(exc, ConnectorException) and isinstance(
        exc.__cause__, psycopg.OperationalError | psycopg.InterfaceError
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if not database_unavailable(exc):
        return await _unexpected_error(request, exc)
    logger.error("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    # If the connection broke during COMMIT, the submission may have been stored;
    # its retry is then answered with the first answer (idempotency), not twice.
    return problem(
        503,
        code="database-unavailable",
        title="Service unavailable",
        detail="The database is unavailable. Retry in a few seconds: a retry of the "
        "same submission is answered once.",
        instance=request.url.path,
        headers={"Retry-After": DATABASE_RETRY_AFTER},
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(
        500,
        code="internal-error",
        title="Internal error",
        detail="The server could not handle this request; it has been logged.",
        instance=request.url.path,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LeadflowError, _leadflow_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    for database_error in (OperationalError, InterfaceError, PoolTimeout, ConnectorException):
        app.add_exception_handler(database_error, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
