"""bench-dedup's probes (an existing lead, one with a typo, a new person) and their samples."""

from __future__ import annotations

import random
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from bench.dedup_load import lead_id
from bench.people import World
from leadflow.db import create_engine, session_factory
from leadflow.models import Lead
from leadflow.validation.email import match_key


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
