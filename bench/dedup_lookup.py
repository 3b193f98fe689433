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

The data (deterministic: ``random.Random(seed)``; bench/people.py, loaded by bench/dedup_load.py)
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
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from bench.dedup_load import DATABASE, is_loaded, load
from bench.dedup_probes import Probe, Sample, make_probes
from bench.dedup_report import cpu_share, cpu_ticks, database_facts, line, outcomes, report
from bench.machine import machine
from bench.people import World
from leadflow import migrate
from leadflow.config import Config
from leadflow.db import create_engine, driver_connection, session_factory
from leadflow.dedup import repository, service
from leadflow.dedup.matching import blocking_keys
from leadflow.dedup.service import FIELDS, match_values
from leadflow.stage import Batch

OUT = Path(__file__).resolve().parent / "out"
LEADS = 1_000_000
SEED = 20261127
PROBES = 500
WARMUP = 50
TARGET_MS = {"exact": 10.0, "fuzzy": 50.0}
KINDS = ("exact", "typo", "new")


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
