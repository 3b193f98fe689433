"""Throughput of one pipeline stage's own logic, in process, on one core.

Used by ``make bench-pipeline`` to print stage lines: the validation and
enrichment of ``lead.validate`` (email, phone, names, title, device, channel,
country, spam), the rules of ``lead.score`` (the demo config's rules, with
a few tracked events per lead) and the decision of ``lead.route`` (500 owners
in 50 teams, 200 rules, counters in memory) without the database, so they can
be compared with the whole pipeline's rate and shown not to be its bottleneck.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from leadflow.config import load_config, load_config_text
from leadflow.routing.rules import decide
from leadflow.routing.views import RoutingLead, World
from leadflow.scoring.engine import Activity, LeadView, score
from leadflow.validation.context import channel_of, country_code, device_of, locale_region
from leadflow.validation.email import analyse_email
from leadflow.validation.lists import builtin_spam_terms
from leadflow.validation.people import function_of, seniority_of, tidy_company, tidy_name
from leadflow.validation.phone import analyse_phone
from leadflow.validation.spam import judge

AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Safari/605.1.15",
]
TITLES = ["CEO", "VP Sales", "Head of Marketing", "Software Engineer", "Office Manager", ""]
TERMS = builtin_spam_terms()


def _lead(n: int, rng: random.Random) -> dict[str, str]:
    domain = rng.choice(["acme-logistics.de", "gmail.com", "example.co.uk", "mailinator.com"])
    return {
        "email": f"person.{n}+{n % 7}@{domain}",
        "phone": f"030 {900000 + n % 99999}",
        "first_name": rng.choice(["ANA", "ben", "Carla", "jan van der berg"]),
        "last_name": rng.choice(["WEBER", "mcdonald", "Lopez", "Schmidt"]),
        "company": "  Acme   Logistics GmbH ",
        "title": rng.choice(TITLES),
        "message": "We need 40 seats and a demo next week. See https://acme-logistics.de",
        "ua": rng.choice(AGENTS),
        "referrer": rng.choice(["https://www.google.com/", "", "https://www.linkedin.com/"]),
    }


def validate_once(lead: dict[str, str]) -> int:
    email = analyse_email(lead["email"])
    phone = analyse_phone(lead["phone"], ["DE", country_code("Germany"), locale_region("de-DE")])
    first, last = tidy_name(lead["first_name"]), tidy_name(lead["last_name"])
    tidy_company(lead["company"])
    seniority_of(lead["title"])
    function_of(lead["title"])
    device = device_of(lead["ua"])
    channel_of(
        utm_medium=None,
        gclid=None,
        fbclid=None,
        referrer=lead["referrer"],
        landing_url="https://acme.example/pricing",
    )
    verdict = judge(
        free_text=lead["message"],
        names=f"{first} {last}",
        intake_reasons=[],
        disposable_email=email.kind is not None and email.kind.value == "disposable",
        email_domain=email.domain,
        blocked_domains=frozenset(),
        bot=device.bot,
        locale_region="DE",
        contact_country=phone.region,
        terms=TERMS,
    )
    return verdict.score


def validation_rate(leads: int = 5000, seed: int = 7) -> float:
    """Leads per second through validation and enrichment on one core."""
    rng = random.Random(seed)
    batch = [_lead(n, rng) for n in range(leads)]
    for lead in batch[:200]:  # warm caches (ua-parser's first parse loads its rules)
        validate_once(lead)
    started = time.perf_counter()
    for lead in batch:
        validate_once(lead)
    return leads / (time.perf_counter() - started)


def scoring_rate(leads: int = 20_000, seed: int = 7) -> float:
    """Leads per second through the demo config's scoring rules on one core."""
    scoring = load_config(None).scoring
    rng = random.Random(seed)
    now = datetime.now(UTC)
    views = []
    for n in range(leads):
        lead = _lead(n, rng)
        email = analyse_email(lead["email"])
        seniority = seniority_of(lead["title"])
        activity = [
            Activity("page", now - timedelta(hours=rng.randint(0, 400)), path=rng.choice(PATHS))
            for _ in range(rng.randint(0, 6))
        ]
        quality = {
            "email_kind": email.kind.value if email.kind else None,
            "seniority": seniority.value if seniority else None,
            "phone_valid": n % 3 == 0,
        }
        views.append(LeadView({**lead, "product_interest": "Enterprise"}, quality, {}, activity))
    started = time.perf_counter()
    for view in views:
        score(scoring, view, now)
    return leads / (time.perf_counter() - started)


PATHS = ["/pricing", "/blog/post", "/pricing/enterprise", "/docs"]
COUNTRIES = ["DE", "FR", "US", "GB", "BR", "JP", "IN", "ES", "IT", "CA"]


def routing_config(owners: int = 500, teams: int = 50, rules: int = 200) -> str:
    lines = ["owners:"]
    lines += [
        f"  - {{email: o{n}@x.com, timezone: Europe/Berlin, hours: 'Mon-Fri 08:00-20:00', "
        f"max_per_day: 1000, weight: {1 + n % 3}, holidays: DE}}"
        for n in range(owners)
    ]
    lines.append("teams:")
    per = owners // teams
    for t in range(teams):
        members = ", ".join(f"o{n}@x.com" for n in range(t * per, (t + 1) * per))
        lines.append(f"  t{t}: {{members: [{members}]}}")
    lines += ["routing:", "  rules:"]
    strategies = ["round_robin", "weighted", "least_loaded"]
    for r in range(rules):
        country = COUNTRIES[r % len(COUNTRIES)]
        lines.append(
            f"    - {{id: r{r}, to: {{team: t{r % teams}}}, strategy: {strategies[r % 3]}, "
            f"when: {{all: [{{field: quality.country, equals: {country}}}, "
            f"{{field: answers.plan, equals: p{r // len(COUNTRIES)}}}]}}}}"
        )
    return "\n".join(lines) + "\n"


def routing_rate(leads: int = 3000, seed: int = 7) -> float:
    """Routing decisions per second with 500 owners and 200 rules, on one core."""
    config = load_config_text(routing_config(), "bench-routing.yaml")
    rng = random.Random(seed)
    views = [
        LeadView({}, {"country": rng.choice(COUNTRIES)}, {"plan": f"p{rng.randint(0, 21)}"})
        for _ in range(leads)
    ]
    now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday, within hours

    world = World(now=now)
    started = time.perf_counter()
    for view in views:
        decision = decide(RoutingLead(view=view), world, config)
        world = world.after(decision)
    return leads / (time.perf_counter() - started)


if __name__ == "__main__":
    print(f"validate + enrich: {validation_rate():.0f} leads/s on one core")
    print(f"score (demo rules): {scoring_rate():.0f} leads/s on one core")
    print(f"route (500 owners, 200 rules): {routing_rate():.0f} leads/s on one core")
