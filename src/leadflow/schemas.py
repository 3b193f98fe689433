"""Response schemas shared across endpoints (problem details)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, TypeAdapter

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


def inline_schema(adapter: TypeAdapter[Any]) -> dict[str, Any]:
    """The JSON schema of ``adapter`` with its ``$defs`` written in place of each reference.

    For a schema given by hand (``openapi_extra``): pydantic's references point at
    ``#/$defs/...``, which an OpenAPI document does not have (ReDoc failed on the whole
    document; Swagger UI on the operation). The models given so are not recursive."""
    schema = adapter.json_schema()
    defs: dict[str, Any] = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved
