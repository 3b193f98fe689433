"""Idempotency: the same submission twice is one lead.

With an ``Idempotency-Key`` header (Stripe's convention) the key decides: the
same key with the same payload returns the first answer, with another payload
it is refused. Without a key, the same payload to the same form within the
duplicate window (double clicks, form-tool retries) returns the first answer.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from leadflow.errors import ValidationFailed

MAX_KEY_LENGTH = 255


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ValidationFailed(
            f"The Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            errors=[{"field": "Idempotency-Key", "reason": "1-255 printable ASCII characters"}],
        )
    return key


def fingerprint(form_key: str, payload: dict[str, Any]) -> str:
    """A stable hash of what was submitted: same form and same fields, same hash."""
    canonical = json.dumps(
        {"form": form_key, "payload": payload},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
