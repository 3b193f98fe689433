"""``make bench-pipeline``: leads/s through the whole pipeline, and submission-to-routed latency.

Real processes, a fresh database per run: ``leadflow serve --no-worker`` and ``leadflow worker``.
Throughput: N leads are submitted through HTTP while no worker runs, then 1 (then 2) workers
start and the run ends when every lead is terminal. The rate is taken from the database, from the
first event a worker writes (``lead.validate``) to the last (``crm.synced``): start-up excluded.
Latency: serve + one separate worker (as in production), a warm-up, then submissions at a steady
rate; per lead, ``leads.submitted_at`` to its ``lead.route`` and ``crm.synced`` events.
The config is the built-in demo (owners, teams, routing and scoring rules) with the recording
CRM; the leads are varied made-up people, each new (bench-dedup's generator).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
import psycopg

from bench.harness import FORM, OUT, Failed, Processes, leadflow
from bench.intake_load import cpu_seconds, postgres_cpu
from bench.machine import machine
from bench.people import People
from bench.stages import routing_rate, scoring_rate, validation_rate

TERMINAL = ("synced", "quarantined", "merged", "failed")
PER_WORKER_TARGET = 200.0  # leads/s per worker process
P95_TARGET_MS = 1000.0


@dataclass
class Submitted:
    lead_ids: list[str] = field(default_factory=list)
    http_ms: list[float] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    seconds: float = 0.0


def percentile(values: list[float], p: float) -> float:
    """Nearest rank; NaN for no values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else math.nan


async def submit(people: People, base: str, count: int, rate: float | None) -> Submitted:
    """POST ``count`` distinct leads, as fast as 32 connections go, or at ``rate`` per second."""
    out = Submitted()
    bodies = [people.payload() for _ in range(count)]
    gate = asyncio.Semaphore(32)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def one(i: int) -> None:
            started = time.perf_counter()
            body = bodies[i]
            async with gate:
                try:
                    response = await client.post(f"/v1/forms/{FORM}/submissions", json=body)
                except httpx.HTTPError as exc:
                    out.refused.append(repr(exc))
                    return
            out.http_ms.append((time.perf_counter() - started) * 1000)
            if response.status_code == 202:
                out.lead_ids.append(response.json()["lead_id"])
            else:
                out.refused.append(f"{response.status_code} {response.text[:200]}")

        t0 = time.perf_counter()
        tasks = []
        for i in range(count):
            if rate:
                await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        out.seconds = time.perf_counter() - t0
    if out.refused:
        print(f"warning: {len(out.refused)} refused, e.g. {out.refused[0]}", file=sys.stderr)
    return out


def wait_terminal(db: str, expected: int, procs: Processes, timeout: float) -> dict[str, int]:
    """Poll until ``expected`` leads are terminal; lost leads (or a dead process) are a Failed."""
    counts: dict[str, int] = {}
    with psycopg.connect(db, autocommit=True) as conn:
        for _ in range(int(timeout / 0.1)):
            procs.check()
            rows = conn.execute("SELECT status, count(*) FROM leads GROUP BY status").fetchall()
            counts = {status: n for status, n in rows}
            if sum(counts.get(s, 0) for s in TERMINAL) >= expected:
                return counts
            time.sleep(0.1)
    raise Failed(f"after {timeout:.0f} s only {counts} of {expected} leads are terminal")


def wait_processing(db: str, procs: Processes, timeout: float = 120) -> None:
    """Until a worker has written its first step (start-up done)."""
    with psycopg.connect(db, autocommit=True) as conn:
        for _ in range(int(timeout / 0.02)):
            procs.check()
            query = "SELECT EXISTS (SELECT 1 FROM lead_events WHERE type <> 'received')"
            if (conn.execute(query).fetchone() or (False,))[0]:
                return
            time.sleep(0.02)
    raise Failed(f"no worker started processing in {timeout:.0f} s")


def cpu_now(procs: Processes) -> dict[str, float]:
    """CPU seconds so far of the worker processes and of PostgreSQL (this machine's)."""
    workers = [psutil.Process(p.pid) for name, p in procs.running if name.startswith("worker")]
    return {"workers": sum(cpu_seconds(w) for w in workers), "postgres": postgres_cpu()}


def throughput(
    people: People, server: str, workers: int, leads: int, concurrency: int
) -> dict[str, Any]:
    with leadflow(server, f"throughput-{workers}") as (db, base, procs):
        sub = asyncio.run(submit(people, base, leads, None))
        started = time.time()
        for k in range(workers):
            procs.start(f"worker{k}", "worker", "--concurrency", str(concurrency))
        wait_processing(db, procs)
        cpu_before = cpu_now(procs)
        counts = wait_terminal(db, len(sub.lead_ids), procs, timeout=60 + leads / 10)
        cpu = {k: v - cpu_before[k] for k, v in cpu_now(procs).items()}
        wall = time.time() - started
        with psycopg.connect(db) as conn:
            row = conn.execute(
                "SELECT extract(epoch FROM min(at) FILTER (WHERE type <> 'received')),"
                " extract(epoch FROM max(at) FILTER (WHERE type = 'lead.route')),"
                " extract(epoch FROM min(at) FILTER (WHERE type = 'crm.synced')),"
                " extract(epoch FROM max(at) FILTER (WHERE type <> 'received')),"
                " count(*) FILTER (WHERE type = 'crm.synced'),"
                " count(DISTINCT lead_id) FILTER (WHERE type = 'crm.synced') FROM lead_events"
            ).fetchone()
    assert row is not None
    first, routed, first_sync, last = (float(x or "nan") for x in row[:4])
    n, synced = len(sub.lead_ids), int(row[4])
    return {
        "workers": workers,
        "concurrency": concurrency,
        "leads": n,
        "statuses": counts,
        "enqueue_per_s": n / sub.seconds,
        "startup_s": first - started,
        "processing_s": last - first,
        "leads_per_s": n / (last - first),
        "process_phase_per_s": n / (routed - first),
        "sync_phase_per_s": synced / (last - first_sync),
        "wall_leads_per_s": n / wall,
        "duplicate_syncs": synced - int(row[5]),
        # from a worker's first step to the last lead terminal (start-up left out)
        "worker_cpu_ms_per_lead": cpu["workers"] / n * 1000,
        "postgres_cpu_ms_per_lead": cpu["postgres"] / n * 1000,
        "target_per_s": PER_WORKER_TARGET * workers,
    }


def latency(
    people: People, server: str, rate: float, seconds: float, concurrency: int
) -> dict[str, Any]:
    with leadflow(server, "latency") as (db, base, procs):
        procs.start("worker0", "worker", "--concurrency", str(concurrency))
        warm = asyncio.run(submit(people, base, 20, rate))  # until the worker is up and warm
        wait_terminal(db, len(warm.lead_ids), procs, timeout=120)
        sub = asyncio.run(submit(people, base, round(rate * seconds), rate))
        total = len(warm.lead_ids) + len(sub.lead_ids)
        counts = wait_terminal(db, total, procs, timeout=120 + seconds)
        with psycopg.connect(db) as conn:
            rows = conn.execute(
                "SELECT extract(epoch FROM r.at - l.submitted_at) * 1000,"
                " extract(epoch FROM s.at - l.submitted_at) * 1000 FROM leads l"
                " LEFT JOIN lead_events r ON r.lead_id = l.id AND r.type = 'lead.route'"
                " LEFT JOIN lead_events s ON s.lead_id = l.id AND s.type = 'crm.synced'"
                " WHERE l.id = ANY(%s::uuid[])",
                (sub.lead_ids,),
            ).fetchall()
    routed = [float(r) for r, _ in rows if r is not None]
    synced = [float(s) for _, s in rows if s is not None]
    return {
        "rate": rate,
        "achieved_rate": len(sub.lead_ids) / sub.seconds,
        "leads": len(sub.lead_ids),
        "statuses": counts,
        **{f"routed_p{p}_ms": percentile(routed, p) for p in (50, 95, 99)},
        **{f"synced_p{p}_ms": percentile(synced, p) for p in (50, 95, 99)},
        "routed_max_ms": max(routed, default=math.nan),
        "http_p50_ms": percentile(sub.http_ms, 50),
        "http_p95_ms": percentile(sub.http_ms, 95),
        "target_p95_ms": P95_TARGET_MS,
    }


def report(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"\n{m['date']}  nproc {m['nproc']}  {m['cpu']}  Python {m['python']}", end="  ")
    print(f"load average before: {m['loadavg_before']:.2f}")
    print(f"PostgreSQL {m['postgresql']} ({result['database']}); commit {m['commit']}")
    rows: list[tuple[str, str, str, bool | None]] = []
    for t in result["throughput"]:
        label = f"throughput, {t['workers']} worker(s) x c={t['concurrency']}"
        ok = t["leads_per_s"] >= t["target_per_s"]
        rows.append((label, f"{t['leads_per_s']:.0f} leads/s", f">= {t['target_per_s']:.0f}", ok))
    lat = result["latency"]
    for what in ("routed", "synced"):
        label = f"submission -> {what} @ {lat['rate']:.0f}/s"
        measured = f"p50 {lat[f'{what}_p50_ms']:.0f} / p95 {lat[f'{what}_p95_ms']:.0f} ms"
        target = f"p95 < {P95_TARGET_MS:.0f} ms" if what == "routed" else "-"
        ok = lat[f"{what}_p95_ms"] < P95_TARGET_MS if what == "routed" else None
        rows.append((label, measured, target, ok))
    slowest = min(t["leads_per_s"] for t in result["throughput"])
    stage_lines = (
        ("validate_per_s", "validate+enrich"),
        ("score_per_s", "score"),
        ("route_per_s", "route (500 owners, 200 rules)"),
    )
    for key, label in stage_lines:
        stage = result["stages"][key]
        rows.append(
            (
                f"stage {label}, 1 core, no DB",
                f"{stage:.0f} leads/s",
                f"> {slowest:.0f} (pipeline)",
                stage > slowest,
            )
        )
    print(f"\n{'configuration':<40} {'measured':<26} {'target':<16} ok?")
    for label, measured, target, ok in rows:
        verdict = "-" if ok is None else "yes" if ok else "NO"
        print(f"{label:<40} {measured:<26} {target:<16} {verdict}")
    for t in result["throughput"]:
        print(
            f"\n{t['workers']} worker(s): {t['leads']} leads in {t['processing_s']:.1f} s "
            f"(lead.process phase {t['process_phase_per_s']:.0f}/s, crm.sync phase "
            f"{t['sync_phase_per_s']:.0f}/s); start-up {t['startup_s']:.1f} s, "
            f"{t['wall_leads_per_s']:.0f}/s with it; enqueued at {t['enqueue_per_s']:.0f}/s; "
            f"{t['statuses']}; duplicate syncs {t['duplicate_syncs']}; CPU per lead: "
            f"worker(s) {t['worker_cpu_ms_per_lead']:.2f} ms, PostgreSQL "
            f"{t['postgres_cpu_ms_per_lead']:.2f} ms (this machine's processes)"
        )
    print(
        f"\nlatency: {lat['leads']} leads at {lat['achieved_rate']:.1f}/s; p99 routed "
        f"{lat['routed_p99_ms']:.0f} ms (max {lat['routed_max_ms']:.0f}), synced "
        f"{lat['synced_p99_ms']:.0f} ms; HTTP p50 {lat['http_p50_ms']:.0f} / p95 "
        f"{lat['http_p95_ms']:.0f} ms; {lat['statuses']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=3000, help="leads per throughput run")
    parser.add_argument("--concurrency", type=int, default=10, help="jobs at once per worker")
    parser.add_argument("--rate", type=float, default=50.0, help="submissions/s, latency run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    server, database = os.environ.get("LEADFLOW_DATABASE_URL"), "LEADFLOW_DATABASE_URL"
    keep: Any = None  # the embedded server: stopped when this object goes
    if not server:
        from pgserver import get_server  # type: ignore[attr-defined]

        keep = get_server(OUT / "pg", cleanup_mode="stop")
        server, database = keep.get_uri(), "embedded pgserver"
    people = People()
    try:
        result = {
            "machine": machine(server),
            "database": database,
            "throughput": [
                throughput(people, server, w, args.leads, args.concurrency) for w in (1, 2)
            ],
            "latency": latency(people, server, args.rate, args.seconds, args.concurrency),
            # lead.validate's own logic must never be what limits the pipeline
            "stages": {
                "validate_per_s": validation_rate(),
                "score_per_s": scoring_rate(),
                "route_per_s": routing_rate(),
            },
        }
    except Failed as exc:
        print(f"bench-pipeline failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if keep is not None:
            keep.cleanup()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
