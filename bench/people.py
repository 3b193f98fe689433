"""Made-up people for the benchmarks: varied names, companies, cities, emails and phones.

Names, companies and cities are drawn from Zipf-Mandelbrot distributions so that
a few are common: 3,000 first names, 8,000 surnames, 100,000 companies, 2,000
cities in 8 countries. Names are made of syllables, so some sound alike. 70%
business email at the company's domain, 30% free mail; 75% a phone; 40% a street.
``World.person`` draws a lead as the pipeline leaves it (bench-dedup loads a
million of them); ``People.payload`` one as a form submits it (bench-pipeline).
"""

from __future__ import annotations

import itertools
import random
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from leadflow.models import Lead
from leadflow.validation.email import EmailKind, kind_of, match_key

NOW = datetime(2026, 11, 27, tzinfo=UTC)

# Syllables of made-up names: pronounceable, and some of them sound alike.
ONSETS = (
    *("b", "br", "c", "ch", "d", "dr", "f", "fr", "g", "gr", "h", "j", "k", "kr", "l", "m"),
    *("n", "p", "pr", "r", "s", "sh", "st", "t", "th", "tr", "v", "w", "z", "", "", ""),
)

VOWELS = ("a", "e", "i", "o", "u", "a", "e", "i", "o", "ai", "ea", "ie", "ou", "y")
CODAS = ("", "", "", "n", "r", "l", "s", "th", "m", "nd", "rt", "ck", "x", "ll", "ss")
SURNAME_ENDINGS = ("", "", "", "", "son", "er", "man", "ez", "ski", "ley", "ton", "berg", "ford")

INDUSTRIES = (
    *("Logistics", "Software", "Systems", "Labs", "Health", "Capital", "Energy", "Foods"),
    *("Media", "Analytics", "Robotics", "Partners", "Consulting", "Solutions", "Group"),
    *("Networks", "Bio", "Retail", "Motors", "Security", "Cloud", "Design", "", "", ""),
)

LEGAL = ("Inc", "Ltd", "GmbH", "LLC", "SAS", "BV", "AG", "", "", "", "")
TLDS = ("com", "com", "com", "io", "co", "net", "de", "co.uk", "fr", "ai")

TITLES = (
    *("CEO", "CTO", "Head of Marketing", "Marketing Manager", "Sales Director", "Engineer"),
    *("Operations Manager", "Founder", "VP Sales", "Product Manager", "Analyst", "", ""),
)

# Mailbox names at a company's domain, and how often each pattern is used.
BUSINESS_LOCALS = ("{f}.{la}", "{f[0]}{la}", "{f}", "{f}{la[0]}", "{f}_{la}", "{f[0]}.{la}")
BUSINESS_WEIGHTS = (50, 20, 8, 7, 5, 10)
ROLE_LOCALS = ("info", "contact", "sales", "hello", "office", "admin", "marketing", "team")
STREET_TYPES = ("Street", "Road", "Avenue", "Lane", "Drive", "Strasse", "Way", "Place")

# Free-mail domains and their shares of free-mail leads.
FREE_MAIL_DOMAINS = (
    *("gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com", "gmx.de", "web.de"),
)

FREE_MAIL_WEIGHTS = (55, 12, 10, 10, 5, 4, 4)


@dataclass(frozen=True, slots=True)
class Country:
    code: str
    weight: int
    calling: str  # E.164 country code
    digits: int  # national significant number
    postcode: str  # pattern: '#' a digit, 'A' a letter


COUNTRIES = (
    Country("US", 40, "1", 10, "#####"),
    Country("GB", 15, "44", 10, "AA# #AA"),
    Country("DE", 15, "49", 10, "#####"),
    Country("FR", 10, "33", 9, "#####"),
    Country("NL", 5, "31", 9, "#### AA"),
    Country("ES", 5, "34", 9, "#####"),
    Country("AU", 5, "61", 9, "####"),
    Country("CA", 5, "1", 10, "A#A #A#"),
)


def zipf(n: int, s: float, q: float) -> list[float]:
    """Cumulative Zipf-Mandelbrot weights 1 / (rank + q)^s of ranks 1..n."""
    return list(itertools.accumulate(1 / (rank + q) ** s for rank in range(1, n + 1)))


def word(rng: random.Random, syllables: int) -> str:
    parts = [rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(syllables)]
    return ("".join(parts) + rng.choice(CODAS)).capitalize()


def unique(rng: random.Random, n: int, make: Any) -> list[str]:
    seen: dict[str, None] = {}
    while len(seen) < n:
        value = make(rng)
        if len(value) >= 3:
            seen.setdefault(value, None)
    return list(seen)


def pattern(rng: random.Random, template: str) -> str:
    out = []
    for char in template:
        if char == "#":
            out.append(rng.choice(string.digits))
        elif char == "A":
            out.append(rng.choice(string.ascii_uppercase))
        else:
            out.append(char)
    return "".join(out)


@dataclass(frozen=True)
class Company:
    name: str
    domain: str


@dataclass
class World:
    """The vocabularies and their frequencies; ``person`` draws a lead from them."""

    first_names: list[str]
    surnames: list[str]
    companies: list[Company]
    cities: list[tuple[str, Country]]
    first_cum: list[float] = field(repr=False)
    surname_cum: list[float] = field(repr=False)
    company_cum: list[float] = field(repr=False)
    city_cum: list[float] = field(repr=False)

    @classmethod
    def build(cls, seed: int) -> World:
        rng = random.Random(seed)
        first_names = unique(rng, 3000, lambda r: word(r, r.choice((1, 2, 2, 2, 3))))
        surnames = unique(
            rng, 8000, lambda r: word(r, r.choice((1, 2, 2, 3))) + r.choice(SURNAME_ENDINGS)
        )
        companies: list[Company] = []
        domains: set[str] = set()
        while len(companies) < 100_000:
            brand = word(rng, rng.choice((2, 2, 3)))
            industry = rng.choice(INDUSTRIES)
            legal = rng.choice(LEGAL)
            name = " ".join(filter(None, (brand, industry, legal)))
            domain = f"{(brand + industry).lower()}.{rng.choice(TLDS)}"
            if domain in domains:
                continue
            domains.add(domain)
            companies.append(Company(name, domain))
        weights = [c.weight for c in COUNTRIES]
        city_names = unique(rng, 2000, lambda r: word(r, r.choice((2, 2, 3))))
        cities = [(name, rng.choices(COUNTRIES, weights)[0]) for name in city_names]
        return cls(
            first_names,
            surnames,
            companies,
            cities,
            zipf(len(first_names), 1.1, 5),
            zipf(len(surnames), 1.0, 15),
            zipf(len(companies), 1.0, 50),
            zipf(len(cities), 1.0, 3),
        )

    def person(self, rng: random.Random, id_: uuid.UUID, taken: set[str]) -> Lead:
        """A lead as the pipeline leaves it; its email key is not in ``taken`` (then added)."""
        first = rng.choices(self.first_names, cum_weights=self.first_cum)[0]
        last = rng.choices(self.surnames, cum_weights=self.surname_cum)[0]
        company = rng.choices(self.companies, cum_weights=self.company_cum)[0]
        city, country = rng.choices(self.cities, cum_weights=self.city_cum)[0]
        f, la = first.lower(), last.lower()
        business = rng.random() < 0.7
        if business:
            domain = company.domain
            local = rng.choices(BUSINESS_LOCALS, BUSINESS_WEIGHTS)[0].format(f=f, la=la)
            if rng.random() < 0.03:  # a role address, unless the company's is taken
                role = rng.choice(ROLE_LOCALS)
                if match_key(role, domain) not in taken:
                    local = role
        else:
            domain = rng.choices(FREE_MAIL_DOMAINS, FREE_MAIL_WEIGHTS)[0]
            local = rng.choice(
                (
                    f"{f}.{la}",
                    f"{f}{la}",
                    f"{f}.{la}{rng.randint(1, 99)}",
                    f"{f[0]}{la}{1960 + rng.randint(0, 45)}",
                )
            )
        email = f"{local}@{domain}"
        key = match_key(local, domain)
        while key in taken:
            local = f"{local}{rng.randint(0, 9)}"
            email, key = f"{local}@{domain}", match_key(local, domain)
        taken.add(key)
        kind = kind_of(local, domain)  # as the validation step classifies it
        company_domain = domain if kind is EmailKind.BUSINESS else None
        phone = None
        if rng.random() < 0.75:
            national = str(rng.randint(2, 9)) + pattern(rng, "#" * (country.digits - 1))
            phone = f"+{country.calling}{national}"
        street = postcode = None
        if rng.random() < 0.4:
            street_name = rng.choices(self.surnames, cum_weights=self.surname_cum)[0]
            street = f"{rng.randint(1, 250)} {street_name} {rng.choice(STREET_TYPES)}"
            postcode = pattern(rng, country.postcode)
        submitted = NOW - timedelta(seconds=rng.randint(0, 2 * 365 * 86400))
        return Lead(
            id=id_,
            form_key="bench",
            status="routed",
            queue="triage",  # a routed lead has an owner or a queue
            status_changed_at=submitted,
            email=email,
            phone=phone,
            first_name=first,
            last_name=last,
            company=company.name,
            title=rng.choice(TITLES) or None,
            country=country.code,
            street=street,
            city=city,
            postcode=postcode,
            submitted_at=submitted,
            created_at=submitted,
            updated_at=submitted,
            email_key=key,
            phone_key=phone,
            company_domain=company_domain,
            quality={
                "email_valid": True,
                "email_kind": kind.value,
                "email_normalized": email,
                "email_key": key,
                "email_domain": domain,
                "phone_e164": phone,
                "phone_valid": phone is not None,
                "country": country.code,
                "company_domain": company_domain,
            },
        )


class People:
    """Varied, made-up people (bench-dedup's generator: Zipf-skewed names, 100,000 companies,
    business and free-mail addresses, phones for 75%), each with an email of their own."""

    def __init__(self, seed: int = 20261127) -> None:
        self.world = World.build(seed)
        self.rng = random.Random(seed)
        self.taken: set[str] = set()

    def payload(self) -> dict[str, str]:
        lead = self.world.person(self.rng, uuid.uuid4(), self.taken)
        body = {
            "email": str(lead.email),
            "name": f"{lead.first_name} {lead.last_name}",
            "org": str(lead.company),
            "country": str(lead.country),
        }
        if lead.phone:
            body["tel"] = lead.phone
        if lead.title:
            body["job"] = lead.title
        return body
