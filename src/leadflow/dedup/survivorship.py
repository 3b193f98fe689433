"""Merging a duplicate into the lead that survives, field by field (pure).

Rules, per field (``dedup.survivorship`` in the config):

- ``most_recent``: the newer non-empty value wins (the default for identity and
  context: people update their title, phone and message);
- ``first``: the first non-empty value stays (attribution of the first touch);
- ``longest``: the longer value wins (a fuller company name, a longer message).

Whatever the rule, an empty value never overwrites a non-empty one, so a merge
never loses information.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Rule = Literal["most_recent", "first", "longest"]

MERGED_FIELDS: tuple[str, ...] = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "company",
    "title",
    "country",
    "website",
    "product_interest",
    "budget_range",
    "deadline",
    "message",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "landing_url",
    "referrer",
    "gclid",
    "fbclid",
)

DEFAULT_RULES: dict[str, Rule] = {"message": "longest"}


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def choose(rule: Rule, kept: Any, incoming: Any) -> Any:
    """The value a field keeps: ``kept`` is the survivor's, ``incoming`` the duplicate's."""
    if _empty(incoming):
        return kept
    if _empty(kept):
        return incoming
    if rule == "first":
        return kept
    if rule == "longest":
        return incoming if len(str(incoming)) > len(str(kept)) else kept
    return incoming


def merge_fields(
    survivor: Mapping[str, Any],
    duplicate: Mapping[str, Any],
    rules: Mapping[str, Rule] | None = None,
    default: Rule = "most_recent",
) -> dict[str, Any]:
    """The survivor's new field values; only fields that change are returned."""
    table = {**DEFAULT_RULES, **(rules or {})}
    changes = {}
    for name in MERGED_FIELDS:
        value = choose(table.get(name, default), survivor.get(name), duplicate.get(name))
        if value != survivor.get(name):
            changes[name] = value
    return changes
