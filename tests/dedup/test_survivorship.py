"""Merging field values (pure): rules, and properties that hold for any values."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from leadflow.dedup.survivorship import MERGED_FIELDS, choose, merge_fields


def test_rules() -> None:
    assert choose("most_recent", "Manager", "Director") == "Director"
    assert choose("first", "google", "newsletter") == "google"
    assert choose("longest", "Acme", "Acme Logistics GmbH") == "Acme Logistics GmbH"
    assert choose("longest", "Acme Logistics GmbH", "Acme") == "Acme Logistics GmbH"


def test_blank_never_overwrites() -> None:
    for rule in ("most_recent", "first", "longest"):
        assert choose(rule, "+4930901820", None) == "+4930901820"  # type: ignore[arg-type]
        assert choose(rule, "+4930901820", "  ") == "+4930901820"  # type: ignore[arg-type]
        assert choose(rule, None, "x") == "x"  # type: ignore[arg-type]


def test_merge_returns_only_changes_and_follows_the_config() -> None:
    survivor = {"first_name": "Ana", "title": "Manager", "utm_source": "google", "phone": "+49301"}
    duplicate = {
        "first_name": "Ana",
        "title": "Director",
        "utm_source": "newsletter",
        "phone": None,
    }

    changes = merge_fields(survivor, duplicate, {"utm_source": "first"})

    assert changes == {"title": "Director"}


values = st.one_of(st.none(), st.just(""), st.text(max_size=12))
leads = st.fixed_dictionaries({name: values for name in MERGED_FIELDS})


@given(leads, leads)
def test_merging_loses_no_non_empty_value(
    survivor: dict[str, Any], duplicate: dict[str, Any]
) -> None:
    merged = survivor | merge_fields(survivor, duplicate)
    for name in MERGED_FIELDS:
        if (survivor[name] or "").strip() or (duplicate[name] or "").strip():
            assert (merged[name] or "").strip(), name


@given(leads, leads)
def test_merging_twice_changes_nothing_more(
    survivor: dict[str, Any], duplicate: dict[str, Any]
) -> None:
    once = survivor | merge_fields(survivor, duplicate)
    assert merge_fields(once, duplicate) == {}
