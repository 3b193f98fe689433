"""The score of a lead from the rules of the config (pure: no database, no clock of its own).

``score = clamp(sum of the breakdown's points, 0, 100)``: the breakdown lists
every rule that matched with its points (behaviour points decayed by the
half-life since the latest matching event), then one ``cap.<category>`` line
per category whose points went over its cap, with the negative points that
bring it back to the cap. So the breakdown always sums to the score before
clamping, and a person can redo the arithmetic.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from leadflow.config.scoring import CATEGORIES, Condition, EventCount, Rule, Scoring, Segment


@dataclass(frozen=True, slots=True)
class Activity:
    """One tracked event of a person (``POST /v1/events``)."""

    type: str  # page, track, identify
    at: datetime
    name: str | None = None
    path: str | None = None


@dataclass(frozen=True, slots=True)
class LeadView:
    """What the rules can read about a lead."""

    fields: Mapping[str, Any]
    quality: Mapping[str, Any] = field(default_factory=dict)
    answers: Mapping[str, Any] = field(default_factory=dict)
    activity: Sequence[Activity] = ()
    account: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Line:
    rule: str
    category: str
    points: int
    value: Any
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "category": self.category,
            "points": self.points,
            "value": self.value,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class ScoreResult:
    score: int
    segment: Segment
    breakdown: list[Line]
    ruleset_version: str

    @property
    def raw(self) -> int:
        return sum(line.points for line in self.breakdown)

    def top_reasons(self, n: int = 3) -> list[str]:
        ranked = sorted(self.breakdown, key=lambda line: -abs(line.points))
        return [f"{line.reason} ({line.points:+d})" for line in ranked[:n] if line.points]


def ruleset_version(scoring: Scoring) -> str:
    """A short hash of everything that decides a score: re-scoring follows when it changes."""
    return scoring.version()


def value_of(view: LeadView, ref: str) -> Any:
    head, _, rest = ref.partition(".")
    if head == "answers" and rest:
        return view.answers.get(rest)
    if head == "account" and rest:
        return view.account.get(rest)
    if head == "quality" and rest:
        current: Any = view.quality
        for part in rest.split("."):
            current = current.get(part) if isinstance(current, Mapping) else None
        return current
    return view.fields.get(ref)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _same(value: Any, operand: Any) -> bool:
    if isinstance(value, str) or isinstance(operand, str):
        return str(value).strip().casefold() == str(operand).strip().casefold()
    return bool(value == operand)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        number = float(str(value).replace(",", "").strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@lru_cache(maxsize=512)
def _pattern(expression: str) -> re.Pattern[str]:
    return re.compile(expression, re.IGNORECASE)


def holds(operator: str, operand: Any, value: Any) -> bool:
    """One operator on one value. Lists (``quality.flags``) match when an element does."""
    if operator == "exists":
        return bool(operand) != _empty(value)
    if _empty(value):
        return False
    if isinstance(value, list):
        return any(holds(operator, operand, item) for item in value)
    if operator == "equals":
        return _same(value, operand)
    if operator == "in":
        return any(_same(value, item) for item in operand)
    if operator == "contains":
        return str(operand).casefold() in str(value).casefold()
    if operator == "matches":
        return _pattern(operand).search(str(value)) is not None
    if operator == "between":
        number = _number(value)
        return number is not None and operand[0] <= number <= operand[1]
    raise ValueError(f"unknown operator {operator!r}")


@dataclass(frozen=True, slots=True)
class Outcome:
    matched: bool
    value: Any = None
    latest: datetime | None = None  # the most recent event that counted (behaviour)


def _events(spec: EventCount, activity: Sequence[Activity], now: datetime) -> Outcome:
    since = now - spec.within
    hits = [
        a
        for a in activity
        if since <= a.at <= now
        and (spec.type is None or a.type == spec.type)
        and (spec.name is None or a.name == spec.name)
        and (spec.path is None or (a.path is not None and spec.path in a.path))
    ]
    if len(hits) < spec.at_least:
        return Outcome(False, len(hits))
    return Outcome(True, len(hits), max(a.at for a in hits))


def evaluate(condition: Condition, view: LeadView, now: datetime) -> Outcome:
    if condition.field is not None:
        value = value_of(view, condition.field)
        return Outcome(holds(condition.operator, condition.operand, value), value)
    if condition.events is not None:
        return _events(condition.events, view.activity, now)
    if condition.all is not None:
        outcomes = [evaluate(c, view, now) for c in condition.all]
        if not all(o.matched for o in outcomes):
            return Outcome(False)
        values = [o.value for o in outcomes]
        latest = [o.latest for o in outcomes if o.latest is not None]
        return Outcome(True, values[0] if len(values) == 1 else values, max(latest, default=None))
    assert condition.any is not None
    for child in condition.any:
        outcome = evaluate(child, view, now)
        if outcome.matched:
            return outcome
    return Outcome(False)


def decay(points: int, latest: datetime | None, now: datetime, half_life: timedelta) -> int:
    """Behaviour points halve every ``half_life`` since the latest event that earned them."""
    if latest is None or half_life.total_seconds() <= 0:
        return points
    age = max((now - latest).total_seconds(), 0.0)
    factor: float = 0.5 ** (age / half_life.total_seconds())
    return round(points * factor)


def _sentence(rule: Rule, value: Any) -> str:
    shown = ", ".join(map(str, value)) if isinstance(value, list) else value
    if rule.reason:
        return rule.reason.replace("{value}", str(shown))
    when = rule.when
    if when.events is not None:
        return f"{value} matching {when.events.type or 'event'}s in {when.events.within}"
    if when.field is not None:
        return f"{when.field} {when.operator} {when.operand}: {shown}"
    return f"{rule.id}: {shown}"


def score(scoring: Scoring, view: LeadView, now: datetime) -> ScoreResult:
    lines: list[Line] = []
    for rule in scoring.rules:
        outcome = evaluate(rule.when, view, now)
        if not outcome.matched:
            continue
        points = rule.points
        if rule.category == "behaviour":
            points = decay(points, outcome.latest, now, scoring.behaviour_half_life)
        lines.append(
            Line(rule.id, rule.category, points, outcome.value, _sentence(rule, outcome.value))
        )
    for category in CATEGORIES:
        cap = scoring.caps.get(category)
        total = sum(line.points for line in lines if line.category == category)
        if cap is not None and total > cap:
            reason = f"{category} points capped at {cap}"
            lines.append(Line(f"cap.{category}", category, cap - total, total, reason))
    raw = sum(line.points for line in lines)
    clamped = min(max(raw, 0), 100)
    return ScoreResult(
        clamped, scoring.thresholds.segment(clamped), lines, ruleset_version(scoring)
    )
