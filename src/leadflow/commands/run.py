"""``leadflow serve`` and ``leadflow worker``: the processes of a deployment."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from leadflow import __version__
from leadflow.commands.common import config_or_exit, database, setup_logging, where
from leadflow.config import Config
from leadflow.settings import get_settings

# Collect the youngest generation after this many new objects (Python's default: 700).
# A batch of leads allocates some hundred thousand objects, nearly all freed by
# reference counting; collecting every 700 cost the worker 6-9 % of its throughput
# (bench-pipeline), for no memory saved. Older generations every 20 of the younger.
GC_THRESHOLDS = (20_000, 20, 20)


def _freeze_startup_objects() -> None:
    """Keep the garbage collector off what start-up built (modules, classes, config):
    it lives as long as the process, and scanning it again and again made full
    collections pause a busy server for 100 ms and more. And collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run a worker in this process.")
    ] = True,
) -> None:
    """Run the API, the hosted forms and (unless --no-worker) a worker; migrates first.

    Once it listens it prints where: the URL, the data directory, the config and
    the admin token's file (the token itself only when it was just made)."""
    import uvicorn

    from leadflow import migrate
    from leadflow.app import create_app
    from leadflow.commands.server import ReadyServer
    from leadflow.settings import ensure_admin_token

    settings = get_settings()
    setup_logging(settings)
    config = config_or_exit(settings.config)
    url = database(settings, schema=False)
    migrate.upgrade(url)
    _, generated = ensure_admin_token(settings)
    app_ = create_app(settings, config=config, database_url=url, embedded_worker=worker)
    server = ReadyServer(
        uvicorn.Config(
            app_,
            host=host,
            port=port,
            proxy_headers=True,
            forwarded_allow_ips=settings.trusted_proxies,
            log_level=settings.log_level.lower(),
            access_log=False,
        ),
        ready=lambda: typer.echo(banner(f"http://{host}:{port}", config, generated), err=True),
    )
    _freeze_startup_objects()
    server.run()  # on uvicorn's own event loop (uvloop where installed), as uvicorn.run does
    if not server.started:
        raise typer.Exit(3)  # could not listen, or the app did not start: logged above


def banner(base: str, config: Config, token_generated: bool) -> str:
    """What ``serve`` prints once it listens: where it is, what it runs with."""
    from leadflow.settings import admin_token

    settings = get_settings()
    lines = [
        f"Leadflow {__version__} is ready: open {base}/ in a browser (API docs: {base}/docs)",
        f"  data:   {settings.data_dir}",
        f"  config: {settings.config or 'built-in demo config (set LEADFLOW_CONFIG)'}",
        f"  database: {where(settings).removeprefix('the ')}",
    ]
    if settings.admin_token is not None:
        lines.append("  admin token: from LEADFLOW_ADMIN_TOKEN")
    elif token_generated:
        lines.append(
            f"  admin token (new, kept in {settings.admin_token_path}): {admin_token(settings)}"
        )
    else:
        lines.append(f"  admin token: in {settings.admin_token_path}")
    lines += [f"  form {key!r}: {base}/f/{key}" for key in config.forms]
    return "\n".join(lines)


def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs run at once (default: LEADFLOW_WORKER_CONCURRENCY).")
    ] = None,
    migrate_first: Annotated[
        bool,
        typer.Option(
            "--migrate",
            help="Apply the migrations first (under a lock: several processes may start at "
            "once) instead of waiting for `leadflow migrate` or `serve` to apply them.",
        ),
    ] = False,
    alive_file: Annotated[
        Path | None,
        typer.Option(
            help="Touch this file every heartbeat while the worker lives (also while it "
            "waits for the database), for a container healthcheck."
        ),
    ] = None,
) -> None:
    """Run a worker only (start as many as you like, on any machines).

    It waits for the database and its schema, rides through database restarts and
    failovers, and on SIGTERM lets running jobs finish (pipeline.stop_grace)."""
    import signal

    from leadflow import migrate as migrations
    from leadflow import runtime
    from leadflow.pipeline.worker import WorkerSupervisor, wait_for_database, wait_for_schema

    settings = get_settings()
    setup_logging(settings)
    config = config_or_exit(settings.config)
    url = database(settings, schema=False)  # it waits for the schema (or migrates)

    async def main() -> None:
        if migrate_first:
            await wait_for_database(url)
            await asyncio.to_thread(migrations.upgrade, url)
        else:
            await wait_for_schema(url)
        rt = await runtime.start(settings, config, url)
        supervisor = WorkerSupervisor(
            rt,
            url,
            kind="worker",
            concurrency=concurrency or settings.worker_concurrency,
            alive_file=alive_file,
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, _stopper(supervisor.stop))
        try:
            await supervisor.run()
        finally:
            await rt.close()

    _freeze_startup_objects()
    asyncio.run(main())


def _stopper(stop: Callable[[], None]) -> Callable[[], None]:
    """The first signal stops gracefully; a second one ends the process at once (its
    running jobs then run again elsewhere, as after a crash)."""
    signals = 0

    def handle() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            typer.echo("Stopping: running jobs finish first (again to stop now).", err=True)
            stop()
        else:
            typer.echo("Stopping now: running jobs will run again on another worker.", err=True)
            os._exit(1)

    return handle
