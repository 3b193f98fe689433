"""bench-dedup's database: a million made-up leads and their blocking keys, loaded once.

Kept between runs: a comment on the database says which seed, size and
generator filled it, so a rerun reuses it (see :mod:`bench.dedup_lookup`).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from typing import Any

import psycopg

from bench.people import World
from leadflow import migrate
from leadflow.dedup.matching import blocking_keys
from leadflow.dedup.service import FIELDS, match_values
from leadflow.models import Lead

DATABASE = "leadflow_bench_dedup"
GENERATOR = 2  # bump whenever the generated data changes: the next run reloads

LEADS_COLUMNS = (
    "id, form_key, status, status_changed_at, email, phone, first_name, last_name, company,"
    " title, country, street, city, postcode, submitted_at, quality, email_key, phone_key,"
    " company_domain, created_at, updated_at, queue"
)


def lead_id(seed: int, index: int) -> uuid.UUID:
    """The id of existing lead ``index``: computable again without regenerating the leads."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=16).digest()
    return uuid.UUID(bytes=digest, version=4)


def lead_row(lead: Lead) -> tuple[Any, ...]:
    return (
        *(lead.id, lead.form_key, lead.status, lead.status_changed_at, lead.email, lead.phone),
        *(lead.first_name, lead.last_name, lead.company, lead.title, lead.country, lead.street),
        *(lead.city, lead.postcode, lead.submitted_at, json.dumps(lead.quality), lead.email_key),
        *(lead.phone_key, lead.company_domain, lead.created_at, lead.updated_at, lead.queue),
    )


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
