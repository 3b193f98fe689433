"""``leadflow status``, ``migrate``, ``check-config``, ``init``, ``token``: upkeep."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadflow.commands.common import (
    config_or_exit,
    database,
    setup_logging,
    where,
    with_session,
)
from leadflow.config.loader import STARTER_CONFIG, builtin_text
from leadflow.settings import get_settings


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Workers and their last heartbeats, the queue per task, and stalled stages.

    Exits 1 when something needs a person (no worker running, leads waiting too long)."""
    from leadflow.pipeline.cli import render
    from leadflow.pipeline.status import status as pipeline_status

    settings = get_settings()
    config = config_or_exit(settings.config)
    report = with_session(lambda session: pipeline_status(session, config))
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        render(report)
    if not report.healthy:
        raise typer.Exit(1)


def migrate(
    check: Annotated[
        bool, typer.Option("--check", help="Only check that models and migrations agree.")
    ] = False,
) -> None:
    """Bring the database schema (leads and queue) to the latest version."""
    from leadflow import migrate as migrations

    settings = get_settings()
    setup_logging(settings)
    url = database(settings, schema=False)
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
    typer.echo(f"{where(settings).capitalize()} is at the latest migration.")


def check_config(
    file: Annotated[
        Path | None, typer.Argument(help="Config file (default: LEADFLOW_CONFIG).")
    ] = None,
) -> None:
    """Validate a config file; errors name the file, the line and the field."""
    from leadflow.config import ConfigError
    from leadflow.connectors import check_crm

    settings = get_settings()
    path = file or settings.config
    config = config_or_exit(path)
    try:
        check_crm(config, settings.data_dir, path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        f"{path or 'built-in demo config'}: OK ({len(config.forms)} forms, "
        f"{len(config.owners)} owners, {len(config.sla)} SLA policies)"
    )


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


def token() -> None:
    """Print the admin API's bearer token (generated once and kept in the data directory,
    unless LEADFLOW_ADMIN_TOKEN is set).

    Examples:
      curl -s http://127.0.0.1:8000/v1/status -H "Authorization: Bearer $(leadflow token)"
    """
    from leadflow.settings import admin_token

    typer.echo(admin_token(get_settings()))
