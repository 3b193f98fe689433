"""Response schemas shared across endpoints (problem details)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from leadflow.errors import PROBLEM_JSON


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, str]] | None = Field(
        default=None, description='One entry per bad field: {"field": ..., "reason": ...}.'
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "The body could not be read",
        401: "Missing or wrong bearer token",
        403: "Forbidden",
        404: "Not found",
        409: "Not possible in the current state",
        413: "The body is too large",
        415: "Unsupported content type",
        422: "The request is not valid",
        429: "Rate limited; see Retry-After",
        503: "The database is unavailable; retry after Retry-After",
    }
    return {
        status: {
            "description": descriptions[status],
            "content": {PROBLEM_JSON: {"schema": Problem.model_json_schema()}},
        }
        for status in statuses
    }
