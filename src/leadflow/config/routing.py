"""Owners, teams, queues and the ``routing`` section: who gets a lead, and why."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as public_holidays
from pydantic import ConfigDict, Field, field_validator, model_validator

from leadflow.config.base import Duration, RuleId, Slug, Strict, unique_ids
from leadflow.config.scoring import Condition

Strategy = Literal["round_robin", "weighted", "least_loaded", "direct"]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(
    r"^(?P<first>mon|tue|wed|thu|fri|sat|sun)(-(?P<last>mon|tue|wed|thu|fri|sat|sun))?"
    r"\s+(?P<start>([01]\d|2[0-3]):[0-5]\d)-(?P<end>([01]\d|2[0-4]):[0-5]\d)$"
)


@dataclass(frozen=True, slots=True)
class Span:
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time  # 24:00 is written as time.max


def parse_hours(value: str) -> tuple[Span, ...]:
    """``Mon-Fri 09:00-18:00``, or several: ``Mon-Thu 09:00-17:00, Fri 09:00-13:00``."""
    spans = []
    for part in value.split(","):
        match = _SPAN.match(" ".join(part.strip().lower().split()))
        if match is None:
            raise ValueError(
                f"{part.strip()!r} is not like 'Mon-Fri 09:00-18:00' "
                "(several spans: 'Mon-Thu 09:00-17:00, Fri 09:00-13:00')"
            )
        first = DAYS.index(match["first"])
        last = DAYS.index(match["last"] or match["first"])
        days = {(first + n) % 7 for n in range((last - first) % 7 + 1)}
        start = time.fromisoformat(match["start"])
        end = time.max if match["end"] == "24:00" else time.fromisoformat(match["end"])
        if end <= start:
            raise ValueError(f"{part.strip()!r}: the end is not after the start")
        spans.append(Span(frozenset(days), start, end))
    return tuple(spans)


@lru_cache(maxsize=1024)
def _spans(hours: str) -> tuple[Span, ...]:
    return parse_hours(hours)


class Absence(Strict):
    """Out of office, both days included, in the owner's time zone."""

    start: date = Field(alias="from")
    end: date = Field(alias="to")
    note: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _ordered(self) -> Absence:
        if self.end < self.start:
            raise ValueError(f"out of office from {self.start} to {self.end}: the end is earlier")
        return self


class Owner(Strict):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    name: str | None = None
    timezone: str = "UTC"
    hours: str | None = Field(
        default=None, description='Working hours, e.g. "Mon-Fri 09:00-18:00" (owner\'s time).'
    )
    languages: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    products: list[str] = Field(default_factory=list)
    weight: int = Field(default=1, ge=1, le=100, description="Share in weighted pools.")
    max_per_day: int | None = Field(default=None, ge=1, description="New leads a day at most.")
    max_open: int | None = Field(default=None, ge=1, description="Open leads at most.")
    holidays: str | None = Field(
        default=None, description="Country (ISO code) whose public holidays the owner is off."
    )
    out_of_office: list[Absence] = Field(default_factory=list)
    active: bool = True

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone like Europe/Berlin") from exc
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None:
            parse_hours(value)
        return value

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in public_holidays.list_supported_countries():
            raise ValueError(f"{value!r}: no public holidays known for this country code")
        return value.upper() if value else None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def spans(self) -> tuple[Span, ...]:
        return _spans(self.hours) if self.hours else ()


class Team(Strict):
    members: list[str] = Field(min_length=1, description="Owner emails.")
    name: str | None = None


class Queue(Strict):
    """Where leads wait for a person to pick them up (triage, nurture, ...)."""

    name: str | None = None
    alert: bool = Field(default=False, description="Raise an alert for each lead that lands here.")


class Target(Strict):
    owner: str | None = None
    team: Slug | None = None
    queue: Slug | None = None

    @model_validator(mode="after")
    def _one(self) -> Target:
        if sum(v is not None for v in (self.owner, self.team, self.queue)) != 1:
            raise ValueError("give exactly one of owner, team, queue")
        return self


class RoutingRule(Strict):
    id: RuleId
    when: Condition | None = Field(default=None, description="No condition: every lead.")
    to: Target
    strategy: Strategy = "round_robin"
    respect_hours: bool = Field(
        default=False, description="Skip members outside their working hours."
    )
    require: list[Literal["country", "language", "product"]] = Field(
        default_factory=list,
        description="Only members who cover the lead's country (owner countries), browser "
        "language (owner languages) or product of interest (owner products).",
    )


class Routing(Strict):
    rules: list[RoutingRule] = Field(default_factory=list)
    fallback_queue: Slug = "triage"
    nurture_queue: Slug = Field(
        default="nurture", description="Where leads of a segment with to_person: false go."
    )
    sticky_within: Duration = Field(
        default=timedelta(days=90),
        description="A returning lead (or one of a known account) goes back to its owner "
        "within this long.",
    )
    account_owner_first: bool = True

    @field_validator("rules")
    @classmethod
    def _unique(cls, value: list[RoutingRule]) -> list[RoutingRule]:
        unique_ids(r.id for r in value)
        return value


def check_routing(
    owners: list[Owner], teams: dict[str, Team], queues: dict[str, Queue], routing: Routing
) -> None:
    """Every name a rule or a team uses must exist (raised as ValueError, for the config)."""
    known = {o.email.lower() for o in owners}
    for key, team in teams.items():
        missing = [m for m in team.members if m.lower() not in known]
        if missing:
            raise ValueError(f"teams.{key}: not an owner: {', '.join(missing)}")
    all_queues = {*queues, routing.fallback_queue, routing.nurture_queue}
    for rule in routing.rules:
        target = rule.to
        if target.owner is not None and target.owner.lower() not in known:
            raise ValueError(f"routing rule {rule.id!r}: {target.owner!r} is not an owner")
        if target.team is not None and target.team not in teams:
            raise ValueError(f"routing rule {rule.id!r}: there is no team {target.team!r}")
        if target.queue is not None and target.queue not in all_queues:
            raise ValueError(f"routing rule {rule.id!r}: there is no queue {target.queue!r}")


@lru_cache(maxsize=256)
def _calendar(country: str, year: int) -> dict[date, str]:
    return {
        day: str(name)
        for day, name in public_holidays.country_holidays(country, years=year).items()
    }


def on_holiday(owner: Owner, day: date) -> str | None:
    """The public holiday's name when ``day`` is one in the owner's country."""
    if owner.holidays is None:
        return None
    return _calendar(owner.holidays, day.year).get(day)


def local(owner: Owner, now: datetime) -> datetime:
    return now.astimezone(owner.zone)


def at_work(owner: Owner, now: datetime) -> bool:
    """Within the owner's working hours, in their time zone (DST included). No hours: always."""
    spans = owner.spans()
    if not spans:
        return True
    moment = local(owner, now)
    clock = moment.time().replace(tzinfo=None)
    return any(moment.weekday() in s.days and s.start <= clock < s.end for s in spans)
