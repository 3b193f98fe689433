"""Alembic environment: our models are the target; procrastinate's tables are its own."""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Literal

from alembic import context
from sqlalchemy import Connection, create_engine, pool, text

from leadflow.models import Base

config = context.config
target_metadata = Base.metadata


NameKind = Literal[
    "schema",
    "table",
    "column",
    "index",
    "unique_constraint",
    "foreign_key_constraint",
    "check_constraint",
]
ParentKey = Literal["schema_name", "table_name", "schema_qualified_table_name"]


def include_name(
    name: str | None, type_: NameKind, parent_names: MutableMapping[ParentKey, str | None]
) -> bool:
    # The queue's schema is installed from procrastinate's own SQL by our migrations.
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))


MIGRATION_LOCK = 0x6C66_6D69_6772  # "lfmigr": a fixed advisory lock id for migrations


def _take_migration_lock(connection: Connection) -> None:
    """Several processes may start at once (API replicas, `leadflow worker --migrate`):
    one migrates, the others wait here, then find nothing left to do. They wait by
    trying again and again, outside any transaction: a session blocked inside
    pg_advisory_lock() holds a snapshot, which CREATE INDEX CONCURRENTLY (in the
    migrating session) would wait for, for ever."""
    connection = connection.execution_options(isolation_level="AUTOCOMMIT")
    take = text("SELECT pg_try_advisory_lock(:id)")
    while not connection.execute(take, {"id": MIGRATION_LOCK}).scalar_one():
        time.sleep(0.2)


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if url is None:  # alembic run by hand: use Leadflow's settings
        from leadflow.db import database_url, sqlalchemy_url
        from leadflow.settings import get_settings

        url = sqlalchemy_url(database_url(get_settings()))
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as lock, engine.connect() as connection:
        _take_migration_lock(lock)
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_name=include_name,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Leadflow's migrations run online only: leadflow migrate")
run_migrations_online()
