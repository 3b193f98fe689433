"""Migrations match the models, run both ways, and keep the ledgers append-only."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from leadflow import migrate
from tests.conftest import _create_database, _drop_database
from tests.factories import submit


def test_models_and_migrations_agree(database_url: str) -> None:
    migrate.check(database_url)  # raises when `alembic check` finds a difference


def test_downgrade_to_nothing_and_back(server_url: str) -> None:
    url = _create_database(server_url)
    try:
        migrate.upgrade(url)
        migrate.upgrade(url, "head")
        from alembic import command

        command.downgrade(migrate.alembic_config(url), "base")
        with psycopg.connect(url) as conn:
            tables = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            ).fetchall()
            assert tables == [("alembic_version",)]
        migrate.upgrade(url)
    finally:
        _drop_database(server_url, url)


async def test_timeline_and_consent_rows_cannot_be_edited(
    client: Any, db: psycopg.Connection[dict[str, Any]]
) -> None:
    await submit(client, email="ledger@acme.de", consent=["marketing_email"])
    for table, column in (("lead_events", "type"), ("consent_records", "purpose")):
        with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
            db.execute(f"UPDATE {table} SET {column} = 'tampered'")
