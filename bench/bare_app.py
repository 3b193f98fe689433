"""The reference for ``bench.intake``: a bare FastAPI endpoint with one durable write each.

``POST /v1/forms/{form_key}/submissions`` parses the JSON body and stores it with exactly
one ``INSERT`` and its ``COMMIT`` (autocommit) into ``bare_submissions``, through the driver
Leadflow uses (psycopg 3 with a psycopg_pool ``AsyncConnectionPool``), in the database of
``LEADFLOW_DATABASE_URL``, and answers 202 once it has committed. No validation, no
idempotency, no rate limit: what a durable endpoint cannot do with less.
``POST /echo/v1/forms/{form_key}/submissions`` only echoes the JSON (no database): the ceiling
of FastAPI itself on the machine. ``GET /readyz`` only tells the benchmark that the server
is up; it is not measured.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from leadflow.db import libpq_url

POOL_SIZE = int(os.environ.get("LEADFLOW_DB_POOL_SIZE", "10"))  # as Leadflow's engine
_TABLE = """CREATE TABLE IF NOT EXISTS bare_submissions (
    id bigserial PRIMARY KEY, body jsonb NOT NULL, at timestamptz NOT NULL DEFAULT now())"""
_INSERT = "INSERT INTO bare_submissions (body) VALUES (%s) RETURNING id"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = libpq_url(os.environ["LEADFLOW_DATABASE_URL"])
    pool = AsyncConnectionPool(
        url, min_size=POOL_SIZE, max_size=POOL_SIZE, kwargs={"autocommit": True}, open=False
    )
    await pool.open(wait=True)
    async with pool.connection() as conn:
        await conn.execute(_TABLE)
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(title="bare", lifespan=lifespan)


@app.post("/v1/forms/{form_key}/submissions", status_code=202)
async def store(form_key: str, request: Request) -> JSONResponse:
    pool: AsyncConnectionPool = request.app.state.pool
    body = Jsonb(await request.json())
    async with pool.connection() as conn:
        cursor = await conn.execute(_INSERT, (body,))
        row = await cursor.fetchone()
    assert row is not None
    return JSONResponse({"id": row[0]}, status_code=202)


@app.post("/echo/v1/forms/{form_key}/submissions")
async def echo(form_key: str, request: Request) -> JSONResponse:
    return JSONResponse(await request.json(), status_code=202)


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}
