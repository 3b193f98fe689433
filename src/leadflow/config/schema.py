"""The schema of ``leadflow.yaml``.

Every model forbids unknown keys, so a typo is an error that points at its line
instead of a setting that silently does nothing.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import limits
import phonenumbers
from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from leadflow.config.base import Duration, Slug, Strict
from leadflow.config.connectors import NotifyTarget, Webhook
from leadflow.config.durations import parse_duration
from leadflow.config.routing import Owner, Queue, Routing, Team, check_routing
from leadflow.config.scoring import Scoring
from leadflow.fields import CONTROL_FIELDS, HONEYPOT_DEFAULT, LEAD_FIELDS


def _origin(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an origin like https://www.example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{value!r} is an URL, not an origin: drop the path")
    return f"{parts.scheme}://{parts.netloc}".lower()


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an absolute http(s) URL")
    return value


class ConsentItem(Strict):
    """One consent checkbox of a form, recorded in the consent ledger when ticked."""

    purpose: Slug
    text: str = Field(min_length=1, description="The exact text shown next to the checkbox.")
    policy_version: str = Field(min_length=1, max_length=64)
    field: str | None = Field(
        default=None, description="Input name of the checkbox; default consent_<purpose>."
    )
    required: bool = False

    @property
    def input_name(self) -> str:
        return self.field or f"consent_{self.purpose}"

    @property
    def text_hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


class Form(Strict):
    title: str = "Contact us"
    intro: str | None = None
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Input name on the form -> lead field. Inputs named like a lead "
        "field need no entry; unmapped inputs are kept in the raw payload.",
    )
    required: list[str] = Field(
        default_factory=list, description="Lead fields the hosted form marks as required."
    )
    default_region: str | None = Field(
        default=None, description="ISO country code for phone numbers written without +."
    )
    allowed_origins: list[str] = Field(default_factory=list)
    thank_you_url: str | None = None
    consent: list[ConsentItem] = Field(default_factory=list)
    honeypot_field: str = HONEYPOT_DEFAULT
    min_fill_seconds: float = Field(default=2.0, ge=0)
    duplicate_window: Duration | None = None

    @field_validator("fields")
    @classmethod
    def _known_targets(cls, value: dict[str, str]) -> dict[str, str]:
        for source, target in value.items():
            if target not in LEAD_FIELDS:
                known = ", ".join(sorted(LEAD_FIELDS))
                raise ValueError(f"{source}: {target!r} is not a lead field (one of: {known})")
            if source in CONTROL_FIELDS:
                raise ValueError(f"{source!r} is reserved for Leadflow's own use")
        return value

    @field_validator("required")
    @classmethod
    def _known_required(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in LEAD_FIELDS:
                raise ValueError(f"{name!r} is not a lead field")
        return value

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not a country code like US, DE or GB")
        return region

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return [_origin(v) for v in value]

    @field_validator("thank_you_url")
    @classmethod
    def _thank_you(cls, value: str | None) -> str | None:
        # A path ("/f/demo/thanks") means a page of this service.
        if value is None or (value.startswith("/") and not value.startswith("//")):
            return value
        return _http_url(value)

    @model_validator(mode="after")
    def _unique_consent(self) -> Form:
        names = [c.input_name for c in self.consent]
        if len(names) != len(set(names)):
            raise ValueError("two consent items use the same checkbox name")
        return self


def _rate(value: str) -> str:
    try:
        limits.parse(value)
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is not a rate limit; write it like '30/minute' or '1000 per hour'"
        ) from exc
    return value


RateLimit = Annotated[str, BeforeValidator(_rate)]


class RateLimits(Strict):
    per_ip: RateLimit = "30/minute"
    per_form: RateLimit = "1200/minute"


class Intake(Strict):
    duplicate_window: Duration = Field(
        default=timedelta(minutes=10),
        description="An identical submission within this window returns the first lead.",
    )
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=64 * 1024 * 1024)
    rate_limits: RateLimits = RateLimits()


class SlaPolicy(Strict):
    confirm: Duration | None = Field(default=None, description="Confirmation sent within.")
    first_contact: Duration = Field(description="A person contacts the lead within.")
    escalate: dict[str, Literal["owner", "team", "reassign"]] = Field(default_factory=dict)
    second_touch: Duration | None = None

    @field_validator("escalate")
    @classmethod
    def _escalation_delays(
        cls, value: dict[str, Literal["owner", "team", "reassign"]]
    ) -> dict[str, Literal["owner", "team", "reassign"]]:
        for delay in value:
            parse_duration(delay)
        return value


DEFAULT_RETRY_SCHEDULE = ("5s", "5m", "30m", "2h", "5h", "10h", "10h")


class Pipeline(Strict):
    retry: dict[str, list[Duration]] = Field(
        default_factory=lambda: {"default": [parse_duration(d) for d in DEFAULT_RETRY_SCHEDULE]},
        description="Delays between attempts after a retryable failure, per task kind "
        "(default, crm.sync, ...); after the last one the job becomes a dead letter.",
    )
    retry_jitter: float = Field(default=0.2, ge=0, le=1, description="+/- share of each delay.")
    stuck_after: Duration = Field(
        default=timedelta(minutes=5),
        description="A lead still in an internal stage after this long is flagged and requeued.",
    )
    heartbeat: Duration = Field(
        default=timedelta(seconds=10), description="How often a worker says it is alive."
    )
    stalled_after: Duration = Field(
        default=timedelta(seconds=30),
        description="A worker silent this long is taken for dead; its jobs run again.",
    )
    stop_grace: Duration = Field(
        default=timedelta(seconds=25),
        description="On SIGTERM, how long running jobs may take to finish; those still "
        "running then are cancelled (their work rolls back) and run again at once.",
    )

    @model_validator(mode="after")
    def _stall_after_heartbeats(self) -> Pipeline:
        if self.stalled_after < 2 * self.heartbeat:
            raise ValueError("stalled_after must be at least two heartbeats")
        return self

    @field_validator("retry")
    @classmethod
    def _schedules(cls, value: dict[str, list[timedelta]]) -> dict[str, list[timedelta]]:
        if "default" not in value:
            value = {**value, "default": [parse_duration(d) for d in DEFAULT_RETRY_SCHEDULE]}
        for kind, delays in value.items():
            if not delays:
                raise ValueError(f"{kind}: a retry schedule needs at least one delay")
        return value

    def schedule_for(self, task_name: str) -> list[timedelta]:
        return self.retry.get(task_name) or self.retry["default"]


class Spam(Strict):
    quarantine_at: int = Field(
        default=60, ge=1, le=100, description="Spam score (0-100) from which a lead is quarantined."
    )
    terms: list[str] = Field(
        default_factory=list, description="Known-spam phrases, besides the built-in ones."
    )
    blocked_domains: list[str] = Field(default_factory=list, description="Email domains to block.")

    @field_validator("terms", "blocked_domains")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.strip().lower() for v in value if v.strip()]


class Validation(Strict):
    check_deliverability: bool = Field(
        default=False,
        description="Look up the email domain's mail servers (MX). A DNS failure is a flag, "
        "never a rejection.",
    )
    dns_timeout: Duration = timedelta(seconds=2)
    spam: Spam = Spam()


SurvivorshipRule = Literal["most_recent", "first", "longest", "verified"]


class Dedup(Strict):
    same_at: float = Field(
        default=0.95,
        gt=0,
        lt=1,
        description="Match probability at or above which a new lead is merged automatically.",
    )
    possible_at: float = Field(
        default=0.6,
        gt=0,
        lt=1,
        description="Match probability at or above which a pair is linked for a person to review.",
    )
    default_rule: SurvivorshipRule = Field(
        default="most_recent", description="How a field's value is chosen when leads merge."
    )
    survivorship: dict[str, SurvivorshipRule] = Field(
        default_factory=dict,
        description="Per lead field: most_recent, first, longest or verified.",
    )

    @model_validator(mode="after")
    def _thresholds(self) -> Dedup:
        if self.possible_at >= self.same_at:
            raise ValueError(
                f"possible_at ({self.possible_at}) must be below same_at ({self.same_at})"
            )
        return self

    @field_validator("survivorship")
    @classmethod
    def _fields(cls, value: dict[str, SurvivorshipRule]) -> dict[str, SurvivorshipRule]:
        for name in value:
            if name not in LEAD_FIELDS or name == "full_name":
                raise ValueError(f"{name!r} is not a lead field")
        return value


class RecordingCrm(Strict):
    """Dry run: record what would be sent to the CRM, in a JSON-lines file (a relative
    path lies in the data directory, LEADFLOW_DATA_DIR)."""

    kind: Literal["recording"]
    path: str = "crm-dry-run.jsonl"


class HubSpotCrm(Strict):
    """HubSpot's CRM API: contacts upserted by email, a note per lead; the private app's
    access token is read from the environment variable ``token_env`` (never the file)."""

    kind: Literal["hubspot"]
    token_env: str = Field(default="HUBSPOT_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    base_url: str = Field(default="https://api.hubapi.com", pattern=r"^https?://[^/\s]+")
    timeout: Duration = Field(
        default=timedelta(seconds=10), description="The longest one HubSpot call may take."
    )


CrmTarget = Annotated[RecordingCrm | HubSpotCrm, Field(discriminator="kind")]


class Connectors(Strict):
    crm: CrmTarget | None = None
    notify: list[NotifyTarget] = Field(default_factory=list)
    webhooks: list[Webhook] = Field(default_factory=list)


class Config(Strict):
    _owners: dict[str, Owner] = PrivateAttr(default_factory=dict)
    intake: Intake = Intake()
    validation: Validation = Validation()
    dedup: Dedup = Dedup()
    pipeline: Pipeline = Pipeline()
    connectors: Connectors = Connectors()
    forms: dict[Slug, Form] = Field(default_factory=dict)
    owners: list[Owner] = Field(default_factory=list)
    teams: dict[Slug, Team] = Field(default_factory=dict)
    queues: dict[Slug, Queue] = Field(default_factory=dict)
    routing: Routing = Routing()
    scoring: Scoring = Scoring()
    sla: dict[Slug, SlaPolicy] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_owners(self) -> Config:
        emails = [o.email.lower() for o in self.owners]
        dupes = sorted({e for e in emails if emails.count(e) > 1})
        if dupes:
            raise ValueError(f"owners listed twice: {', '.join(dupes)}")
        check_routing(self.owners, self.teams, self.queues, self.routing)
        return self

    def owner(self, email: str) -> Owner | None:
        return self._owners.get(email.lower())

    def model_post_init(self, context: Any) -> None:
        self._owners = {o.email.lower(): o for o in self.owners}

    def duplicate_window(self, form: Form) -> timedelta:
        return form.duplicate_window or self.intake.duplicate_window
