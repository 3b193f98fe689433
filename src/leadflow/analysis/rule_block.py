"""Suggested points as config: the rules, their thresholds, and the ``scoring:`` YAML block.

Levels of a field with the same points become one ``in`` rule, neighbouring
ranges with the same points one range; the block is written so that it loads
back through the config schema exactly as it was meant (:func:`load_block`).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from leadflow.analysis.features import Group, Level, range_name, show_number
from leadflow.config import ConfigError, load_config_text
from leadflow.config.scoring import Category, Scoring

HOT_SHARE, WARM_SHARE = 0.2, 0.5  # of training leads at or above hot / warm

# A rule's category follows the field it reads; the other fields are fit.
DATA_QUALITY = frozenset({"quality.email_kind", "quality.phone_valid", "quality.phone_type"})

INTENT = frozenset(
    {
        "product_interest",
        "budget_range",
        "deadline",
        "message",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
        "quality.channel",
    }
)

_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")
_RESERVED = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n"})


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return show_number(float(value))
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text, ensure_ascii=False)


def _slug(text: str, limit: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")
    return slug[:limit].strip("-") or "x"


def _field_name(ref: str) -> str:
    return ref.removeprefix("quality.").removeprefix("answers.")


def _category(ref: str) -> Category:
    if ref in DATA_QUALITY:
        return "data_quality"
    return "intent" if ref in INTENT else "fit"


def _joined_ranges(group: Group, points: dict[int, int]) -> list[tuple[Level, int]]:
    """Neighbouring ranges with the same points become one range: one rule, not three."""
    ranges = [k for k, level in enumerate(group.levels) if level.kind == "between"]
    top = ranges[-1] if ranges else -1
    joined: list[tuple[Level, int]] = []
    run: list[int] = []
    for k in [*ranges, -1]:
        if run and (k == -1 or k != run[-1] + 1 or points.get(k) != points[run[0]]):
            low, high = group.levels[run[0]].operand[0], group.levels[run[-1]].operand[1]
            name = range_name(low, high, run[-1] == top)
            joined.append((Level(group.ref, "between", (low, high), name), points[run[0]]))
            run = []
        if k in points:
            run.append(k)
    return joined


def rules_of(groups: Sequence[Group], points: dict[tuple[int, int], int]) -> list[dict[str, Any]]:
    """Rules as plain data, strongest fields first; same-point values of a field share a rule."""
    by_group: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)
    for (g, k), p in points.items():
        by_group[g].append((k, p))
    order = sorted(by_group, key=lambda g: -max(abs(p) for _, p in by_group[g]))
    rules: list[dict[str, Any]] = []
    ids: set[str] = set()
    for g in order:
        group = groups[g]
        name = _field_name(group.ref)
        merged: defaultdict[int, list[Level]] = defaultdict(list)
        singles: list[tuple[Level, int]] = []
        for k, p in by_group[g]:
            level = group.levels[k]
            if level.kind == "equals":
                merged[p].append(level)
            elif level.kind == "missing":
                singles.append((level, p))
        singles += _joined_ranges(group, dict(by_group[g]))
        items: list[tuple[list[Level], int]] = [(lv, p) for p, lv in merged.items()]
        items += [([lv], p) for lv, p in singles]

        def place(item: tuple[list[Level], int]) -> tuple[int, float, int]:
            level = item[0][0]
            if level.kind == "missing":
                return (2, 0.0, -item[1])
            if level.kind == "between":
                return (0, level.operand[0], 0)
            return (1, 0.0, -item[1])

        for levels, p in sorted(items, key=place):
            when: dict[str, Any] = {"field": group.ref}
            first = levels[0]
            if first.kind == "missing":
                when["exists"] = False
                reason = f"No {name}"
            elif first.kind == "between":
                when["between"] = list(first.operand)
                reason = f"{name} {first.name}: {{value}}"
            elif len(levels) == 1:
                when["equals"] = first.operand
                reason = f"{name} is {{value}}"
            else:
                when["in"] = [lv.operand for lv in levels]
                reason = f"{name} is {{value}}"
            value_part = "-".join(lv.name for lv in levels)
            base = f"suggested-{_slug(name, 24)}-{_slug(value_part, 28)}"
            rule_id, n = base, 2
            while rule_id in ids:
                rule_id, n = f"{base}-{n}", n + 1
            ids.add(rule_id)
            rules.append(
                {
                    "id": rule_id,
                    "category": _category(group.ref),
                    "points": p,
                    "when": when,
                    "reason": reason[:200],
                }
            )
    return rules


def _flow(mapping: dict[str, Any]) -> str:
    parts = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            shown = _flow(value)
        elif isinstance(value, list):
            shown = "[" + ", ".join(_scalar(v) for v in value) + "]"
        else:
            shown = _scalar(value)
        parts.append(f"{key}: {shown}")
    return "{" + ", ".join(parts) + "}"


def to_yaml(thresholds: dict[str, int], rules: Sequence[dict[str, Any]], header: str) -> str:
    lines = [*(f"# {line}".rstrip() for line in header.splitlines()), "scoring:"]
    lines.append(f"  thresholds: {_flow(thresholds)}")
    if not rules:
        lines.append("  rules: []")
    else:
        lines.append("  rules:")
        lines.extend(f"    - {_flow(rule)}" for rule in rules)
    return "\n".join(lines) + "\n"


def load_block(text: str) -> Scoring:
    """The printed block read back through the config schema; a failure here is our bug."""
    try:
        return load_config_text(text, "<suggestion>").scoring
    except ConfigError as exc:  # pragma: no cover - guarded by tests
        raise RuntimeError(f"the suggested block does not load:\n{exc}\n{text}") from exc


def thresholds_of(scores: Sequence[int]) -> dict[str, int]:
    """hot: the top ~20 % of training scores; warm: the top ~50 %."""
    ordered = sorted(scores)

    def at(share: float) -> int:
        return ordered[min(int((1 - share) * len(ordered)), len(ordered) - 1)]

    warm = max(1, at(WARM_SHARE))
    hot = max(warm + 1, at(HOT_SHARE))
    if hot > 100:
        warm, hot = 99, 100
    return {"warm": warm, "hot": hot}
