"""The ``connectors.notify`` (alerts to people) and ``connectors.webhooks`` config."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from leadflow.config.base import Duration, Strict

AlertKind = Literal[
    "pipeline_stalled", "triage", "sla_breach", "connector_failing", "volume_drop", "dead_letter"
]
WebhookEvent = Literal["lead.routed", "lead.merged", "lead.synced"]


class NotifyTarget(Strict):
    """Where alerts of the kinds in ``on`` go: an apprise URL (Slack, e-mail, ...),
    written in the config (``url``) or read from an environment variable (``url_env``)."""

    url: str | None = None
    url_env: str | None = None
    on: list[AlertKind] = Field(min_length=1)
    quiet_for: Duration = timedelta(hours=1)

    @model_validator(mode="after")
    def _one_url(self) -> NotifyTarget:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url or url_env")
        return self

    def resolved_url(self) -> str | None:
        """The target's URL; None when its environment variable is unset."""
        if self.url is not None:
            return self.url
        assert self.url_env is not None
        return os.environ.get(self.url_env) or None


class Webhook(Strict):
    """An endpoint that receives the events in ``events``, signed per Standard Webhooks
    with the secret in the environment variable ``secret_env``."""

    url: str
    secret_env: str = Field(min_length=1)
    events: list[WebhookEvent] = Field(min_length=1)
    allow_private: bool = False

    @model_validator(mode="after")
    def _http(self) -> Webhook:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{self.url!r} is not an absolute http(s) URL")
        return self

    def secret(self) -> str | None:
        return os.environ.get(self.secret_env) or None
