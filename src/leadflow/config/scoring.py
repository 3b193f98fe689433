"""The ``scoring`` section: rules with conditions, category caps, thresholds, segment actions."""

from __future__ import annotations

import hashlib
import re
import weakref
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from leadflow.config.base import Duration, RuleId, Strict, unique_ids
from leadflow.fields import LEAD_FIELDS

Category = Literal["fit", "intent", "behaviour", "data_quality"]
CATEGORIES: tuple[Category, ...] = ("fit", "intent", "behaviour", "data_quality")
Segment = Literal["cold", "warm", "hot"]
Notify = Literal["owner", "team", "none"]

# What the validation step writes under ``quality`` (see leadflow.validation.service).
QUALITY_KEYS = frozenset(
    {
        "email_valid",
        "email_kind",
        "email_domain",
        "email_deliverability",
        "phone_valid",
        "phone_type",
        "phone_region",
        "country",
        "company_domain",
        "seniority",
        "function",
        "device.type",
        "device.os",
        "device.browser",
        "device.bot",
        "channel",
        "locale_region",
        "language",
        "spam_score",
        "flags",
    }
)
# Lead columns a rule may read besides the form fields.
LEAD_EXTRA = frozenset(
    {"form_key", "owner", "queue", "status", "client_tz_offset_minutes", "score", "segment"}
)
# The known account a lead's company matched (routing), see leadflow.models.Account.
ACCOUNT_KEYS = frozenset({"name", "domain", "owner", "country"})


def check_field(value: str) -> str:
    """A field reference: a lead field, ``quality.<key>`` or ``answers.<form input>``."""
    head, _, rest = value.partition(".")
    if head == "answers" and rest:
        return value
    if head == "account":
        if rest in ACCOUNT_KEYS:
            return value
        raise ValueError(f"{value!r}: an account has {', '.join(sorted(ACCOUNT_KEYS))}")
    if head == "quality":
        if rest in QUALITY_KEYS:
            return value
        known = ", ".join(sorted(QUALITY_KEYS))
        raise ValueError(f"{value!r}: quality has no {rest!r} (one of: {known})")
    if value in LEAD_FIELDS or value in LEAD_EXTRA:
        return value
    raise ValueError(
        f"{value!r} is not a lead field, quality.<key> or answers.<form input> "
        f"(lead fields: {', '.join(sorted(LEAD_FIELDS))})"
    )


OPERATORS = ("equals", "in", "contains", "matches", "between", "exists")


_MEMO: dict[int, tuple[weakref.ref[Any], str]] = {}


def _memo(owner: Any, compute: Callable[[], str]) -> str:
    """A value derived once from a frozen config object (read for every lead scored).

    Kept beside the object rather than on it: pydantic's private attributes cost
    microseconds a read, which a rule evaluated per lead cannot afford."""
    hit = _MEMO.get(id(owner))
    if hit is not None and hit[0]() is owner:
        return hit[1]
    value = compute()
    _MEMO[id(owner)] = (weakref.ref(owner), value)
    return value


def _attr(operator: str) -> str:
    return "in_" if operator == "in" else operator


class EventCount(Strict):
    """Behaviour: how many of the lead's tracked events match, within a window."""

    type: Literal["page", "track", "identify"] | None = None
    name: str | None = Field(default=None, description="track: the event name, exactly.")
    path: str | None = Field(default=None, description="page: the URL path contains this.")
    within: Duration = Field(description="Only events this recent count.")
    at_least: int = Field(default=1, ge=1)


class Condition(Strict):
    """``when`` of a rule: a predicate, events, or all/any of conditions."""

    field: Annotated[str, BeforeValidator(check_field)] | None = None
    equals: str | int | float | bool | None = None
    in_: list[str | int | float | bool] | None = Field(default=None, alias="in")
    contains: str | None = None
    matches: str | None = None
    between: tuple[float, float] | None = None
    exists: bool | None = None
    events: EventCount | None = None
    all: list[Condition] | None = None
    any: list[Condition] | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _shape(self) -> Condition:
        kinds = [
            kind
            for kind, present in (
                ("field", self.field is not None),
                ("events", self.events is not None),
                ("all", self.all is not None),
                ("any", self.any is not None),
            )
            if present
        ]
        if len(kinds) != 1:
            raise ValueError(
                "a condition is one of: {field: ..., <operator>: ...}, {events: ...}, "
                "{all: [...]}, {any: [...]}"
            )
        given = [op for op in OPERATORS if getattr(self, _attr(op)) is not None]
        if self.field is None:
            if given:
                raise ValueError(f"{given[0]} needs a field")
        elif len(given) != 1:
            ops = ", ".join(OPERATORS)
            raise ValueError(
                f"{self.field}: give exactly one operator ({ops}); got {', '.join(given) or 'none'}"
            )
        if self.matches is not None:
            try:
                re.compile(self.matches)
            except re.error as exc:
                raise ValueError(
                    f"matches: {self.matches!r} is not a regular expression: {exc}"
                ) from exc
        if self.between is not None and self.between[0] > self.between[1]:
            raise ValueError(f"between: {self.between[0]} is above {self.between[1]}")
        if (self.all is not None and not self.all) or (self.any is not None and not self.any):
            raise ValueError("all/any need at least one condition")
        return self

    @property
    def operator(self) -> str:
        return _memo(
            self, lambda: next(op for op in OPERATORS if getattr(self, _attr(op)) is not None)
        )

    @property
    def operand(self) -> Any:
        return getattr(self, _attr(self.operator))

    def uses_events(self) -> bool:
        if self.events is not None:
            return True
        return any(c.uses_events() for c in (self.all or self.any or []))


class Rule(Strict):
    id: RuleId
    category: Category
    when: Condition
    points: int = Field(ge=-100, le=100)
    reason: str | None = Field(
        default=None,
        max_length=200,
        description="The sentence a person reads; {value} is the value that matched.",
    )

    @model_validator(mode="after")
    def _behaviour(self) -> Rule:
        if self.when.uses_events() and self.category != "behaviour":
            raise ValueError(f"rule {self.id!r} counts events: its category must be behaviour")
        return self


class SegmentAction(Strict):
    followup: str | None = Field(
        default=None, description="The follow-up (SLA) policy of the segment's leads."
    )
    notify: list[Notify] = Field(default_factory=lambda: list[Notify](["owner"]))
    to_person: bool = Field(default=True, description="False: nurture, never assigned.")


def _default_segments() -> dict[Segment, SegmentAction]:
    return {
        "hot": SegmentAction(followup="fast-track", notify=["owner", "team"]),
        "warm": SegmentAction(followup="standard"),
        # Cold leads still reach a person unless the config says otherwise: without
        # rules every lead is cold, and nothing should vanish into a nurture queue.
        "cold": SegmentAction(followup=None, notify=["none"]),
    }


class Thresholds(Strict):
    warm: int = Field(default=40, ge=1, le=100)
    hot: int = Field(default=70, ge=1, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.warm >= self.hot:
            raise ValueError("the warm threshold must be below the hot threshold")
        return self

    def segment(self, score: int) -> Segment:
        if score >= self.hot:
            return "hot"
        return "warm" if score >= self.warm else "cold"


class Scoring(Strict):
    thresholds: Thresholds = Thresholds()
    caps: dict[Category, int] = Field(
        default_factory=dict, description="Most points a category can add (per category)."
    )
    behaviour_half_life: Duration = Field(
        default=timedelta(days=14), description="Behaviour points halve after this long."
    )
    rescore_debounce: Duration = Field(
        default=timedelta(seconds=30),
        description="New behaviour re-scores the lead at most this often.",
    )
    segments: dict[Segment, SegmentAction] = Field(default_factory=_default_segments)
    rules: list[Rule] = Field(default_factory=list)

    def version(self) -> str:
        """A short hash of everything that decides a score: re-scoring follows when it changes."""

        def digest() -> str:
            canonical = self.model_dump_json(
                include={"thresholds", "caps", "behaviour_half_life", "rules"}, by_alias=True
            )
            return hashlib.sha256(canonical.encode()).hexdigest()[:12]

        return _memo(self, digest)

    @field_validator("caps")
    @classmethod
    def _caps(cls, value: dict[Category, int]) -> dict[Category, int]:
        for category, cap in value.items():
            if cap < 0:
                raise ValueError(f"{category}: a cap is a positive number of points")
        return value

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, value: list[Rule]) -> list[Rule]:
        unique_ids(rule.id for rule in value)
        return value

    @model_validator(mode="after")
    def _segments(self) -> Scoring:
        missing = {"cold", "warm", "hot"} - set(self.segments)
        if missing:
            raise ValueError(f"segments: missing {', '.join(sorted(missing))}")
        return self
