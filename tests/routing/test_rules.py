"""decide() with plain values: one owner or one queue, always a reason, a world that moves."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.config import Config, load_config_text
from leadflow.routing.rules import considered, decide
from leadflow.routing.views import AccountView, Load, RoutingDecision, RoutingLead, Turn, World
from leadflow.scoring.engine import LeadView

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday
OWNERS = ("a@x.com", "b@x.com", "c@x.com", "d@x.com")


def team_config(strategy: str = "round_robin", limits: str = "") -> Config:
    owners = "\n".join(f"  - {{email: {o}{limits}}}" for o in OWNERS[:3])
    return load_config_text(
        f"owners:\n{owners}\n  - {{email: d@x.com}}\n"
        "scoring: {segments: {cold: {to_person: false}, warm: {}, hot: {}}}\n"
        "teams: {sales: {members: [a@x.com, b@x.com, c@x.com]}}\n"
        "queues: {partners: {alert: true}}\n"
        "routing:\n  rules:\n"
        "    - {id: partners, when: {field: answers.partner, equals: 'yes'},\n"
        "       to: {queue: partners}}\n"
        f"    - {{id: sales, to: {{team: sales}}, strategy: {strategy}}}\n",
        "leadflow.yaml",
    )


def test_a_decision_has_an_owner_or_a_queue_and_says_why() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        RoutingDecision(owner="a@x.com", queue="triage", rule="r", sentence="both")
    with pytest.raises(ValueError, match="exactly one"):
        RoutingDecision(rule="r", sentence="neither")
    with pytest.raises(ValueError, match="says why"):
        RoutingDecision(queue="triage", rule="r", sentence="")


def test_the_world_after_a_decision_has_the_turn_and_the_count_moved() -> None:
    cfg = team_config()
    world = World(now=NOW, loads={"b@x.com": Load(today=2, open=7)})

    first = decide(RoutingLead(view=LeadView({})), world, cfg)
    after = world.after(first)
    second = decide(RoutingLead(view=LeadView({})), after, cfg)

    assert (first.owner, first.turn) == ("a@x.com", Turn("team:sales", 0))
    assert after.load("a@x.com") == Load(today=1, open=1)
    assert after.load("B@x.com") == Load(today=2, open=7)
    assert world.load("a@x.com") == Load()  # the world before is as it was
    assert (second.owner, second.turn) == ("b@x.com", Turn("team:sales", 1))
    assert decide(RoutingLead(view=LeadView({})), world, cfg) == first  # the same inputs, again


def test_a_queue_needs_no_counts_and_a_returning_lead_needs_its_owner() -> None:
    cfg = team_config()
    partner = RoutingLead(view=LeadView({}, answers={"partner": "yes"}))
    cold = RoutingLead(view=LeadView({"segment": "cold"}), previous_owner="a@x.com")
    returning = RoutingLead.of(
        LeadView({}, answers={"partner": "yes"}),
        previous_owner="d@x.com",
        account=AccountView(name="Acme", owner="c@x.com"),
    )

    assert considered(partner, cfg, NOW).owners == ()
    assert considered(cold, cfg, NOW).owners == ()
    needs = considered(returning, cfg, NOW)
    assert [o.email for o in needs.owners] == ["d@x.com", "c@x.com"]
    assert needs.pool is None
    assert decide(returning, World(now=NOW), cfg).sentence == (
        "Back to d@x.com, who had this person before (returning lead)."
    )


def test_an_owner_taken_away_from_is_not_given_the_lead_again() -> None:
    cfg = team_config("direct")
    lead = RoutingLead.of(LeadView({}), previous_owner="a@x.com", exclude=frozenset({"a@x.com"}))

    decision = decide(lead, World(now=NOW), cfg)

    assert (decision.owner, decision.rule, decision.steps) == ("b@x.com", "sales", ())
    assert decision.candidates[0].skipped == "being reassigned away from them"


leads = st.builds(
    lambda segment, partner, previous, account_owner, excluded: RoutingLead.of(
        LeadView({"segment": segment}, answers={"partner": partner}),
        previous_owner=previous,
        previous_reason="returning lead" if previous else None,
        account=AccountView(name="Acme", owner=account_owner) if account_owner else None,
        exclude=frozenset(excluded),
    ),
    st.sampled_from([None, "hot", "warm", "cold"]),
    st.sampled_from(["yes", "no"]),
    st.sampled_from([None, *OWNERS, "gone@x.com"]),
    st.sampled_from([None, *OWNERS, "elsewhere@x.com"]),
    st.sets(st.sampled_from(OWNERS), max_size=4),
)
loads = st.dictionaries(
    st.sampled_from(OWNERS),
    st.builds(Load, st.integers(0, 4), st.integers(0, 4)),
)
CONFIGS = {
    (strategy, limits): team_config(strategy, limits)
    for strategy in ("round_robin", "weighted", "least_loaded", "direct")
    for limits in ("", ", max_per_day: 2", ", max_open: 3, active: true")
}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(leads, min_size=1, max_size=12),
    loads,
    st.sampled_from(sorted(CONFIGS)),
    st.integers(-1, 2),
)
def test_every_decision_has_exactly_one_of_owner_or_queue_and_a_reason(
    batch: list[RoutingLead], counted: dict[str, Load], which: tuple[str, str], turn: int
) -> None:
    cfg = CONFIGS[which]
    world = World(now=NOW, loads=counted, turns={"team:sales": turn})
    for lead in batch:
        decision = decide(lead, world, cfg)
        assert (decision.owner is None) != (decision.queue is None)
        assert decision.sentence
        assert decision.rule
        stored = decision.reason()
        assert (stored["owner"], stored["queue"]) == (decision.owner, decision.queue)
        if decision.owner is not None:
            assert decision.owner.lower() not in lead.exclude
            assert all(c.skipped is None for c in decision.candidates if c.owner == decision.owner)
        else:
            # Whoever was considered and not chosen is listed with why not.
            assert all(c.skipped for c in decision.candidates)
        moved = world.after(decision)
        assert dataclasses.replace(moved, loads=world.loads, turns=world.turns) == world
        world = moved
