"""Intake throughput, latency and CPU beside a bare durable endpoint: ``make bench-intake``.

Starts ``leadflow serve --no-worker`` and ``uvicorn bench.bare_app:app`` (a bare FastAPI
endpoint that stores each JSON body with one INSERT + COMMIT through psycopg's pool) on
127.0.0.1, one process each with the same uvicorn options, against the same empty
database (created for the run, dropped afterwards) on the same PostgreSQL. Then, for each
round and each number of connections, it ANALYZEs the database (as autovacuum would) and
drives one target after the other with the same client (``bench/intake_load.py``), and
prints them side by side. Every accepted intake
submission is a committed write (lead, submission, event, consent, job); every accepted
bare one a committed row. The load generator runs in this process and shares the
machine's CPUs with the servers under test, equally for every target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psycopg
from sqlalchemy.engine import make_url

from bench.fresh import fresh_database
from bench.intake_load import (
    ROOT,
    Result,
    StartError,
    Target,
    free_port,
    measure,
    serving,
)
from leadflow.db import libpq_url

OUT = ROOT / "bench" / "out"
PATH = "/v1/forms/demo/submissions"
RATE_LIMITS = "\nintake:\n  rate_limits: {per_ip: 1000000/minute, per_form: 1000000/minute}\n"
MIN_RATIO, MAX_P99_MS, P99_AT, MAX_ERROR_SHARE = 1.0, 50.0, 32, 0.01
LEADFLOW, BASELINE = "leadflow intake", "leadflow baseline"
BARE, ECHO = "bare durable", "bare echo (no DB)"
NOTE = (
    "the load generator shares the CPUs with the servers under test, the same for all;\n"
    "          PG: the run's database's backends; PG bg: WAL writer, checkpointer, background\n"
    "          writer, which also work for the server's other databases"
)


@contextlib.contextmanager
def database(server: str | None, work: Path) -> Iterator[str]:
    """An empty database for the run: on ``server``, else on a PostgreSQL of its own."""
    with contextlib.ExitStack() as stack:
        if server is None:
            from pgserver import get_server  # type: ignore[attr-defined]

            pg = get_server(work / "postgres", cleanup_mode="stop")
            stack.callback(pg.cleanup)
            server = str(pg.get_uri())
        yield stack.enter_context(fresh_database(server, "bench_intake"))


async def analyze(url: str) -> None:
    """Statistics for the planner, as autovacuum keeps them on a server that has run a
    while. Without any (a new database on a server with autovacuum off), PostgreSQL
    checked each new row's foreign key to its lead by scanning the whole
    ``(created_at, id)`` index instead of the primary key: its CPU per submission grew
    with the table, 0.6 to 1.4 ms over 12,000 submissions, and a run measured its length."""
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        await conn.execute("ANALYZE")


def uvicorn_options(env: dict[str, str], port: int) -> list[str]:
    """The options that ``leadflow serve`` passes to uvicorn.run (cli.py)."""
    proxies = env.get("LEADFLOW_TRUSTED_PROXIES", "127.0.0.1")
    level = env.get("LEADFLOW_LOG_LEVEL", "INFO").lower()
    return [
        *("--host", "127.0.0.1", "--port", str(port), "--proxy-headers", "--no-access-log"),
        *("--forwarded-allow-ips", proxies, "--log-level", level),
    ]


async def run(args: argparse.Namespace, url: str, work: Path) -> list[Result]:
    demo = resources.files("leadflow.config").joinpath("demo.yaml").read_text(encoding="utf-8")
    (work / "leadflow.yaml").write_text(demo + RATE_LIMITS, encoding="utf-8")
    env = dict(os.environ, LEADFLOW_CONFIG=str(work / "leadflow.yaml"))
    env.update(LEADFLOW_ADMIN_TOKEN="bench-token", LEADFLOW_DATA_DIR=str(work / "data"))
    env["LEADFLOW_DATABASE_URL"] = url
    name = str(make_url(url).database)
    ports = free_port(), free_port()
    leadflow = [sys.executable, "-m", "leadflow", "serve", "--no-worker", "--port", str(ports[0])]
    bare = [sys.executable, "-m", "uvicorn", "bench.bare_app:app", *uvicorn_options(env, ports[1])]
    limit = args.start_timeout
    async with contextlib.AsyncExitStack() as stack:
        base, pid = await stack.enter_async_context(
            serving("leadflow", leadflow, env, ports[0], work, limit)
        )
        targets = [Target(LEADFLOW, base, pid, PATH, 202)]
        if args.baseline:  # the same, from another source tree: before and after in one run
            port = free_port()
            cmd = [*leadflow[:-1], str(port)]
            other = dict(env, PYTHONPATH=os.pathsep.join([str(args.baseline), str(ROOT)]))
            base, pid = await stack.enter_async_context(
                serving("baseline", cmd, other, port, work, limit)
            )
            targets.append(Target(BASELINE, base, pid, PATH, 202))
        base, pid = await stack.enter_async_context(
            serving("bare", bare, env, ports[1], work, limit)
        )
        targets.append(Target(BARE, base, pid, PATH, 202))
        if args.echo:
            targets.append(Target(ECHO, base, pid, "/echo" + PATH, 202))
        results = []
        for _ in range(args.rounds):
            for connections in args.connections:
                for target in targets:
                    if args.analyze:
                        await analyze(url)
                    results.append(
                        await measure(target, name, connections, args.requests, args.warmup)
                    )
    return results


def median_of(results: list[Result], target: str, connections: int, key: str) -> float:
    return statistics.median(
        getattr(r, key) for r in results if r.target == target and r.connections == connections
    )


def targets_met(results: list[Result], connections: list[int]) -> dict[str, Any]:
    """The targets, on the median of the rounds: throughput ratio, and p99 at 32."""
    met: dict[str, Any] = {}
    for c in connections:
        ratio = median_of(results, LEADFLOW, c, "per_second") / median_of(
            results, BARE, c, "per_second"
        )
        met[f"ratio_{c}"] = round(ratio, 3)
        met[f"ratio_{c}_at_least_{MIN_RATIO}"] = ratio >= MIN_RATIO
    if P99_AT in connections:
        p99 = median_of(results, LEADFLOW, P99_AT, "p99_ms")
        met[f"p99_{P99_AT}_ms"] = p99
        met[f"p99_{P99_AT}_below_{MAX_P99_MS:.0f}_ms"] = p99 < MAX_P99_MS
    return met


def report(
    args: argparse.Namespace, results: list[Result], loadavg: tuple[float, float]
) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "?")
    url = urlsplit(args.database_url or "")  # shown without credentials
    db = f"external {url.scheme}://{url.hostname}:{url.port or 5432}, a new database each run"
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": cpu,
            "python": platform.python_version(),
            "loadavg_1m_before": round(loadavg[0], 2),
            "loadavg_1m_after": round(loadavg[1], 2),
        },
        "database": db if args.database_url else "embedded PostgreSQL (pgserver, in bench/out/)",
        "load": {
            "requests": args.requests,
            "warmup": args.warmup,
            "connections": args.connections,
            "rounds": args.rounds,
            "analyze": args.analyze,
            "client": f"aiohttp {aiohttp.__version__}, in the benchmark process",
            "note": NOTE,
        },
        "results": [asdict(r) for r in results],
        "targets": targets_met(results, args.connections),
    }


def print_table(data: dict[str, Any]) -> None:
    m, load = data["machine"], data["load"]
    print(f"bench-intake  {data['date']}")
    print(f"machine:  {m['nproc']} CPUs, {m['cpu']}, Python {m['python']}, load average ", end="")
    print(f"{m['loadavg_1m_before']:.2f} before the run, {m['loadavg_1m_after']:.2f} after")
    print(f"database: {data['database']}")
    print(f"load:     {load['requests']} requests per target and row (+{load['warmup']} warm-up),")
    analyzed = "ANALYZE before each row" if load["analyze"] else "never ANALYZEd"
    print(f"          {load['rounds']} round(s), {analyzed}, {load['client']}")
    print(f"note:     {load['note']}")
    print(f"\n{'':<34}{'ms':>18}{'CPU ms per submission':>38}")
    print(f"{'target':<20}{'conns':>6}{'subm/s':>8}{'p50':>9}{'p99':>9}", end="")
    print(f"{'API':>8}{'PG':>8}{'PG bg':>8}{'client':>8}  errors")
    for r in data["results"]:
        cpu = r["cpu_ms"]
        print(
            f"{r['target']:<20}{r['connections']:>6}{r['per_second']:>8.0f}"
            f"{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
            f"{cpu['server']:>8.3f}{cpu['postgres']:>8.3f}{cpu['pg_shared']:>8.3f}"
            f"{cpu['client']:>8.3f}"
            f"  {r['errors']} {r['error_kinds'] or ''}"
        )
    met, t = ["MISSED", "met"], data["targets"]
    rounds = " (medians of the rounds)" if load["rounds"] > 1 else ""
    print(f"\ntargets{rounds}:")
    for c in load["connections"]:
        ok = t[f"ratio_{c}_at_least_{MIN_RATIO}"]
        print(f"  {c:>3} connections: leadflow/bare durable throughput ", end="")
        print(f"{t[f'ratio_{c}']:.2f}x, target >= {MIN_RATIO:.1f}x: {met[ok]}")
    if f"p99_{P99_AT}_ms" in t:
        ok = t[f"p99_{P99_AT}_below_{MAX_P99_MS:.0f}_ms"]
        print(f"  {P99_AT:>3} connections: leadflow p99 {t[f'p99_{P99_AT}_ms']:.1f} ms, ", end="")
        print(f"target < {MAX_P99_MS:.0f} ms: {met[ok]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__)
    parser.add_argument("--requests", type=int, default=4000, help="measured, per target and row")
    parser.add_argument(
        "--connections", type=int, nargs="+", default=[32, 64], help="client connections"
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat every row this many times")
    parser.add_argument("--warmup", type=int, default=200, help="not measured, per row")
    parser.add_argument("--echo", action="store_true", help="add the bare echo (no database)")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also run Leadflow from this source tree (its src/ directory), e.g. of main",
    )
    parser.add_argument("--start-timeout", type=float, default=180.0, help="seconds per server")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LEADFLOW_DATABASE_URL") or None,
        help="default: LEADFLOW_DATABASE_URL; unset: a PostgreSQL of the run's own (pgserver)",
    )
    parser.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        help="do not ANALYZE the database before each row (a never-analyzed database)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.requests < 2 or min(args.connections) < 1 or args.warmup < 0 or args.rounds < 1:
        parser.error("needs --requests >= 2, --connections >= 1, --warmup >= 0, --rounds >= 1")
    before = os.getloadavg()[0]  # other work on the machine skews the figures: show it
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="intake-", dir=OUT))
    try:
        with database(args.database_url, work) as url:
            results = asyncio.run(run(args, url, work))
    except StartError as exc:
        print(f"bench-intake: {exc}", file=sys.stderr)
        return 2
    data = report(args, results, (before, os.getloadavg()[0]))
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print_table(data)
    failed = [r.target for r in results if r.errors > MAX_ERROR_SHARE * r.requests]
    if failed:
        print(f"bench-intake: over 1% errors: {', '.join(failed)}; logs in {work}", file=sys.stderr)
        return 1
    shutil.rmtree(work, ignore_errors=True)  # a good run's logs and data are not needed
    return 0


if __name__ == "__main__":
    sys.exit(main())
