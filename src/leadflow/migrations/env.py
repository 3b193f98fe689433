"""Alembic environment: our models are the target; procrastinate's tables are its own."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Literal

from alembic import context
from sqlalchemy import create_engine, pool

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


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if url is None:  # alembic run by hand: use Leadflow's settings
        from leadflow.db import database_url, sqlalchemy_url
        from leadflow.settings import get_settings

        url = sqlalchemy_url(database_url(get_settings()))
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
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
