"""The ASGI application: routers, error handlers, and the process's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib import resources

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from leadflow import __version__, db, runtime
from leadflow.config import Config, load_config
from leadflow.dedup.endpoints import router as dedup_router
from leadflow.errors import install_error_handlers
from leadflow.health import router as health_router
from leadflow.intake.endpoints import router as intake_router
from leadflow.leads.endpoints import router as leads_router
from leadflow.pipeline import watchdog
from leadflow.pipeline.endpoints import router as pipeline_router
from leadflow.pipeline.worker import WorkerSupervisor
from leadflow.routing.endpoints import router as routing_router
from leadflow.scoring.events import router as events_router
from leadflow.settings import Settings, admin_token, get_settings
from leadflow.validation.endpoints import router as validation_router
from leadflow.web.docs import router as docs_router
from leadflow.web.landing import router as landing_router

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    config: Config | None = None,
    database_url: str | None = None,
    embedded_worker: bool = False,
) -> FastAPI:
    """Build the app. Resources open in the lifespan, so building is cheap and pure."""
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database_url or db.database_url(settings)
        rt = await runtime.start(settings, config or load_config(settings.config), url)
        app.state.runtime = rt
        app.state.admin_token = admin_token(settings)
        app.state.worker = None
        tasks = [asyncio.create_task(watchdog.watch(rt, rt.notifier), name="pipeline watch")]
        if embedded_worker:
            supervisor = WorkerSupervisor(
                rt, url, kind="embedded", concurrency=settings.worker_concurrency
            )
            app.state.worker = supervisor
            tasks.append(asyncio.create_task(supervisor.run(), name="embedded worker"))
        try:
            yield
        finally:
            if app.state.worker is not None:
                app.state.worker.stop()  # running jobs finish first (pipeline.stop_grace)
            tasks[0].cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await rt.close()
            db.stop_embedded()

    app = FastAPI(
        title="Leadflow",
        version=__version__,
        summary="Every form submission becomes a lead that is validated, deduplicated, "
        "scored, routed and followed up; nothing is lost.",
        lifespan=lifespan,
        docs_url=None,  # web/docs.py serves them from vendored files, no CDN
        redoc_url=None,
    )
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(intake_router)
    app.include_router(leads_router)
    app.include_router(dedup_router)
    app.include_router(events_router)
    app.include_router(routing_router)
    app.include_router(pipeline_router)
    app.include_router(validation_router)
    app.include_router(landing_router)
    app.include_router(docs_router)
    static_dir = resources.files("leadflow") / "static"
    app.mount("/static", StaticFiles(directory=str(static_dir)), name="static")
    return app
