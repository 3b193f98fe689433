"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from leadflow.deps import RuntimeDep
from leadflow.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness",
    responses={503: {"description": "Not ready: the body says which check failed"}},
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Ready when the database answers and its schema is at the latest migration."""
    checks: dict[str, str] = {}
    try:
        async with runtime.engine.connect() as connection:
            revision = await connection.run_sync(current_revision)
        checks["database"] = "ok"
        expected = head_revision()
        checks["migrations"] = (
            "ok"
            if revision == expected
            else f"at {revision}, expected {expected}: run leadflow migrate"
        )
    except (SQLAlchemyError, OSError) as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
