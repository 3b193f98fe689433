"""The landing page (``/``): what this instance is, its forms, its docs, and how to see leads."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from leadflow import __version__
from leadflow.deps import RuntimeDep
from leadflow.health import readiness
from leadflow.rendering import render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def landing(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    """Anyone may read it: it names where the admin token is, never the token nor a lead."""
    settings = runtime.settings
    checks = await readiness(runtime, request.app.state.worker)
    token_path = None
    if settings.admin_token is None:
        token_path = (settings.data_dir / "admin-token").resolve()
    page = render(
        "landing.html",
        version=__version__,
        config_source=settings.config or "the built-in demo config",
        ruleset=runtime.config.scoring.version(),
        checks=checks,
        ready=all(state == "ok" for state in checks.values()),
        forms=[(key, form.title) for key, form in runtime.config.forms.items()],
        token_path=token_path,
        base_url=str(request.base_url).rstrip("/"),
    )
    return HTMLResponse(page)
