"""The API docs (Swagger UI at /docs, ReDoc at /redoc) from vendored files, no CDN."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

VENDOR = "/static/vendor"  # src/leadflow/static/vendor: what is there, and how to update it
SWAGGER_UI = f"{VENDOR}/swagger-ui"
FAVICON = f"{SWAGGER_UI}/favicon-32x32.png"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"

# The docs load only what this server serves: a browser without internet shows them
# whole, and one with internet sends nothing elsewhere. (ReDoc's sidebar asks Redocly's
# CDN for its logo; this refuses it, and ReDoc then leaves the logo out.) Inline scripts
# and styles: FastAPI's page starts Swagger UI with one, both UIs style themselves so;
# ReDoc runs its search in a worker made from a blob.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' blob:",
        "worker-src 'self' blob:",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
    )
)


def _local(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url=str(request.app.openapi_url),
        title=f"{request.app.title} API",
        swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
        swagger_favicon_url=FAVICON,
        oauth2_redirect_url=OAUTH2_REDIRECT,
        # No badge from the public validator (it would send it the document's URL).
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
    )
    return _local(page)


@router.get(OAUTH2_REDIRECT)
async def swagger_ui_redirect() -> HTMLResponse:
    return _local(get_swagger_ui_oauth2_redirect_html())


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    script = f"{VENDOR}/redoc/redoc.standalone.js"
    title = f"{request.app.title} API"
    page = get_redoc_html(
        openapi_url=str(request.app.openapi_url),
        title=title,
        redoc_js_url=script,
        redoc_favicon_url=FAVICON,
        with_google_fonts=False,
    )
    return _local(page)
