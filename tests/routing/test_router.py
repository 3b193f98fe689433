"""Routing without a database: strategies, availability, hours across time zones, reasons."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.config import Config, ConfigError, load_config_text
from leadflow.config.routing import at_work, parse_hours
from leadflow.routing.rules import decide
from leadflow.routing.views import AccountView, Load, RoutingDecision, RoutingLead, World
from leadflow.scoring.engine import LeadView

MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def config(text: str) -> Config:
    return load_config_text(text, "leadflow.yaml")


TEAM = """
owners:
  - {email: a@x.com, timezone: Europe/Berlin}
  - {email: b@x.com, timezone: Europe/Berlin}
  - {email: c@x.com, timezone: Europe/Berlin}
teams:
  sales: {members: [a@x.com, b@x.com, c@x.com]}
routing:
  rules:
    - {id: all, to: {team: sales}, strategy: STRATEGY}
"""


def route(
    cfg: Config,
    view: LeadView,
    now: datetime = MONDAY_NOON,
    world: World | None = None,
    **lead: Any,
) -> RoutingDecision:
    return decide(RoutingLead.of(view, **lead), world or World(now=now), cfg)


async def run(
    cfg: Config, leads: int, world: World | None = None, **fields: Any
) -> list[str | None]:
    world = world or World(now=MONDAY_NOON)
    owners = []
    for _ in range(leads):
        decision = decide(RoutingLead(view=LeadView(fields)), world, cfg)
        world = world.after(decision)
        owners.append(decision.owner)
    return owners


async def test_round_robin_takes_turns_in_order() -> None:
    owners = await run(config(TEAM.replace("STRATEGY", "round_robin")), 7)
    assert owners == ["a@x.com", "b@x.com", "c@x.com", "a@x.com", "b@x.com", "c@x.com", "a@x.com"]


async def test_weighted_gives_each_their_share() -> None:
    text = TEAM.replace("STRATEGY", "weighted").replace(
        "{email: a@x.com, timezone: Europe/Berlin}",
        "{email: a@x.com, timezone: Europe/Berlin, weight: 2}",
    )
    owners = Counter(await run(config(text), 40))
    assert owners == {"a@x.com": 20, "b@x.com": 10, "c@x.com": 10}


async def test_least_loaded_goes_to_the_fewest_open_leads() -> None:
    loads = {"a@x.com": Load(open=5), "b@x.com": Load(open=1), "c@x.com": Load(open=3)}
    world = World(now=MONDAY_NOON, loads=loads)
    owners = await run(config(TEAM.replace("STRATEGY", "least_loaded")), 4, world)
    assert owners == ["b@x.com", "b@x.com", "c@x.com", "b@x.com"]


async def test_unavailable_members_are_skipped_and_the_reason_says_why() -> None:
    text = """
owners:
  - {email: a@x.com, active: false}
  - {email: b@x.com, out_of_office: [{from: 2026-11-20, to: 2026-11-30, note: parental leave}]}
  - {email: c@x.com, max_per_day: 1}
  - {email: d@x.com, holidays: DE}
  - {email: e@x.com, timezone: America/New_York, hours: "Mon-Fri 09:00-17:00"}
  - {email: f@x.com}
teams:
  all: {members: [a@x.com, b@x.com, c@x.com, d@x.com, e@x.com, f@x.com]}
routing:
  rules:
    - {id: everyone, to: {team: all}, respect_hours: true}
"""
    christmas = datetime(2026, 12, 25, 12, 0, tzinfo=UTC)
    world = World(now=christmas, loads={"c@x.com": Load(today=1)})
    cfg = config(text.replace("2026-11-20, to: 2026-11-30", "2026-12-20, to: 2026-12-30"))

    decision = route(cfg, LeadView({}), world=world)

    assert decision.owner == "f@x.com"
    skipped = {c.owner: c.skipped for c in decision.candidates}
    assert skipped == {
        "a@x.com": "inactive",
        "b@x.com": "out of office until 2026-12-30 (parental leave)",
        "c@x.com": "at capacity: 1 of 1 new leads today",
        "d@x.com": "public holiday in DE: Christmas Day",
        "e@x.com": "outside working hours (Mon-Fri 09:00-17:00, America/New_York; "
        "there it is Fri 07:00)",
        "f@x.com": None,
    }
    assert (
        decision.sentence
        == "To f@x.com by rule 'everyone' (team 'all', round robin; skipped 5 unavailable)."
    )


async def test_a_pool_with_nobody_available_goes_to_triage_with_an_alert() -> None:
    cfg = config(
        "owners: [{email: a@x.com, active: false}]\n"
        "routing: {rules: [{id: r, to: {owner: a@x.com}}]}"
    )
    decision = route(cfg, LeadView({}))
    assert (decision.owner, decision.queue, decision.rule) == (None, "triage", "r")
    assert decision.alert == "no one available in owner:a@x.com"


async def test_rules_match_in_order_and_unmatched_leads_fall_back() -> None:
    cfg = config(
        """
owners: [{email: de@x.com}, {email: us@x.com}]
queues: {partners: {alert: true}}
routing:
  rules:
    - {id: partners, when: {field: answers.partner, equals: "yes"}, to: {queue: partners}}
    - {id: dach, when: {field: country, in: [DE, AT, CH]}, to: {owner: de@x.com}}
    - id: hot-us
      when: {all: [{field: country, equals: US}, {field: segment, equals: hot}]}
      to: {owner: us@x.com}
"""
    )
    partner = route(cfg, LeadView({"country": "DE"}, answers={"partner": "yes"}))
    german = route(cfg, LeadView({"country": "AT"}))
    hot = route(cfg, LeadView({"country": "US", "segment": "hot"}))
    warm = route(cfg, LeadView({"country": "US", "segment": "warm"}))

    assert (partner.queue, partner.alert) == ("partners", "lead in queue partners")
    assert (german.owner, german.rule) == ("de@x.com", "dach")
    assert (hot.owner, hot.rule) == ("us@x.com", "hot-us")
    assert (warm.owner, warm.queue, warm.rule, warm.alert) == (
        None,
        "triage",
        "fallback",
        "no routing rule matched",
    )


async def test_sticky_owner_then_account_owner_then_rules() -> None:
    cfg = config(
        """
owners:
  - {email: rep@x.com}
  - {email: away@x.com, active: false}
  - {email: am@x.com}
  - {email: pool@x.com}
routing: {rules: [{id: rest, to: {owner: pool@x.com}}]}
"""
    )
    account = AccountView(name="Acme", owner="am@x.com")
    returning = {"previous_reason": "returning lead", "account": account}

    sticky = route(cfg, LeadView({}), previous_owner="rep@x.com", **returning)
    away = route(cfg, LeadView({}), previous_owner="away@x.com", **returning)
    gone = route(
        cfg, LeadView({}), previous_owner="left@x.com", previous_reason="same company (acme.com)"
    )

    assert (sticky.owner, sticky.rule) == ("rep@x.com", "sticky")
    assert sticky.sentence == "Back to rep@x.com, who had this person before (returning lead)."
    assert (away.owner, away.rule) == ("am@x.com", "account")
    assert list(away.steps) == ["previous owner away@x.com skipped: inactive"]
    assert (gone.owner, gone.rule) == ("pool@x.com", "rest")
    assert list(gone.steps) == ["previous owner left@x.com is no longer an owner"]


async def test_segments_that_are_not_for_a_person_go_to_nurture() -> None:
    cfg = config(
        "scoring: {segments: {cold: {to_person: false}, warm: {}, hot: {}}}\n"
        "owners: [{email: a@x.com}]"
    )
    decision = route(cfg, LeadView({"segment": "cold"}))
    assert (decision.owner, decision.queue, decision.rule) == (None, "nurture", "segment")


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 3, 27, 7, 59, tzinfo=UTC), False),  # Fri 08:59 CET
        (datetime(2026, 3, 27, 8, 0, tzinfo=UTC), True),  # Fri 09:00 CET
        (datetime(2026, 3, 30, 7, 0, tzinfo=UTC), True),  # Mon 09:00 CEST: after the switch
        (datetime(2026, 3, 30, 6, 59, tzinfo=UTC), False),  # Mon 08:59 CEST
        (datetime(2026, 10, 26, 16, 59, tzinfo=UTC), True),  # Mon 17:59 CET, back in winter
        (datetime(2026, 10, 26, 17, 0, tzinfo=UTC), False),
        (datetime(2026, 3, 28, 10, 0, tzinfo=UTC), False),  # Saturday
    ],
)
def test_working_hours_follow_the_owner_clock_through_dst(moment: datetime, expected: bool) -> None:
    cfg = config(
        'owners: [{email: a@x.com, timezone: Europe/Berlin, hours: "Mon-Fri 09:00-18:00"}]'
    )
    assert at_work(cfg.owners[0], moment) is expected


def test_hours_with_several_spans_and_week_wrap() -> None:
    spans = parse_hours("Mon-Thu 09:00-17:00, Fri 09:00-13:00, Sun-Mon 22:00-24:00")
    assert [sorted(s.days) for s in spans] == [[0, 1, 2, 3], [4], [0, 6]]


def test_routing_config_mistakes_are_named() -> None:
    with pytest.raises(ConfigError) as caught:
        config('owners: [{email: a@x.com, hours: "weekdays", holidays: XX}]')
    assert [str(i) for i in caught.value.issues] == [
        "leadflow.yaml:1: owners[0].hours: 'weekdays' is not like 'Mon-Fri 09:00-18:00' "
        "(several spans: 'Mon-Thu 09:00-17:00, Fri 09:00-13:00')",
        "leadflow.yaml:1: owners[0].holidays: 'XX': no public holidays known for this country code",
    ]


def test_team_members_and_targets_must_exist() -> None:
    with pytest.raises(ConfigError, match=r"not an owner: ghost@x\.com"):
        config("owners: [{email: a@x.com}]\nteams: {sales: {members: [a@x.com, ghost@x.com]}}")
    with pytest.raises(ConfigError, match="there is no team 'nobody'"):
        config("owners: [{email: a@x.com}]\nrouting: {rules: [{id: r, to: {team: nobody}}]}")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.booleans(), min_size=1, max_size=8),
    st.integers(min_value=1, max_value=60),
    st.sampled_from(["round_robin", "weighted", "least_loaded", "direct"]),
)
async def test_every_lead_gets_an_owner_or_a_queue_and_a_reason(
    active: list[bool], leads: int, strategy: str
) -> None:
    owners = "\n".join(
        f"  - {{email: o{n}@x.com, active: {str(a).lower()}}}" for n, a in enumerate(active)
    )
    members = ", ".join(f"o{n}@x.com" for n in range(len(active)))
    cfg = config(
        f"owners:\n{owners}\nteams: {{t: {{members: [{members}]}}}}\n"
        f"routing: {{rules: [{{id: r, to: {{team: t}}, strategy: {strategy}}}]}}"
    )
    world = World(now=MONDAY_NOON)
    for _ in range(leads):
        decision = decide(RoutingLead(view=LeadView({})), world, cfg)
        assert (decision.owner is None) != (decision.queue is None)
        assert decision.sentence
        world = world.after(decision)
    if strategy == "round_robin" and any(active):
        counts = [world.load(f"o{n}@x.com").today for n, a in enumerate(active) if a]
        assert max(counts) - min(counts) <= 1


async def test_a_rule_can_require_members_who_cover_the_country_language_or_product() -> None:
    cfg = config(
        """
owners:
  - {email: de@x.com, countries: [DE, AT], languages: [de]}
  - {email: fr@x.com, countries: [FR], languages: [fr, en], products: [enterprise]}
teams:
  eu: {members: [de@x.com, fr@x.com]}
routing:
  rules:
    - {id: by-country, when: {field: answers.kind, equals: c}, to: {team: eu}, require: [country]}
    - {id: by-language, when: {field: answers.kind, equals: l}, to: {team: eu}, require: [language]}
    - {id: by-product, to: {team: eu}, require: [product]}
"""
    )
    french = route(cfg, LeadView({}, {"country": "FR"}, {"kind": "c"}))
    austrian = route(cfg, LeadView({}, {"country": "AT"}, {"kind": "c"}))
    german_speaker = route(cfg, LeadView({}, {"language": "de"}, {"kind": "l"}))
    enterprise = route(cfg, LeadView({"product_interest": "Enterprise plan"}))
    nobody = route(cfg, LeadView({}, {"country": "JP"}, {"kind": "c"}))

    assert [d.owner for d in (french, austrian, german_speaker, enterprise)] == [
        "fr@x.com",
        "de@x.com",
        "de@x.com",
        "fr@x.com",
    ]
    assert {c.owner: c.skipped for c in french.candidates} == {
        "de@x.com": "does not cover country FR",
        "fr@x.com": None,
    }
    assert (nobody.queue, nobody.alert) == ("triage", "no one available in team:eu")
