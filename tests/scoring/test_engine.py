"""The scoring rules without a database: operators, caps, clamping, decay, segments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.config import ConfigError, load_config_text
from leadflow.config.scoring import Scoring
from leadflow.scoring.engine import Activity, LeadView, holds, ruleset_version, score

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def rules(*items: dict[str, Any], **extra: Any) -> Scoring:
    return Scoring.model_validate({"rules": list(items), **extra})


@pytest.mark.parametrize(
    ("operator", "operand", "value", "expected"),
    [
        ("equals", "business", "Business", True),
        ("equals", "business", "free", False),
        ("equals", True, True, True),
        ("equals", True, False, False),
        ("in", ["vp", "c_level"], "VP", True),
        ("in", ["vp", "c_level"], "manager", False),
        ("contains", "enterprise", "Enterprise plan", True),
        ("contains", "free_email", ["free_email", "no_phone"], True),  # lists: any element
        ("contains", "x", None, False),
        ("matches", r"\bdemo\b", "Can we get a DEMO?", True),
        ("matches", r"\bdemo\b", "demonstration", False),
        ("between", (50, 500), "120", True),
        ("between", (50, 500), "1,200", False),
        ("between", (50, 500), "a lot", False),
        ("between", (50, 500), 50, True),
        ("exists", True, "x", True),
        ("exists", True, "", False),
        ("exists", False, None, True),
        ("exists", False, "x", False),
    ],
)
def test_operators(operator: str, operand: Any, value: Any, expected: bool) -> None:
    assert holds(operator, operand, value) is expected


def test_breakdown_explains_and_sums_to_the_score() -> None:
    scoring = rules(
        {
            "id": "vp",
            "category": "fit",
            "points": 30,
            "when": {"field": "quality.seniority", "in": ["vp", "c_level"]},
            "reason": "Decision maker ({value})",
        },
        {
            "id": "budget",
            "category": "intent",
            "points": 25,
            "when": {"field": "answers.budget", "between": [10000, 1000000]},
        },
        {
            "id": "free",
            "category": "data_quality",
            "points": -10,
            "when": {"field": "quality.email_kind", "equals": "free"},
        },
        {
            "id": "no-match",
            "category": "fit",
            "points": 40,
            "when": {"field": "country", "equals": "NZ"},
        },
    )
    view = LeadView(
        {"country": "DE"}, {"seniority": "vp", "email_kind": "free"}, {"budget": "20000"}
    )

    result = score(scoring, view, NOW)

    assert [(line.rule, line.points, line.value) for line in result.breakdown] == [
        ("vp", 30, "vp"),
        ("budget", 25, "20000"),
        ("free", -10, "free"),
    ]
    assert result.score == result.raw == 45
    assert result.segment == "warm"
    assert result.breakdown[0].reason == "Decision maker (vp)"
    assert result.breakdown[1].reason == "answers.budget between (10000.0, 1000000.0): 20000"
    assert result.top_reasons(2) == [
        "Decision maker (vp) (+30)",
        result.breakdown[1].reason + " (+25)",
    ]


def test_caps_appear_as_a_line_and_the_score_is_clamped() -> None:
    scoring = rules(
        *[
            {
                "id": f"b{n}",
                "category": "behaviour",
                "points": 20,
                "when": {"field": "title", "exists": True},
            }
            for n in range(3)
        ],
        *[
            {
                "id": f"f{n}",
                "category": "fit",
                "points": 40,
                "when": {"field": "title", "exists": True},
            }
            for n in range(3)
        ],
        caps={"behaviour": 30},
    )
    result = score(scoring, LeadView({"title": "CTO"}), NOW)

    cap = result.breakdown[-1]
    assert (cap.rule, cap.points, cap.value) == ("cap.behaviour", -30, 60)
    assert result.raw == 60 + 120 - 30
    assert result.score == 100
    assert result.segment == "hot"

    negative = rules(
        {
            "id": "spam",
            "category": "data_quality",
            "points": -50,
            "when": {"field": "title", "exists": True},
        }
    )
    low = score(negative, LeadView({"title": "x"}), NOW)
    assert (low.raw, low.score, low.segment) == (-50, 0, "cold")


def test_behaviour_counts_events_in_a_window_and_decays() -> None:
    scoring = rules(
        {
            "id": "pricing",
            "category": "behaviour",
            "points": 20,
            "when": {"events": {"type": "page", "path": "/pricing", "within": "7d", "at_least": 2}},
        },
        behaviour_half_life="7d",
    )
    visit = lambda days, path="/pricing": Activity("page", NOW - timedelta(days=days), path=path)  # noqa: E731

    once = score(scoring, LeadView({}, activity=[visit(0)]), NOW)
    fresh = score(scoring, LeadView({}, activity=[visit(0), visit(0), visit(1, "/blog")]), NOW)
    week_old = score(scoring, LeadView({}, activity=[visit(7), visit(6.99)]), NOW)
    too_old = score(scoring, LeadView({}, activity=[visit(8), visit(9)]), NOW)

    assert once.breakdown == []
    assert [(line.points, line.value) for line in fresh.breakdown] == [(20, 2)]
    assert week_old.breakdown[0].points == 10  # one half-life after the latest visit
    assert too_old.breakdown == []


def test_all_and_any() -> None:
    scoring = rules(
        {
            "id": "senior-buyer",
            "category": "fit",
            "points": 20,
            "when": {
                "all": [
                    {"field": "quality.seniority", "in": ["vp", "director"]},
                    {
                        "any": [
                            {"field": "title", "contains": "sales"},
                            {"field": "title", "contains": "revenue"},
                        ]
                    },
                ]
            },
        },
    )
    assert score(scoring, LeadView({"title": "VP Revenue"}, {"seniority": "vp"}), NOW).score == 20
    assert score(scoring, LeadView({"title": "VP Finance"}, {"seniority": "vp"}), NOW).score == 0


def test_thresholds_pick_the_segment() -> None:
    scoring = rules(thresholds={"warm": 30, "hot": 60})
    assert [scoring.thresholds.segment(s) for s in (0, 29, 30, 59, 60, 100)] == [
        "cold",
        "cold",
        "warm",
        "warm",
        "hot",
        "hot",
    ]


def test_the_ruleset_version_follows_the_rules_only() -> None:
    base = {"id": "a", "category": "fit", "points": 5, "when": {"field": "title", "exists": True}}
    one = rules(base)
    assert ruleset_version(one) == ruleset_version(rules(base, segments=one.segments))
    assert ruleset_version(one) != ruleset_version(rules({**base, "points": 6}))
    assert ruleset_version(one) != ruleset_version(rules(base, thresholds={"warm": 41, "hot": 70}))


def test_config_mistakes_name_line_and_problem() -> None:
    text = """\
scoring:
  thresholds: {warm: 70, hot: 40}
  rules:
    - {id: a, category: fit, points: 5, when: {field: favourite_colour, equals: blue}}
    - {id: b, category: fit, points: 5, when: {field: title, equals: x, contains: y}}
    - {id: c, category: fitness, points: 5, when: {field: title, exists: true}}
    - {id: d, category: fit, points: 5, when: {field: title, matches: "("}}
    - {id: e, category: fit, points: 5, when: {events: {type: page, within: 7d}}}
    - {id: f, category: intent, points: 5, when: {field: quality.mood, exists: true}}
"""
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "leadflow.yaml")
    issues = [str(issue) for issue in caught.value.issues]
    assert any(
        i.startswith("leadflow.yaml:2: scoring.thresholds: the warm threshold") for i in issues
    )
    assert any(
        i.startswith(
            "leadflow.yaml:4: scoring.rules[0].when.field: 'favourite_colour' is not a lead field"
        )
        for i in issues
    ), issues
    assert any(
        i.startswith("leadflow.yaml:5: scoring.rules[1].when: title: give exactly one operator")
        for i in issues
    ), issues
    assert any(i.startswith("leadflow.yaml:6: scoring.rules[2].category:") for i in issues), issues
    assert any(
        i.startswith(
            "leadflow.yaml:7: scoring.rules[3].when: matches: '(' is not a regular expression"
        )
        for i in issues
    ), issues
    assert any("rule 'e' counts events: its category must be behaviour" in i for i in issues), (
        issues
    )
    assert any(
        i.startswith(
            "leadflow.yaml:9: scoring.rules[5].when.field: 'quality.mood': quality has no 'mood'"
        )
        for i in issues
    ), issues


points = st.integers(min_value=-100, max_value=100)


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["fit", "intent", "behaviour", "data_quality"]), points, st.booleans()
        ),
        max_size=12,
    ),
    st.dictionaries(
        st.sampled_from(["fit", "intent", "behaviour", "data_quality"]), st.integers(0, 100)
    ),
)
def test_a_score_is_always_0_to_100_and_the_breakdown_sums_to_it_before_clamping(
    spec: list[tuple[str, int, bool]], caps: dict[str, int]
) -> None:
    scoring = rules(
        *[
            {
                "id": f"r{n}",
                "category": category,
                "points": p,
                "when": {"field": "title", "exists": hit},
            }
            for n, (category, p, hit) in enumerate(spec)
        ],
        caps=caps,
    )
    result = score(scoring, LeadView({"title": "CTO"}), NOW)
    assert 0 <= result.score <= 100
    assert result.score == min(max(sum(line.points for line in result.breakdown), 0), 100)
    for category, cap in caps.items():
        assert sum(line.points for line in result.breakdown if line.category == category) <= cap
