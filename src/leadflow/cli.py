"""The ``leadflow`` command."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from leadflow import __version__
from leadflow.config import Config, ConfigError, load_config
from leadflow.config.loader import STARTER_CONFIG, builtin_text
from leadflow.settings import Settings, get_settings

app = typer.Typer(
    name="leadflow",
    help="Leadflow: form submissions in, followed-up leads out. Nothing lost, nothing doubled.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _config_or_exit(path: Path | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


def _database(settings: Settings) -> str:
    from leadflow.db import database_url

    if not settings.database_url:
        typer.echo(
            f"Starting the embedded PostgreSQL in {settings.data_dir / 'postgres'} ...", err=True
        )
    return database_url(settings)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run a worker in this process.")
    ] = True,
    workers: Annotated[
        int, typer.Option(help="HTTP worker processes (external database only).")
    ] = 1,
) -> None:
    """Run the API, the hosted forms and (unless --no-worker) a worker; migrates first."""
    import uvicorn

    from leadflow import migrate
    from leadflow.app import create_app
    from leadflow.settings import admin_token

    settings = get_settings()
    _logging(settings)
    config = _config_or_exit(settings.config)
    url = _database(settings)
    migrate.upgrade(url)
    token = admin_token(settings)
    typer.echo(f"Leadflow {__version__} on http://{host}:{port}", err=True)
    for key in config.forms:
        typer.echo(f"  form {key!r}: http://{host}:{port}/f/{key}", err=True)
    if settings.admin_token is None:
        typer.echo(f"  admin token (from {settings.data_dir / 'admin-token'}): {token}", err=True)
    app_ = create_app(settings, config=config, database_url=url, embedded_worker=worker)
    uvicorn.run(
        app_,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs run at once (default: LEADFLOW_WORKER_CONCURRENCY).")
    ] = None,
) -> None:
    """Run a worker only (start as many as you like, on any machines)."""
    from leadflow import runtime
    from leadflow.pipeline.worker import run_worker

    settings = get_settings()
    _logging(settings)
    config = _config_or_exit(settings.config)
    url = _database(settings)

    async def main() -> None:
        rt = await runtime.start(settings, config, url)
        try:
            await run_worker(rt, concurrency=concurrency or settings.worker_concurrency)
        finally:
            await rt.close()

    asyncio.run(main())


@app.command()
def migrate(
    check: Annotated[
        bool, typer.Option("--check", help="Only check that models and migrations agree.")
    ] = False,
) -> None:
    """Bring the database schema (leads and queue) to the latest version."""
    from leadflow import migrate as migrations

    settings = get_settings()
    _logging(settings)
    url = _database(settings)
    if check:
        from alembic.util import CommandError

        try:
            migrations.check(url)
        except CommandError as exc:
            typer.echo(f"Migration check failed: {exc}", err=True)
            raise typer.Exit(1) from exc
        typer.echo("Models and migrations agree.")
        return
    migrations.upgrade(url)
    typer.echo("Database is at the latest migration.")


@app.command("check-config")
def check_config(
    file: Annotated[
        Path | None, typer.Argument(help="Config file (default: LEADFLOW_CONFIG).")
    ] = None,
) -> None:
    """Validate a config file; errors name the file, the line and the field."""
    path = file or get_settings().config
    config = _config_or_exit(path)
    typer.echo(
        f"{path or 'built-in demo config'}: OK ({len(config.forms)} forms, "
        f"{len(config.owners)} owners, {len(config.sla)} SLA policies)"
    )


@app.command()
def init(
    file: Annotated[Path, typer.Argument(help="Where to write the starter config.")] = Path(
        "leadflow.yaml"
    ),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter leadflow.yaml."""
    if file.exists() and not force:
        typer.echo(f"{file} exists; use --force to overwrite it.", err=True)
        raise typer.Exit(1)
    file.write_text(builtin_text(STARTER_CONFIG), encoding="utf-8")
    typer.echo(f"Wrote {file}. Check it with: leadflow check-config {file}")


def main() -> None:
    app()
