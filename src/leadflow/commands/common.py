"""What every ``leadflow`` subcommand needs: the config, the database, logging, and one
way to end with an error: a line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

# Typer carries its own copy of click: its usage errors are these classes.
from typer._click.core import Context
from typer._click.exceptions import ClickException, UsageError
from typer.core import TyperGroup

from leadflow.config import Config, ConfigError, load_config
from leadflow.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

# Loggers whose INFO lines say nothing an operator acts on: each migration step, each
# job started and ended. Their warnings and errors still show; LEADFLOW_LOG_LEVEL=DEBUG
# shows everything.
CHATTY = ("alembic", "procrastinate")
# uvicorn's start-up lines, which ``serve``'s banner says once and better; its
# shutdown lines stay (a clean stop is worth a line).
UVICORN_STARTUP = (
    "Started server process",
    "Waiting for application startup",
    "Application startup complete",
    "Uvicorn running on",
)


def _not_startup_chatter(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(UVICORN_STARTUP)


class CliError(Exception):
    """A mistake the user can fix, said in one line; ``code`` is the exit status
    (2: the command's input, 1: the world around it, such as the database)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def setup_logging(settings: Settings) -> None:
    level = settings.log_level.upper()
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if level != "DEBUG":
        for name in CHATTY:
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
        uvicorn = logging.getLogger("uvicorn.error")
        if _not_startup_chatter not in uvicorn.filters:
            uvicorn.addFilter(_not_startup_chatter)


def config_or_exit(path: Path | None) -> Config:
    """The config at ``path`` (None: the built-in demo); an invalid one ends with exit 2,
    its errors naming the file, the line and the field."""
    try:
        return load_config(path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


def where(settings: Settings) -> str:
    """The database as a person recognises it: host, port and name, or the embedded folder."""
    if not settings.database_url:
        return f"the embedded database in {settings.data_dir / 'postgres'}"
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(settings.database_url)
    except ArgumentError:
        return "the database of LEADFLOW_DATABASE_URL"
    return f"the database at {url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def database(settings: Settings, *, schema: bool = True) -> str:
    """The database URL, starting (or joining) the embedded PostgreSQL when none is
    configured; with ``schema``, one with this Leadflow's schema, else a CliError (as for
    a URL that is not PostgreSQL's, or none where no embedded one may start)."""
    from leadflow.db import NoDatabase, database_url

    embedded = not settings.database_url and settings.embedded_database
    if embedded and not (settings.data_dir / "postgres").exists():
        typer.echo(
            f"Creating the embedded PostgreSQL in {settings.data_dir / 'postgres'} ...", err=True
        )
    try:
        url = database_url(settings)
    except NoDatabase as exc:  # it says what to set
        raise CliError(str(exc), 2) from exc
    except ValueError as exc:
        raise CliError(f"LEADFLOW_DATABASE_URL: {exc}", 2) from exc
    if schema:
        from leadflow.migrate import schema_revision, waits_for

        revision = asyncio.run(schema_revision(url))
        if revision is None:
            raise CliError(f"{where(settings)} has no Leadflow schema; run `leadflow migrate`")
        why = waits_for(revision)
        if why is not None:
            raise CliError(f"{where(settings)} has an older schema ({why}); run `leadflow migrate`")
    return url


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


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def error_of(exc: Exception) -> tuple[str, int] | None:
    """What the user reads for ``exc`` and the exit status; None for a bug (a traceback)."""
    import psycopg
    from pydantic import ValidationError
    from sqlalchemy.exc import DBAPIError

    from leadflow.analysis.columns import MappingError

    if isinstance(exc, CliError):
        return f"error: {exc}", exc.code
    if isinstance(exc, ConfigError):
        return str(exc), 2
    if isinstance(exc, MappingError):
        return f"error: {exc}", 2
    if isinstance(exc, ValidationError) and exc.title == Settings.__name__:
        first = exc.errors()[0]
        name = "LEADFLOW_" + "_".join(str(part) for part in first["loc"]).upper()
        return f"error: {name}: {first['msg']}", 2
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    settings = get_settings()
    if isinstance(cause, psycopg.errors.UndefinedTable):
        return (
            f"error: {where(settings)} has no Leadflow schema ({_first_line(cause)}); "
            "run `leadflow migrate`",
            1,
        )
    if isinstance(cause, psycopg.OperationalError):
        return f"error: cannot reach {where(settings)}: {_first_line(cause)}", 1
    return None


class Group(TyperGroup):
    """The ``leadflow`` command group: every error ends in one line on stderr."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            typer.echo(f"error: {exc.format_message()}{hint}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except ClickException as exc:
            typer.echo(f"error: {exc.format_message()}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except Exception as exc:
            said = error_of(exc)
            if said is None:
                raise
            typer.echo(said[0], err=True)
            raise typer.Exit(said[1]) from None
