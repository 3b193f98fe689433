"""What ``POST /v1/events`` takes: Segment-style ``page``, ``track`` and ``identify`` calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_BATCH = 100


class Call(BaseModel):
    """One call of the Segment spec (the fields Leadflow reads; others are ignored)."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["page", "track", "identify"]
    anonymousId: str | None = Field(default=None, min_length=1, max_length=255)  # noqa: N815
    userId: str | None = Field(default=None, min_length=1, max_length=255)  # noqa: N815
    messageId: str | None = Field(default=None, min_length=1, max_length=255)  # noqa: N815
    event: str | None = Field(default=None, max_length=255, description="track: the event name.")
    name: str | None = Field(default=None, max_length=255, description="page: the page name.")
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime | None = None

    @model_validator(mode="after")
    def _who_and_what(self) -> Call:
        if not self.anonymousId and not self.userId:
            raise ValueError("give anonymousId or userId")
        if self.type == "track" and not self.event:
            raise ValueError("a track call needs event (its name)")
        if self.timestamp is not None and self.timestamp.tzinfo is None:
            raise ValueError("timestamp needs a time zone (ISO 8601 with Z or an offset)")
        return self

    def url(self) -> str | None:
        page = self.context.get("page") if isinstance(self.context.get("page"), dict) else {}
        value = self.properties.get("url") or (page or {}).get("url")
        return str(value)[:4096] if value else None

    def path(self) -> str | None:
        page = self.context.get("page") if isinstance(self.context.get("page"), dict) else {}
        value = self.properties.get("path") or (page or {}).get("path")
        if not value and self.url():
            try:
                value = urlsplit(self.url()).path
            except ValueError:
                value = None
        return str(value)[:2048] if value else None

    def email(self) -> str | None:
        for value in (self.traits.get("email"), self.properties.get("email"), self.userId):
            if isinstance(value, str) and "@" in value:
                return value
        return None


class Batch(BaseModel):
    batch: list[Call] = Field(min_length=1, max_length=MAX_BATCH)


class Recorded(BaseModel):
    accepted: int = Field(description="Calls stored (a messageId seen before is not stored again).")
    linked: int = Field(description="Of those, calls attached to a known lead.")
