"""Liveness, readiness and the OpenAPI document."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
from alembic.script import ScriptDirectory

from leadflow.migrate import alembic_config, head_revision


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}}


async def _readyz_at(
    client: httpx.AsyncClient, db: psycopg.Connection[dict[str, Any]], revision: str
) -> httpx.Response:
    """/readyz's answer while the database's schema says it is at ``revision``."""
    (current,) = db.execute("SELECT version_num FROM alembic_version").fetchone().values()  # type: ignore[union-attr]
    db.execute("UPDATE alembic_version SET version_num = %s", (revision,))
    try:
        return await client.get("/readyz")
    finally:
        db.execute("UPDATE alembic_version SET version_num = %s", (current,))


async def test_readyz_reports_a_database_behind_on_migrations(
    client: httpx.AsyncClient, db: psycopg.Connection[dict[str, Any]]
) -> None:
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused/"))
    previous = script.get_revision(head_revision()).down_revision
    assert isinstance(previous, str)

    response = await _readyz_at(client, db, previous)

    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == (
        f"at {previous}, this Leadflow needs {head_revision()}: run leadflow migrate"
    )


async def test_readyz_stays_ready_on_a_schema_a_later_release_migrated(
    client: httpx.AsyncClient, db: psycopg.Connection[dict[str, Any]]
) -> None:
    # A rolling upgrade: the migration Job ran first; this replica is of the release before.
    response = await _readyz_at(client, db, "a_later_release")

    assert response.status_code == 200
    assert response.json()["checks"]["migrations"] == "ok"


async def test_openapi_documents_the_contract(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    intake = spec["paths"]["/v1/forms/{form_key}/submissions"]["post"]

    assert set(intake["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    }
    assert {"202", "303", "400", "404", "413", "415", "422", "429"} <= set(intake["responses"])
    assert "/v1/leads/{lead_id}" in spec["paths"]
