"""Schema migrations (Alembic), runnable from code: ``leadflow migrate`` and ``serve``."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from leadflow.db import libpq_url, sqlalchemy_url


def alembic_config(database_url: str) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option(
        "script_location", str(Path(str(resources.files("leadflow"))) / "migrations")
    )
    # ConfigParser treats % as interpolation; URLs may contain %-escapes.
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def check(database_url: str) -> None:
    """Raise if the models and the migrations disagree (``alembic check``)."""
    command.check(alembic_config(database_url))


@cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("postgresql://unused/")).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def schema_revision(url: str) -> str | None:
    """The revision the database's schema is at; None before the first migration.

    Raises psycopg.OperationalError when the database cannot be reached."""
    async with await psycopg.AsyncConnection.connect(
        libpq_url(url), autocommit=True, connect_timeout=5
    ) as connection:
        cursor = await connection.execute("SELECT to_regclass('alembic_version') IS NOT NULL")
        row = await cursor.fetchone()
        if row is None or not row[0]:
            return None
        cursor = await connection.execute("SELECT version_num FROM alembic_version")
        version = await cursor.fetchone()
        return None if version is None else str(version[0])


def waits_for(revision: str | None) -> str | None:
    """Why a worker must wait before it runs on a schema at ``revision``; None if it
    need not: the schema is this code's, or newer (a later release migrated it)."""
    head = head_revision()
    if revision == head:
        return None
    if revision is None:
        return f"no schema yet, this Leadflow needs {head}"
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused/"))
    known = {r.revision for r in script.walk_revisions()}
    if revision not in known:
        return None
    return f"at {revision}, this Leadflow needs {head}"
