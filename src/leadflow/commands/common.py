"""What every ``leadflow`` subcommand needs: the config or exit 2, the database, logging."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from leadflow.config import Config, ConfigError, load_config
from leadflow.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


def setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def config_or_exit(path: Path | None) -> Config:
    """The config at ``path`` (None: the built-in demo); an invalid one ends with exit 2,
    its errors naming the file, the line and the field."""
    try:
        return load_config(path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


def database(settings: Settings) -> str:
    """The database URL, starting the embedded PostgreSQL when none is configured; a URL
    that is not PostgreSQL's, or none where no embedded one may start, ends with exit 2."""
    from leadflow.db import database_url

    if not settings.database_url and settings.embedded_database:
        typer.echo(
            f"Starting the embedded PostgreSQL in {settings.data_dir / 'postgres'} ...", err=True
        )
    try:
        return database_url(settings)
    except ValueError as exc:  # libpq_url's and NoDatabase's messages say what to set
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


def with_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction, committed when it returns."""
    from leadflow.db import create_engine, session_factory, transaction

    settings = get_settings()
    url = database(settings)

    async def main() -> T:
        engine = create_engine(url, pool_size=1)
        try:
            async with transaction(session_factory(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(main())
