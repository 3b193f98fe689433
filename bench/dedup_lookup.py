"""Deduplication lookup latency against 1,000,000 existing leads: ``make bench-dedup``.

What is measured
    The wall time, per probe lead, of the lookup the ``lead.dedup`` step does after taking its
    locks: ``repository.candidates(session, probe_id, keys)`` (one statement: the probe's
    keys looked up in ``lead_match_keys``, the leads sharing most, its pairs) plus
    ``service.judge`` of every candidate. The probe's keys are
    ``blocking_keys(FIELDS, match_values(probe))``, computed before the clock starts. Each
    probe runs in its own transaction, already begun (a ``SELECT 1`` first, as in the
    pipeline where the validation step has run), and rolled back.
    Three kinds of probes, interleaved so that a noisy neighbour hits them alike, reported
    separately:

    exact      an existing lead's email (its key), and half of the time its names and company;
    typo       an existing lead with one typo in the first or the last name (a letter replaced,
               dropped, added or two swapped), no email, no phone, same company and city;
    new        a person who is not in the database, drawn like the existing ones (the same names,
               companies and cities are common), with an email nobody has.

    "fuzzy" is typo and new together. Targets: p95 < 10 ms exact, p95 < 50 ms fuzzy.
    Then the whole step, ``service.dedupe_lead`` (advisory locks, the keys stored and the lookup,
    the decision and, for a match, the merge or the possible-pair records), plus a flush of what
    it left pending, on a probe inserted beforehand in the same transaction, rolled back.
    Also printed: candidates per lookup and the ``lead_match_keys`` rows under the probe's keys
    (what the GROUP BY reads), what was decided, and how busy the CPUs were meanwhile.

The data (deterministic: ``random.Random(seed)``)
    1,000,000 leads (status ``routed``, form ``bench``) with names, companies, cities drawn from
    Zipf-Mandelbrot distributions so that a few are common: 3,000 first names (the commonest
    is about 3.5% of leads), 8,000 surnames (about 1%), 100,000 companies (about 0.3%), 2,000
    cities in 8 countries (about 4%). Names are made of syllables, so some sound alike
    (metaphone) and share keys as real ones do. 70% business email at the company's domain
    (first.last, flast, first ... and 3% a role address: info@, contact@, sales@ ...), 30%
    free mail; 75% a phone (E.164); 40% a street and postcode. ``quality`` holds what the
    validation step would put there (``email_key``, ``phone_e164``, ``company_domain`` ...), so
    do the columns ``email_key``, ``phone_key`` and ``company_domain``, and
    ``lead_match_keys`` holds exactly ``blocking_keys(FIELDS, match_values(lead))`` of each lead,
    computed by Leadflow's code on ``Lead`` objects.

The database
    ``leadflow_bench_dedup`` on the server of ``LEADFLOW_DATABASE_URL`` (any database of that
    server: the bench connects to it to create its own), else on the embedded pgserver in
    ``bench/out/pg``, as ``bench/pipeline.py`` does. It is kept: a rerun reuses it when it holds
    the leads of the same seed, size and generator (a comment on the database and a count), so
    only the first run pays for the load. The load migrates an empty database, drops the
    indexes of ``leads`` and ``lead_match_keys`` (except the leads' primary key), COPYs with
    foreign-key triggers off (``session_replication_role = replica``; the data is consistent by
    construction), rebuilds the indexes and runs ``VACUUM ANALYZE``, as autovacuum would have on
    a live database (this server runs with autovacuum off). A rerun first VACUUMs what earlier
    runs' rolled-back probes left. ``lead_matches`` and ``submissions`` stay empty.

``--reload`` rebuilds the database, ``--explain`` prints EXPLAIN (ANALYZE, BUFFERS) of the
candidates query of the slowest probe of each kind (printed anyway when a target is missed),
``--json`` prints the results as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import math
import os
import random
import statistics
import string
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url

from bench.pipeline import machine
from leadflow import migrate
from leadflow.config import Config
from leadflow.db import create_engine, driver_connection, session_factory
from leadflow.dedup import repository, service
from leadflow.dedup.matching import blocking_keys
from leadflow.dedup.service import FIELDS, match_values
from leadflow.models import Lead
from leadflow.stage import Batch
from leadflow.validation.email import EmailKind, kind_of, match_key

OUT = Path(__file__).resolve().parent / "out"
DATABASE = "leadflow_bench_dedup"
GENERATOR = 2  # bump whenever the generated data changes: the next run reloads
LEADS = 1_000_000
SEED = 20261127
PROBES = 500
WARMUP = 50
TARGET_MS = {"exact": 10.0, "fuzzy": 50.0}
KINDS = ("exact", "typo", "new")
LEADS_COLUMNS = (
    "id, form_key, status, status_changed_at, email, phone, first_name, last_name, company,"
    " title, country, street, city, postcode, submitted_at, quality, email_key, phone_key,"
    " company_domain, created_at, updated_at"
)
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


def lead_id(seed: int, index: int) -> uuid.UUID:
    """The id of existing lead ``index``: computable again without regenerating the leads."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=16).digest()
    return uuid.UUID(bytes=digest, version=4)


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


def lead_row(lead: Lead) -> tuple[Any, ...]:
    return (
        *(lead.id, lead.form_key, lead.status, lead.status_changed_at, lead.email, lead.phone),
        *(lead.first_name, lead.last_name, lead.company, lead.title, lead.country, lead.street),
        *(lead.city, lead.postcode, lead.submitted_at, json.dumps(lead.quality), lead.email_key),
        *(lead.phone_key, lead.company_domain, lead.created_at, lead.updated_at),
    )


# ---------------------------------------------------------------------------------------- load


def marker(seed: int, leads: int) -> str:
    return f"bench.dedup_lookup generator={GENERATOR} seed={seed} leads={leads}"


def is_loaded(admin: str, db: str, seed: int, leads: int) -> bool:
    with psycopg.connect(admin, autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (DATABASE,),
        ).fetchone()
    if row is None or row[0] != marker(seed, leads):
        return False
    with psycopg.connect(db) as conn:
        count = conn.execute("SELECT count(*) FROM leads").fetchone()
    return count is not None and count[0] == leads


def load(admin: str, db: str, world: World, seed: int, leads: int) -> dict[str, float]:
    """Create the database and fill it; the seconds of each phase."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    migrate.upgrade(db)
    seconds["migrate"] = time.perf_counter() - started
    with psycopg.connect(db) as leads_conn, psycopg.connect(db) as keys_conn:
        for conn in (leads_conn, keys_conn):
            conn.execute("SET session_replication_role = replica")  # no FK triggers while COPYing
        # Indexes are rebuilt after the COPY (much faster than maintained row by row); the
        # leads' primary key stays, other tables' foreign keys point at it.
        rebuild = keys_conn.execute(
            "SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),"
            " format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname,"
            "        pg_get_constraintdef(oid))"
            " FROM pg_constraint WHERE conrelid = 'lead_match_keys'::regclass AND contype = 'p'"
            " UNION ALL"
            " SELECT format('DROP INDEX %s', indexrelid::regclass), pg_get_indexdef(indexrelid)"
            " FROM pg_index WHERE indrelid IN ('leads'::regclass, 'lead_match_keys'::regclass)"
            " AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = indexrelid)"
        ).fetchall()
        for drop, _ in rebuild:
            keys_conn.execute(drop)
        keys_conn.commit()
        t0 = time.perf_counter()
        rng = random.Random(seed)
        taken: set[str] = set()
        keys_total = 0
        with (
            leads_conn.cursor().copy(f"COPY leads ({LEADS_COLUMNS}) FROM STDIN") as leads_copy,
            keys_conn.cursor().copy("COPY lead_match_keys (key, lead_id) FROM STDIN") as keys_copy,
        ):
            for index in range(leads):
                lead = world.person(rng, lead_id(seed, index), taken)
                leads_copy.write_row(lead_row(lead))
                for key in blocking_keys(FIELDS, match_values(lead)):
                    keys_copy.write_row((key, lead.id))
                    keys_total += 1
                if (index + 1) % 100_000 == 0:
                    rate = (index + 1) / (time.perf_counter() - t0)
                    print(f"  {index + 1:>9,} leads, {keys_total:,} keys ({rate:,.0f}/s)")
        leads_conn.commit()
        keys_conn.commit()
        seconds["generate+copy"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        keys_conn.execute("SET maintenance_work_mem = '1GB'")
        for _, create in rebuild:
            keys_conn.execute(create)
        keys_conn.commit()
        seconds["indexes"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) leads")
        conn.execute("VACUUM (ANALYZE) lead_match_keys")
    seconds["vacuum+analyze"] = time.perf_counter() - t0
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"COMMENT ON DATABASE \"{DATABASE}\" IS '{marker(seed, leads)}'")
    seconds["total"] = time.perf_counter() - started
    return seconds


# -------------------------------------------------------------------------------------- probes


@dataclass(frozen=True)
class Probe:
    kind: str  # exact, typo, new
    values: dict[str, Any]  # Lead attributes
    source: uuid.UUID | None  # the existing lead it was made from

    def lead(self) -> Lead:
        """A fresh Lead (as the dedup step gets it: validated, not yet deduplicated)."""
        return Lead(id=uuid.uuid4(), form_key="bench", status="validated", **self.values)


def typo(rng: random.Random, name: str) -> str:
    letters = string.ascii_lowercase
    while True:
        chars = list(name.lower())
        i = rng.randrange(len(chars))
        operation = rng.choice(("replace", "drop", "add", "swap"))
        if operation == "replace":
            chars[i] = rng.choice(letters)
        elif operation == "drop" and len(chars) > 3:
            del chars[i]
        elif operation == "add":
            chars.insert(i, rng.choice(letters))
        elif operation == "swap" and i + 1 < len(chars):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        misspelt = "".join(chars).capitalize()
        if misspelt != name:
            return misspelt


async def make_probes(db: str, world: World, seed: int, leads: int, count: int) -> list[Probe]:
    """``count`` probes of each kind, the same for a given seed and size."""
    rng = random.Random(seed + 1)
    sources = rng.sample(range(leads), 2 * count)
    ids = [lead_id(seed, i) for i in sources]
    engine = create_engine(db, pool_size=1)
    try:
        async with session_factory(engine)() as session:
            found = await session.scalars(select(Lead).where(Lead.id.in_(ids)))
            rows = {row.id: row for row in found}
            by_id = [rows[i] for i in ids]
            probes: list[Probe] = []
            for row in by_id[:count]:
                quality = {
                    "email_key": row.email_key,
                    "phone_e164": None,
                    "company_domain": (row.quality or {}).get("company_domain"),
                }
                values: dict[str, Any] = {"email": row.email, "quality": quality}
                if rng.random() < 0.5:
                    values |= {"first_name": row.first_name, "last_name": row.last_name}
                    values |= {"company": row.company, "city": row.city, "country": row.country}
                probes.append(Probe("exact", values, row.id))
            for row in by_id[count:]:
                first, last = row.first_name or "", row.last_name or ""
                if rng.random() < 0.5:
                    first = typo(rng, first)
                else:
                    last = typo(rng, last)
                values = {"first_name": first, "last_name": last, "company": row.company}
                values |= {"city": row.city, "country": row.country}
                values |= {"quality": {"email_key": None, "phone_e164": None}}
                probes.append(Probe("typo", values, row.id))
            new_rng = random.Random(seed + 2)
            taken: set[str] = set()
            people = [world.person(new_rng, uuid.uuid4(), taken) for _ in range(count)]
            while True:  # an address an existing lead has: a digit more, as the load does
                keys = [p.email_key for p in people]
                query = select(Lead.email_key).where(Lead.email_key.in_(keys))
                existing = set(await session.scalars(query))
                if not existing:
                    break
                for person in people:
                    if person.email_key in existing:
                        local, _, domain = (person.email or "").partition("@")
                        local += str(new_rng.randint(0, 9))
                        person.email = f"{local}@{domain}"
                        person.email_key = match_key(local, domain)
                        person.quality = {
                            **(person.quality or {}),
                            "email_key": person.email_key,
                            "email_normalized": person.email,
                        }
            for person in people:
                values = {
                    name: getattr(person, name)
                    for name in (
                        *("email", "phone", "first_name", "last_name", "company", "title"),
                        *("country", "street", "city", "postcode", "quality"),
                    )
                }
                probes.append(Probe("new", values, None))
            return probes
    finally:
        await engine.dispose()


# ----------------------------------------------------------------------------------- measuring


@dataclass
class Sample:
    kind: str
    ms: float
    candidates: int
    decision: str  # same, possible, new
    rule: str | None
    source_found: bool | None  # the source lead among the candidates (exact, typo)
    best_is_source: bool | None  # the best verdict (same/possible) is the source lead
    keys: list[str] = field(default_factory=list)


async def lookup(sessions: Any, probe: Probe, config: Config) -> Sample:
    async with sessions() as session:
        await session.execute(text("SELECT 1"))  # connection checked out, transaction begun
        lead = probe.lead()
        keys = blocking_keys(FIELDS, match_values(lead))
        started = time.perf_counter()
        found = await repository.candidates(session, lead.id, keys)
        verdicts = [service.judge(lead, candidate, config) for candidate in found]
        ms = (time.perf_counter() - started) * 1000
        order = {"same": 2, "possible": 1, "new": 0}
        verdicts.sort(key=lambda v: (order[v.decision], v.match.weight), reverse=True)
        best = verdicts[0] if verdicts else None
        decision = best.decision if best else "new"
        sample = Sample(
            probe.kind,
            ms,
            len(found),
            decision,
            best.rule if best and decision != "new" else None,
            None if probe.source is None else any(c.id == probe.source for c in found),
            None if probe.source is None else bool(best and best.lead.id == probe.source),
            sorted(keys),
        )
        await session.rollback()
    return sample


async def step(sessions: Any, probe: Probe, config: Config) -> Sample:
    async with sessions() as session:
        lead = probe.lead()
        session.add(lead)
        await session.flush()  # the lead exists before its dedup step, as in the pipeline
        started = time.perf_counter()
        result = await service.dedupe_lead(session, Batch([lead]), lead, config)
        await session.flush()
        ms = (time.perf_counter() - started) * 1000
        await session.rollback()
    detail = result.detail
    decision = str(detail.get("decision"))
    candidates = detail.get("candidates")
    return Sample(
        probe.kind,
        ms,
        int(candidates) if candidates is not None else -1,
        decision,
        detail.get("rule"),
        None,
        None if probe.source is None else detail.get("survivor") == str(probe.source),
    )


async def measure(
    db: str, probes: list[Probe], warmup: int, config: Config
) -> tuple[list[Sample], list[Sample]]:
    """Warm-up, then the lookups and the steps, the kinds interleaved."""
    engine = create_engine(db, pool_size=2)
    sessions = session_factory(engine)
    by_kind = {kind: [p for p in probes if p.kind == kind] for kind in KINDS}
    rounds = list(zip(*by_kind.values(), strict=True))
    try:
        for probe_round in rounds[:warmup]:
            for probe in probe_round:
                await lookup(sessions, probe, config)
                await step(sessions, probe, config)
        lookups = [await lookup(sessions, p, config) for r in rounds[warmup:] for p in r]
        steps = [await step(sessions, p, config) for r in rounds[warmup:] for p in r]
        return lookups, steps
    finally:
        await engine.dispose()


async def rows_read(db: str, samples: Sequence[Sample]) -> list[int]:
    """Rows of lead_match_keys under each probe's keys: what the GROUP BY reads."""
    out = []
    async with await psycopg.AsyncConnection.connect(db) as conn:
        for sample in samples:
            cur = await conn.execute(
                "SELECT count(*) FROM lead_match_keys WHERE key = ANY(%s)", (sample.keys,)
            )
            row = await cur.fetchone()
            out.append(int(row[0]) if row else 0)
    return out


async def explain(db: str, probes: dict[str, Probe], config: Config) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the GROUP BY that ``candidates`` sends, per probe."""
    engine = create_engine(db, pool_size=1)
    sessions = session_factory(engine)
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    plans = {}
    try:
        for kind, probe in probes.items():
            async with sessions() as session:
                lead = probe.lead()
                keys = blocking_keys(FIELDS, match_values(lead))
                captured.clear()
                event.listen(engine.sync_engine, "before_cursor_execute", capture)
                try:
                    await repository.candidates(session, lead.id, keys)
                finally:
                    event.remove(engine.sync_engine, "before_cursor_execute", capture)
                statement, parameters = captured[0]
                raw = await driver_connection(session)
                cur = await raw.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters)
                lines: list[Any] = await cur.fetchall()
                plan = [str(row[0]) for row in lines]
                plans[kind] = "\n".join([statement, *plan])
                await session.rollback()
    finally:
        await engine.dispose()
    return plans


# ------------------------------------------------------------------------------------- report


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest rank; NaN for no values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else math.nan


def line(
    label: str, samples: Sequence[Sample], target: float, reads: list[int] | None
) -> dict[str, Any]:
    ms = [s.ms for s in samples]
    counts = [s.candidates for s in samples if s.candidates >= 0]
    p95 = percentile(ms, 95)
    return {
        "line": label,
        "probes": len(samples),
        "p50_ms": percentile(ms, 50),
        "p95_ms": p95,
        "max_ms": max(ms),
        "target_p95_ms": target,
        "met": p95 < target,
        "candidates_mean": statistics.fmean(counts) if counts else math.nan,
        "candidates_max": max(counts, default=-1),
        "rows_read_mean": statistics.fmean(reads) if reads else None,
        "rows_read_max": max(reads) if reads else None,
    }


def outcomes(samples: Sequence[Sample]) -> dict[str, Any]:
    decisions = Counter(f"{s.decision}" + (f" ({s.rule})" if s.rule else "") for s in samples)
    out: dict[str, Any] = {"decisions": dict(decisions.most_common())}
    found = [s.source_found for s in samples if s.source_found is not None]
    best = [s.best_is_source for s in samples if s.best_is_source is not None]
    if found:
        out["source_among_candidates"] = sum(found)
    if best:
        out["source_is_best"] = sum(best)
    return out


def cpu_ticks() -> tuple[list[int], float]:
    """Machine-wide CPU ticks (/proc/stat) and this process's CPU seconds."""
    stat = Path("/proc/stat")
    fields = stat.read_text().split("\n", 1)[0].split()[1:] if stat.exists() else []
    times = os.times()
    return [int(x) for x in fields], times.user + times.system


def cpu_share(before: tuple[list[int], float], after: tuple[list[int], float]) -> dict[str, float]:
    """Busy and steal shares of all CPUs between two cpu_ticks(), and this process's share."""
    delta = [b - a for a, b in zip(before[0], after[0], strict=True)]
    if len(delta) < 8 or not sum(delta):
        return {}
    total = sum(delta)
    idle = delta[3] + delta[4]  # idle, iowait
    seconds = total / (os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1))
    return {
        "busy": (total - idle) / total,
        "steal": delta[7] / total,
        "this_process": (after[1] - before[1]) / seconds / (os.cpu_count() or 1),
        "seconds": seconds,
    }


def database_facts(db: str) -> dict[str, Any]:
    """Rows and sizes of the two tables, and the longest key lists (ANALYZE's commonest keys)."""
    with psycopg.connect(db) as conn:
        tables = {}
        for name in ("leads", "lead_match_keys"):
            row = conn.execute(
                f"SELECT count(*), pg_total_relation_size('{name}') FROM {name}"
            ).fetchone()
            assert row is not None
            tables[name] = {"rows": row[0], "mb": round(row[1] / 2**20)}
        common = conn.execute(
            "SELECT most_common_vals::text::text[] FROM pg_stats"
            " WHERE tablename = 'lead_match_keys' AND attname = 'key'"
        ).fetchone()
        top: list[tuple[str, int]] = []
        if common and common[0]:
            top = conn.execute(
                "SELECT key, count(*) FROM lead_match_keys WHERE key = ANY(%s)"
                " GROUP BY key ORDER BY 2 DESC, 1 LIMIT 5",
                (common[0],),
            ).fetchall()
    return {"tables": tables, "commonest_keys": top}


def report(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"\n{m['date']}  nproc {m['nproc']}  {m['cpu']}  Python {m['python']}", end="  ")
    print(f"load average before: {m['loadavg_before']:.2f}")
    print(f"PostgreSQL {m['postgresql']} ({result['database']}); commit {m['commit']}")
    if result["load_s"]:
        phases = ", ".join(f"{k} {v:.0f} s" for k, v in result["load_s"].items())
        print(f"loaded {result['leads']:,} leads: {phases}")
    else:
        print(f"reused {DATABASE} ({result['leads']:,} leads, seed {result['seed']})")
    facts = result["facts"]
    for name, t in facts["tables"].items():
        print(f"  {name}: {t['rows']:,} rows, {t['mb']:,} MB with indexes")
    top = ", ".join(f"{k} {n:,}" for k, n in facts["commonest_keys"])
    print(f"  longest key lists: {top}")
    print(
        f"\n{'configuration':<38} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}  {'target':<14}"
        f" {'verdict':<11} {'cand. mean/max':>14} {'key rows mean/max':>18}"
    )
    for row in result["lines"]:
        reads = (
            f"{row['rows_read_mean']:.0f}/{row['rows_read_max']}"
            if row["rows_read_mean"] is not None
            else "-"
        )
        cands = (
            f"{row['candidates_mean']:.1f}/{row['candidates_max']}"
            if row["candidates_max"] >= 0
            else "-"
        )
        print(
            f"{row['line']:<38} {row['p50_ms']:>7.2f} {row['p95_ms']:>7.2f} {row['max_ms']:>7.1f}"
            f"  {'p95 < ' + format(row['target_p95_ms'], '.0f') + ' ms':<14}"
            f" {'target met' if row['met'] else 'missed':<11} {cands:>14} {reads:>18}"
        )
    print(f"\n{result['probes']} measured probes per kind after {result['warmup']} warm-up each.")
    cpu = result.get("cpu_during")
    if cpu:
        print(
            f"CPUs during the {cpu['seconds']:.0f} s of measurement: {cpu['busy']:.0%} busy"
            f" (this process {cpu['this_process']:.0%}, steal {cpu['steal']:.1%})"
        )
    for what in ("lookup", "step"):
        for kind, o in result["outcomes"][what].items():
            extra = ""
            if "source_among_candidates" in o:
                extra += f"; source lead among candidates {o['source_among_candidates']}"
            if "source_is_best" in o:
                label = "best verdict" if what == "lookup" else "merged into"
                extra += f"; {label} the source lead {o['source_is_best']}"
            print(f"  {what} {kind}: {o['decisions']}{extra}")
    for kind, plan in result.get("explain", {}).items():
        print(f"\nEXPLAIN (ANALYZE, BUFFERS), slowest {kind} lookup:\n{plan}")


def server_url() -> tuple[str, str, Any]:
    """(server URL, what it is, the embedded server to keep alive or None)."""
    server = os.environ.get("LEADFLOW_DATABASE_URL")
    if server:
        return server, "LEADFLOW_DATABASE_URL", None
    from pgserver import get_server  # type: ignore[attr-defined]

    OUT.mkdir(parents=True, exist_ok=True)
    keep = get_server(OUT / "pg", cleanup_mode="stop")
    return keep.get_uri(), "embedded pgserver", keep


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=LEADS, help="existing leads")
    parser.add_argument("--probes", type=int, default=PROBES, help="measured probes per kind")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="warm-up probes per kind")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--reload", action="store_true", help="rebuild the database")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN the slowest lookups")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    server, database, keep = server_url()
    try:
        admin = make_url(server).set(drivername="postgresql").render_as_string(False)
        db = make_url(admin).set(database=DATABASE).render_as_string(hide_password=False)
        world = World.build(args.seed)
        load_s: dict[str, float] = {}
        if args.reload or not is_loaded(admin, db, args.seed, args.leads):
            print(f"loading {args.leads:,} leads into {DATABASE} ...", file=sys.stderr)
            load_s = load(admin, db, world, args.seed, args.leads)
        else:
            migrate.upgrade(db)
            with psycopg.connect(db, autocommit=True) as conn:
                # what earlier runs' rolled-back probes left, as autovacuum would clear it
                for table in ("leads", "lead_match_keys", "lead_events", "lead_matches"):
                    conn.execute(f"VACUUM {table}")
        config = Config()
        count = args.warmup + args.probes
        probes = asyncio.run(make_probes(db, world, args.seed, args.leads, count))
        result: dict[str, Any] = {
            "machine": machine(server),
            "database": f"{database}, database {DATABASE}",
            "leads": args.leads,
            "seed": args.seed,
            "load_s": load_s,
            "probes": args.probes,
            "warmup": args.warmup,
        }
        before = cpu_ticks()
        lookups, steps = asyncio.run(measure(db, probes, args.warmup, config))
        result["cpu_during"] = cpu_share(before, cpu_ticks())
        reads = asyncio.run(rows_read(db, lookups))
        reads_of = {
            kind: [r for s, r in zip(lookups, reads, strict=True) if s.kind == kind]
            for kind in KINDS
        }
        of = {kind: [s for s in lookups if s.kind == kind] for kind in KINDS}
        steps_of = {kind: [s for s in steps if s.kind == kind] for kind in KINDS}
        fuzzy, fuzzy_target = of["typo"] + of["new"], TARGET_MS["fuzzy"]
        result["lines"] = [
            line("lookup exact (same email)", of["exact"], TARGET_MS["exact"], reads_of["exact"]),
            line("lookup fuzzy: typo, no email", of["typo"], fuzzy_target, reads_of["typo"]),
            line("lookup fuzzy: new person", of["new"], fuzzy_target, reads_of["new"]),
            line(
                "lookup fuzzy: typo + new", fuzzy, fuzzy_target, reads_of["typo"] + reads_of["new"]
            ),
            line("dedupe_lead step, exact", steps_of["exact"], TARGET_MS["exact"], None),
            line("dedupe_lead step, typo", steps_of["typo"], fuzzy_target, None),
            line("dedupe_lead step, new", steps_of["new"], fuzzy_target, None),
        ]
        result["outcomes"] = {
            "lookup": {kind: outcomes(of[kind]) for kind in KINDS},
            "step": {kind: outcomes(steps_of[kind]) for kind in KINDS},
        }
        result["facts"] = database_facts(db)
        if args.explain or not all(row["met"] for row in result["lines"][:4]):
            slowest = {kind: max(of[kind], key=lambda s: s.ms) for kind in KINDS}
            chosen = {}
            for kind, sample in slowest.items():
                measured = [p for p in probes if p.kind == kind][args.warmup :]
                chosen[kind] = measured[of[kind].index(sample)]
            result["explain"] = asyncio.run(explain(db, chosen, config))
    finally:
        if keep is not None:
            keep.cleanup()
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
