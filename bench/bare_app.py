"""The reference for ``bench.intake``: a bare FastAPI endpoint that parses and echoes JSON.

Same path as the intake, so routing does the same work; no database, no validation.
``GET /readyz`` only tells the benchmark that the server is up; it is not measured.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI(title="bare")


@app.post("/v1/forms/{form_key}/submissions")
async def echo(form_key: str, request: Request) -> JSONResponse:
    return JSONResponse(await request.json())


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}
