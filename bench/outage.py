"""``make bench-pipeline``, its outage part: how fast the pipeline comes back after the database.

A private PostgreSQL cluster (tests/pgcluster.py) under ``leadflow serve --no-worker`` and one
``leadflow worker``, the demo config and the recording CRM. Submissions arrive at a steady rate
(50/s) throughout; the client retries a 503 or a refused connection with the same
Idempotency-Key after the Retry-After (at most 1 s), as a form tool does. After a warm-up the
cluster is stopped (``pg_ctl -m fast``: every session cut) for 30 s and started again. Measured
from the moment ``pg_ctl start`` returns:

- first lead routed: the first ``lead.route`` event after the database is back;
- backlog drained: the last lead of the backlog (acknowledged before the outage but not yet
  routed, or submitted during it) routed, and synced.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import psycopg

from bench.harness import FORM, Failed, Processes, run_processes, start_serve
from bench.people import People
from tests.pgcluster import Cluster

FIRST_ROUTED_TARGET_S = 10.0
DRAINED_TARGET_S = 60.0


@dataclass
class Load:
    """What the steady submitter saw: per lead, when it was first tried and acknowledged."""

    tried: dict[str, float] = field(default_factory=dict)  # lead id -> first attempt (epoch s)
    refused: int = 0
    errors: list[str] = field(default_factory=list)


async def steady(people: People, base: str, rate: float, until: float, load: Load) -> None:
    """Submit at ``rate`` until ``until``, every submission retried until acknowledged.

    aiohttp with at most 64 connections, like a crowd of browsers behind a proxy:
    httpx's pool spends O(n^2) time choosing among a thousand waiting requests."""
    connector = aiohttp.TCPConnector(limit=64)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as client:

        async def one(body: dict[str, str]) -> None:
            key, first = secrets.token_hex(8), time.time()
            while True:
                try:
                    async with client.post(
                        f"/v1/forms/{FORM}/submissions", json=body, headers={"Idempotency-Key": key}
                    ) as response:
                        status, text = response.status, await response.text()
                        retry_after = response.headers.get("Retry-After", "1")
                except (aiohttp.ClientError, TimeoutError):
                    load.refused += 1
                    await asyncio.sleep(1)
                    continue
                if status == 202:
                    load.tried[json.loads(text)["lead_id"]] = first
                    return
                if status != 503:
                    load.errors.append(f"{status} {text[:200]}")
                    return
                load.refused += 1
                await asyncio.sleep(min(float(retry_after), 1.0))

        t0 = time.time()
        bodies = [people.payload() for _ in range(int((until - t0) * rate))]  # made up front
        tasks, t0 = [], time.time()
        for i, body in enumerate(bodies):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.time()))
            tasks.append(asyncio.create_task(one(body)))
        await asyncio.gather(*tasks)


def measure(rate: float, outage: float, warmup: float, after: float) -> dict[str, float]:
    cluster = Cluster(max_connections=200)
    procs = run_processes("outage", cluster.url)
    load = Load()
    try:
        base = start_serve(procs)
        procs.start("worker", "worker")
        people = People()
        start = time.time()
        end = start + warmup + outage + after

        async def run() -> tuple[float, float]:
            submitter = asyncio.create_task(steady(people, base, rate, end, load))
            await asyncio.sleep(warmup)
            down = time.time()
            await asyncio.to_thread(cluster.stop, "fast")
            await asyncio.sleep(outage)
            await asyncio.to_thread(cluster.start)
            back = time.time()
            await submitter
            return down, back

        down, back = asyncio.run(run())
        if load.errors:
            raise Failed(f"{len(load.errors)} submissions failed, e.g. {load.errors[0]}")
        backlog = wait_drained(cluster.url, load, procs, down, back)
    finally:
        procs.stop()
        cluster.destroy()
    return {"outage_s": back - down, "refused": load.refused, **backlog}


def wait_drained(
    url: str, load: Load, procs: Processes, down: float, back: float
) -> dict[str, float]:
    """Once every acknowledged lead is synced: the figures measured from ``back``."""
    ids = list(load.tried)
    query = (
        "SELECT l.id::text, extract(epoch FROM r.at), extract(epoch FROM s.at) FROM leads l"
        " LEFT JOIN lead_events r ON r.lead_id = l.id AND r.type = 'lead.route'"
        " LEFT JOIN lead_events s ON s.lead_id = l.id AND s.type = 'crm.synced'"
        " WHERE l.id = ANY(%s::uuid[])"
    )
    deadline = time.monotonic() + 180
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            procs.check()
            rows = conn.execute(query, (ids,)).fetchall()
            if len(rows) == len(ids) and all(s is not None for _, _, s in rows):
                break
            if time.monotonic() > deadline:
                raise Failed(f"{sum(s is None for _, _, s in rows)} leads not synced in 180 s")
            time.sleep(0.5)
    routed = {lead: float(r) for lead, r, _ in rows}
    synced = {lead: float(s) for lead, _, s in rows}
    # The backlog: leads tried before the database was back and not routed before it went.
    backlog = [lead for lead, tried in load.tried.items() if tried < back and routed[lead] > down]
    after_back = [r for r in routed.values() if r >= back]
    return {
        "leads": len(ids),
        "backlog": len(backlog),
        "first_routed_s": min(after_back) - back,
        "backlog_routed_s": max(routed[lead] for lead in backlog) - back,
        "backlog_synced_s": max(synced[lead] for lead in backlog) - back,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="submissions/s throughout")
    parser.add_argument("--outage", type=float, default=30.0, help="seconds the database is down")
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--after", type=float, default=30.0, help="seconds of load after it")
    args = parser.parse_args()
    try:
        r = measure(args.rate, args.outage, args.warmup, args.after)
    except Failed as exc:
        print(f"bench-pipeline (outage) failed: {exc}", file=sys.stderr)
        return 1
    print(f"\n{datetime.now(UTC).isoformat(timespec='seconds')}  outage of the database")
    print(
        f"{r['outage_s']:.1f} s down at {args.rate:.0f} submissions/s; {r['leads']} leads, "
        f"{r['backlog']} in the backlog; {r['refused']:.0f} attempts refused (503 or no "
        "connection), retried"
    )
    rows = [
        ("back -> first lead routed", r["first_routed_s"], FIRST_ROUTED_TARGET_S),
        ("back -> backlog routed", r["backlog_routed_s"], DRAINED_TARGET_S),
        ("back -> backlog synced", r["backlog_synced_s"], DRAINED_TARGET_S),
    ]
    print(f"\n{'after a ' + format(args.outage, '.0f') + ' s outage':<40} {'measured':<12} target")
    for label, measured, target in rows:
        ok = "yes" if measured < target else "NO"
        print(f"{label:<40} {measured:<12.1f} < {target:.0f} s  {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
