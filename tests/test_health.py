"""Liveness, readiness and the OpenAPI document."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}}


async def test_readyz_reports_a_database_behind_on_migrations(
    client: httpx.AsyncClient, db: psycopg.Connection[dict[str, Any]]
) -> None:
    (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone().values()  # type: ignore[union-attr]
    db.execute("UPDATE alembic_version SET version_num = 'older'")
    try:
        response = await client.get("/readyz")
    finally:
        db.execute("UPDATE alembic_version SET version_num = %s", (revision,))

    assert response.status_code == 503
    assert "run leadflow migrate" in response.json()["checks"]["migrations"]


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
