"""Reading a submission body: JSON, urlencoded or multipart, within size limits."""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from leadflow.errors import InvalidBody, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from leadflow.intake.mapping import storable

JSON_TYPES = ("application/json",)
MAX_DEPTH = 32
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
ACCEPTED_TYPES = JSON_TYPES + FORM_TYPES
MAX_FIELDS = 200
MAX_FILES = 5

RawPayload = dict[str, Any]


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def is_json(media: str) -> bool:
    return media in JSON_TYPES


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) anything over ``limit`` bytes before storing it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is {declared} bytes; this form accepts at most {limit}.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body is over {limit} bytes, the most this form accepts.")
        chunks.append(chunk)
    return b"".join(chunks)


def _replay(body: bytes) -> Any:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _check_text(value: str, where: str) -> None:
    if not storable(value):
        reason = "NUL character" if "\x00" in value else "invalid Unicode (lone surrogate)"
        raise ValidationFailed(
            f"{where} contains text that cannot be stored ({reason}).",
            errors=[{"field": where, "reason": reason}],
        )


def check_storable(value: Any, where: str = "body", depth: int = 0) -> None:
    """Refuse what PostgreSQL cannot store (NUL, lone surrogates) anywhere in the
    payload, and nesting deeper than any form needs."""
    if depth > MAX_DEPTH:
        raise InvalidBody(f"The body is nested deeper than {MAX_DEPTH} levels.")
    if isinstance(value, str):
        _check_text(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, f"{where} key")
            check_storable(item, key if where == "body" else f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_storable(item, f"{where}[{index}]", depth + 1)


def _add(payload: RawPayload, key: str, value: Any) -> None:
    # Repeated inputs (checkbox groups) become lists, in the order they came.
    if key in payload:
        existing = payload[key]
        payload[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
    else:
        payload[key] = value


async def parse_body(request: Request, body: bytes) -> RawPayload:
    media = media_type(request)
    if is_json(media):
        payload = parse_json(body)
    elif media in FORM_TYPES:
        payload = await _parse_form(request, body)
    else:
        shown = media or "none"
        raise UnsupportedMediaType(
            f"Content-Type {shown!r} is not accepted; send application/json, "
            "application/x-www-form-urlencoded or multipart/form-data."
        )
    if len(payload) > MAX_FIELDS:
        raise ValidationFailed(f"The submission has {len(payload)} fields; at most {MAX_FIELDS}.")
    check_storable(payload)
    return payload


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range")
    return number


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes) -> RawPayload:
    try:
        # NaN, Infinity and overflowing numbers are not JSON PostgreSQL can store.
        payload = json.loads(body, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError as exc:
        raise InvalidBody("The JSON body is nested too deeply.") from exc
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, NaN, integers too long
        raise InvalidBody(f"The body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidBody("The JSON body must be an object of field names and values.")
    return payload


async def _parse_form(request: Request, body: bytes) -> RawPayload:
    replayed = Request(request.scope, _replay(body))
    try:
        form = await replayed.form(max_files=MAX_FILES, max_fields=MAX_FIELDS)
    except Exception as exc:  # python-multipart raises several types for broken bodies
        raise InvalidBody(f"The form body could not be read: {exc}") from exc
    payload: RawPayload = {}
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                # Files are not lead data: keep what they were, not their bytes.
                _add(
                    payload,
                    key,
                    {
                        "filename": value.filename,
                        "content_type": value.content_type,
                        "size": value.size,
                    },
                )
            else:
                _add(payload, key, value)
    finally:
        await form.close()
    return payload
