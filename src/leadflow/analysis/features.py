"""The features ``leadflow scoring suggest`` may fit: each one a condition a rule can state.

Each categorical field (lead fields, their enrichment, the file's other columns
as ``answers.<column>``) gives one indicator per frequent value (``equals``),
plus one for "no value" (``exists: false``); rare values stay together as the
group's reference and earn no points. Each numeric column gives one indicator
per range (``between``): quantile edges rounded to two significant digits,
ranges too small merged. Each indicator holds by the engine's own operators.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from leadflow.analysis.history import History
from leadflow.scoring.engine import LeadView, _empty, _number, holds, value_of

MAX_LEVELS = 15  # most values of one field that get their own rule
NUMERIC_SHARE = 0.95  # a column is numeric when this share of its values are numbers
QUANTILES = (0.2, 0.4, 0.6, 0.8)

# Enrichment worth a rule (email_domain duplicates company_domain, flags the kinds).
QUALITY_CANDIDATES = (
    "quality.seniority",
    "quality.function",
    "quality.email_kind",
    "quality.phone_valid",
    "quality.phone_type",
    "quality.country",
    "quality.company_domain",
)

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]|$)")
Kind = Literal["equals", "between", "missing"]


@dataclass(frozen=True, slots=True)
class Level:
    """One indicator of a field: a condition a rule can state, and a readable name."""

    ref: str
    kind: Kind
    operand: Any  # a value, (low, high), or None for missing
    name: str

    def holds(self, value: Any) -> bool:
        """The rule's condition on the field's value, by the engine's own operators."""
        if self.kind == "missing":
            return holds("exists", False, value)
        return holds(self.kind, self.operand, value)


@dataclass(frozen=True, slots=True)
class Group:
    """The levels of one field; rows that hold none are its reference (0 points)."""

    ref: str
    levels: list[Level]


def nice(x: float, *, down: bool = False, up: bool = False) -> float:
    """``x`` to two significant digits (37 -> 37, 1234 -> 1200, 0.0456 -> 0.046)."""
    if x == 0:
        return 0.0
    digits = 1 - math.floor(math.log10(abs(x)))
    factor = 10.0**digits
    scaled = x * factor
    rounded = math.floor(scaled) if down else math.ceil(scaled) if up else round(scaled)
    return round(rounded / factor, max(digits, 0))


def show_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def range_name(start: float, end: float, top: bool) -> str:
    if top:
        return f"{show_number(start)} or more"
    return show_number(start) if start == end else f"{show_number(start)} to {show_number(end)}"


def _numeric_group(ref: str, numbers: list[float], min_count: int) -> Group | None:
    ordered = sorted(numbers)
    low, high = ordered[0], ordered[-1]
    integral = all(v.is_integer() for v in ordered)
    edges: list[float] = []
    for q in QUANTILES:
        raw = ordered[min(int(q * len(ordered)), len(ordered) - 1)]
        edge = float(round(nice(raw))) if integral else nice(raw)
        if low < edge <= high and edge not in edges:
            edges.append(edge)
    if not edges:  # one value dominates (mostly 0): split it from the rest
        above = next(v for v in ordered if v > low)
        edges = [above if integral else min(nice(above, up=True), high)]
    edges.sort()

    def counts(cuts: list[float]) -> list[int]:
        bounds = [-math.inf, *cuts, math.inf]
        return [
            sum(1 for v in ordered if bounds[i] <= v < bounds[i + 1])
            for i in range(len(bounds) - 1)
        ]

    while edges:  # merge the smallest range into its smaller neighbour until all are big enough
        sizes = counts(edges)
        smallest = min(range(len(sizes)), key=sizes.__getitem__)
        if sizes[smallest] >= min_count:
            break
        if smallest == 0:
            edges.pop(0)
        elif smallest == len(sizes) - 1:
            edges.pop()
        else:
            left, right = sizes[smallest - 1], sizes[smallest + 1]
            edges.pop(smallest - 1 if left <= right else smallest)
    if not edges:
        return None
    floor = 0.0 if low >= 0 else nice(low, down=True)
    ceiling = 10.0 ** (math.floor(math.log10(high)) + 2) if high > 0 else 0.0
    bounds = [floor, *edges, ceiling]
    levels = []
    for i in range(len(bounds) - 1):
        start, last = bounds[i], i == len(bounds) - 2
        end = bounds[i + 1] - 1 if integral and not last else bounds[i + 1]
        levels.append(
            Level(ref, "between", (float(start), float(end)), range_name(start, end, last))
        )
    return Group(ref, levels)


def _categorical_group(ref: str, values: list[Any], min_count: int) -> Group | None:
    spellings: defaultdict[str, Counter[Any]] = defaultdict(Counter)
    for value in values:
        key = str(value).strip().casefold()
        spellings[key][value] += 1
    frequent = sorted(
        ((sum(c.values()), key) for key, c in spellings.items() if sum(c.values()) >= min_count),
        reverse=True,
    )[:MAX_LEVELS]
    levels = []
    for _, key in frequent:
        shown = spellings[key].most_common(1)[0][0]
        levels.append(Level(ref, "equals", shown, str(shown)))
    return Group(ref, levels) if levels else None


def candidates(history: History) -> list[str]:
    """Field references a rule could use: enrichment, lead fields, the other columns.

    Enrichment comes first: when a value of a field picks the same leads as one of
    the enrichment (the title "CEO" and seniority c_level), the enrichment's rule
    is kept, as it also reads the titles the file never had.
    """
    fields = list(history.plan.fields)
    refs = [q for q in QUALITY_CANDIDATES if q != "quality.country" or "country" not in fields]
    if history.plan.has_source:
        refs.append("quality.channel")
    refs += fields
    refs += [f"answers.{name}" for name in history.plan.custom()]
    return refs


def build_groups(
    refs: Sequence[str], views: Sequence[LeadView]
) -> tuple[list[Group], dict[str, str]]:
    """The indicator groups of each field on the training views; why the others have none."""
    n = len(views)
    min_count = max(10, math.ceil(0.01 * n))
    groups: list[Group] = []
    skipped: dict[str, str] = {}
    for ref in refs:
        values = [value_of(view, ref) for view in views]
        present = [v for v in values if not _empty(v) and not isinstance(v, list | dict)]
        missing = n - len(present)
        numbers = [x for v in present if (x := _number(v)) is not None]
        if present and sum(1 for v in present if _DATE.match(str(v))) >= NUMERIC_SHARE * len(
            present
        ):
            skipped[ref] = "dates: a past date says nothing about a new lead"
            continue
        group: Group | None
        if present and len(numbers) >= NUMERIC_SHARE * len(present) and len(set(numbers)) >= 5:
            group = _numeric_group(ref, numbers, min_count)
        else:
            group = _categorical_group(ref, present, min_count)
        levels = list(group.levels) if group else []
        if missing >= min_count and present:
            levels.append(Level(ref, "missing", None, "missing"))
        if not levels and not present and ref.startswith("quality."):
            continue  # enrichment the file has no column for: nothing to say
        if not levels:
            distinct = len({str(v).casefold() for v in present})
            skipped[ref] = (
                "always empty"
                if not present
                else f"{distinct} distinct values, none on {min_count}+ leads"
            )
            continue
        groups.append(Group(ref, levels))
    return groups, skipped
