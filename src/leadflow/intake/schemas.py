"""What the intake's routes answer, and how their requests are documented."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

from leadflow.fields import HONEYPOT_DEFAULT, LEAD_FIELDS, NEXT_URL, RENDERED_AT, Kind, LeadField
from leadflow.intake.parsing import ACCEPTED_TYPES


class SubmissionAccepted(BaseModel):
    """The submission is stored and its lead queued for processing."""

    lead_id: uuid.UUID = Field(description="The lead this submission made.")
    submission_id: uuid.UUID
    status: str = Field(description="The lead's status when it was stored: received.")
    lead_url: str = Field(
        description="Where the lead can be read as it moves through the pipeline: "
        "GET /v1/leads/{lead_id}, relative to this server, with the admin bearer token.",
        examples=["/v1/leads/0b7e1d2c-6a3f-4c1e-9f4e-2d8c5a7b9e10"],
    )


# The lead fields the document shows by name; any other works the same way.
_DOCUMENTED = ("email", "phone", "full_name", "company", "message", "utm_source")


def _schema_of(field: LeadField) -> dict[str, str]:
    return {"type": "string", "format": "email"} if field.kind is Kind.EMAIL else {"type": "string"}


_FIELDS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The form's inputs by name: lead fields (email, phone, first_name, ...), "
    "the form's own names mapped in the config, consent checkboxes, and anything else "
    "(kept in the raw payload).",
    "properties": {
        **{name: _schema_of(LEAD_FIELDS[name]) for name in _DOCUMENTED},
        HONEYPOT_DEFAULT: {"type": "string", "description": "Honeypot: leave empty."},
        RENDERED_AT: {"type": "integer", "description": "Epoch ms the form was shown."},
        NEXT_URL: {"type": "string", "description": "Redirect after a plain HTML post."},
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
