"""What the intake's routes answer, and how their requests are documented."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel

from leadflow.intake.parsing import ACCEPTED_TYPES


class SubmissionAccepted(BaseModel):
    lead_id: uuid.UUID
    submission_id: uuid.UUID
    status: str


_FIELDS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The form's inputs by name: lead fields (email, phone, first_name, ...), "
    "the form's own names mapped in the config, consent checkboxes, and anything else "
    "(kept in the raw payload).",
    "properties": {
        "email": {"type": "string", "format": "email"},
        "phone": {"type": "string"},
        "full_name": {"type": "string"},
        "company": {"type": "string"},
        "message": {"type": "string"},
        "utm_source": {"type": "string"},
        "_gotcha": {"type": "string", "description": "Honeypot: leave empty."},
        "_lf_rendered_at": {"type": "integer", "description": "Epoch ms the form was shown."},
        "_next": {"type": "string", "description": "Redirect after a plain HTML post."},
    },
    "additionalProperties": True,
}

SUBMISSION_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {media: {"schema": _FIELDS_SCHEMA} for media in ACCEPTED_TYPES},
    }
}

# The submission route reads these from the request itself (see intake/endpoints.py).
SUBMISSION_PARAMETERS: dict[str, Any] = {
    "parameters": [
        {
            "in": "path",
            "name": "form_key",
            "required": True,
            "schema": {"title": "Form Key", "type": "string"},
        },
        {
            "in": "header",
            "name": "Idempotency-Key",
            "required": False,
            "schema": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Idempotency-Key"},
        },
    ]
}
