"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from leadflow.deps import RuntimeDep
from leadflow.migrate import current_revision, waits_for
from leadflow.pipeline.worker import WorkerSupervisor
from leadflow.runtime import Runtime

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
async def readyz(runtime: RuntimeDep, request: Request) -> JSONResponse:
    """Ready when the database answers, its schema is this release's (or a later one's),
    and the process's own worker (``serve`` runs one unless --no-worker) is working."""
    checks = await readiness(runtime, request.app.state.worker)
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


async def readiness(runtime: Runtime, worker: WorkerSupervisor | None) -> dict[str, str]:
    """Each check by name: "ok", or what is wrong (``/readyz`` and the landing page)."""
    checks: dict[str, str] = {}
    if worker is not None:
        checks["worker"] = "ok" if worker.running else _worker_trouble(worker)
    try:
        async with runtime.engine.connect() as connection:
            revision = await connection.run_sync(current_revision)
        checks["database"] = "ok"
        # A schema newer than this code's is ready too: in a rolling upgrade the new
        # release migrates first, and the old replicas keep serving until they are replaced.
        waiting = waits_for(revision)
        checks["migrations"] = "ok" if waiting is None else f"{waiting}: run leadflow migrate"
    except (SQLAlchemyError, OSError) as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    return checks


def _worker_trouble(worker: WorkerSupervisor) -> str:
    if worker.down_since is not None:
        return f"{worker.state} since {worker.down_since:%Y-%m-%dT%H:%M:%SZ}"
    return worker.state
