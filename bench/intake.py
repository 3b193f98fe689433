"""Intake throughput and latency against a bare FastAPI endpoint: ``make bench-intake``.

Starts ``leadflow serve --no-worker``, then ``uvicorn bench.bare_app:app`` (same uvicorn
options, one process each) on 127.0.0.1, warms each up, drives each with the same concurrent
aiohttp client and prints both side by side. Every accepted intake submission is a committed
write (lead, submission, event, consent, job), in an empty database created for the run on
the given server (dropped afterwards). The load generator runs in this process, so it
shares the machine's CPUs with the server under test, equally for both targets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from asyncio.subprocess import Process
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psutil

from bench.fresh import fresh_database

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PATH = "/v1/forms/demo/submissions"
RATE_LIMITS = "\nintake:\n  rate_limits: {per_ip: 1000000/minute, per_form: 1000000/minute}\n"
MIN_RATIO, MAX_P99_MS, MAX_ERROR_SHARE = 0.5, 50.0, 0.01
FIELDS = {
    "name": "Ana Weber",
    "org": "Acme",
    "msg": "hello",
    "utm_source": "google",
    "consent_marketing_email": "yes",
}
NOTE = "the load generator shares the CPUs with the server under test, the same for both targets"


class StartError(Exception):
    """A server did not become ready."""


@dataclass(frozen=True)
class Result:
    target: str
    requests: int
    errors: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    error_kinds: dict[str, int]
    cpu_ms: dict[str, float]  # CPU per request: the server, PostgreSQL, the load generator


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU a process has used so far (0 once it is gone)."""
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def postgres_cpu() -> float:
    """CPU so far of every PostgreSQL process on the machine (the server and its
    backends), with that of the backends that have exited (the server's children)."""
    total = 0.0
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "postgres":
            total += cpu_seconds(process)
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.children_user + times.children_system
    return total


def cpu_snapshot(server: int) -> dict[str, float]:
    """CPU so far of the server, of PostgreSQL, and of this process (the load generator)."""
    return {
        "server": cpu_seconds(psutil.Process(server)),
        "postgres": postgres_cpu(),
        "client": cpu_seconds(psutil.Process()),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def bodies(n: int, tag: str) -> list[bytes]:
    """Distinct payloads: identical ones within 10 minutes are deduplicated by design."""
    return [
        json.dumps(dict(FIELDS, email=f"user{i}.{tag}@acme-corp.com")).encode() for i in range(n)
    ]


async def wait_ready(proc: Process, name: str, base: str, log: Path, limit: float) -> None:
    """Poll GET /readyz until it answers 200, the server exits, or ``limit`` seconds pass."""
    try:
        async with aiohttp.ClientSession(base) as client, asyncio.timeout(limit):
            while proc.returncode is None:
                try:
                    async with client.get("/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.25)
    except TimeoutError as exc:
        raise StartError(f"{name} not ready after {limit:.0f}s; see {log}") from exc
    raise StartError(f"{name} exited with {proc.returncode}; see {log}")


@contextlib.asynccontextmanager
async def serving(
    name: str, cmd: list[str], env: dict[str, str], port: int, work: Path, limit: float
) -> AsyncIterator[tuple[str, int]]:
    """Run a server until the block ends; enter (with its base URL and pid) once it is ready."""
    log, base = work / f"{name}.log", f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=ROOT, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT
        )
    try:
        await wait_ready(proc, name, base, log, limit)
        yield base, proc.pid
    finally:
        if proc.returncode is None:
            proc.terminate()  # SIGTERM: uvicorn finishes the open requests and exits
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def drive(
    client: aiohttp.ClientSession, payloads: list[bytes], ok: int, concurrency: int
) -> tuple[list[float], Counter[str], float]:
    """Send each payload once over ``concurrency`` connections: latencies, errors, wall time."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    todo = iter(payloads)  # shared by the clients: they stop when the payloads run out
    headers = {"content-type": "application/json"}

    async def one_client() -> None:
        for body in todo:
            start = time.perf_counter()
            try:
                async with client.post(PATH, data=body, headers=headers) as response:
                    await response.read()
                kind = "" if response.status == ok else str(response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                kind = type(exc).__name__
            latencies.append(time.perf_counter() - start)
            if kind:
                errors[kind] += 1

    start = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - start


async def measure(
    target: str, served: tuple[str, int], ok: int, args: argparse.Namespace
) -> Result:
    base, pid = served
    tag = uuid.uuid4().hex[:8]  # new emails each run, even against the same database
    pool = aiohttp.TCPConnector(limit=args.concurrency)  # one connection per client
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base, connector=pool, timeout=timeout) as client:
        await drive(client, bodies(args.warmup, f"warmup.{tag}"), ok, args.concurrency)
        payloads = bodies(args.requests, tag)
        before = cpu_snapshot(pid)
        latencies, errors, seconds = await drive(client, payloads, ok, args.concurrency)
        after = cpu_snapshot(pid)
    ms = [round(cut * 1000, 2) for cut in statistics.quantiles(latencies, n=100)]
    n = len(latencies)
    rate, secs = round(n / seconds, 1), round(seconds, 2)
    cpu = {k: round((after[k] - before[k]) * 1000 / n, 3) for k in before}
    return Result(target, n, errors.total(), secs, rate, ms[49], ms[98], dict(errors), cpu)


async def run(args: argparse.Namespace, work: Path) -> list[Result]:
    demo = resources.files("leadflow.config").joinpath("demo.yaml").read_text(encoding="utf-8")
    (work / "leadflow.yaml").write_text(demo + RATE_LIMITS, encoding="utf-8")
    env = dict(os.environ, LEADFLOW_CONFIG=str(work / "leadflow.yaml"))
    env.update(LEADFLOW_ADMIN_TOKEN="bench-token", LEADFLOW_DATA_DIR=str(work / "data"))
    env.pop("LEADFLOW_DATABASE_URL", None)
    port = free_port()
    cmd = [sys.executable, "-m", "leadflow", "serve", "--no-worker", "--port", str(port)]
    with contextlib.ExitStack() as stack:
        if args.database_url:  # an empty database of its own on that server, every run
            env["LEADFLOW_DATABASE_URL"] = stack.enter_context(
                fresh_database(args.database_url, "bench_intake")
            )
        async with serving("intake", cmd, env, port, work, args.start_timeout) as served:
            intake = await measure("intake (leadflow)", served, 202, args)
    port = free_port()  # the options that leadflow serve passes to uvicorn.run (cli.py)
    cmd = [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--proxy-headers", "--no-access-log", "--forwarded-allow-ips"]
    cmd += [env.get("LEADFLOW_TRUSTED_PROXIES", "127.0.0.1")]
    cmd += ["--log-level", env.get("LEADFLOW_LOG_LEVEL", "INFO").lower()]
    async with serving("bare", cmd, env, port, work, args.start_timeout) as served:
        bare = await measure("bare FastAPI", served, 200, args)
    return [intake, bare]


def stop_orphaned_postgres(pgdata: Path) -> None:
    """``leadflow serve`` exits on SIGTERM without stopping its embedded PostgreSQL: stop it."""
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text(encoding="utf-8").split()[0])
    print(f"bench-intake: stopping embedded PostgreSQL {pid}, left by the server", file=sys.stderr)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)  # PostgreSQL's fast shutdown
    for _ in range(120):  # up to 30 s
        if not pidfile.exists():
            return
        time.sleep(0.25)


def report(args: argparse.Namespace, results: list[Result], loadavg: float) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "?")
    url = urlsplit(args.database_url or "")  # shown without credentials
    db = f"external {url.scheme}://{url.hostname}:{url.port or 5432}, a new database each run"
    ratio = results[0].per_second / results[1].per_second
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": cpu,
            "python": platform.python_version(),
            "loadavg_1m_before": round(loadavg, 2),
        },
        "database": db if args.database_url else "embedded PostgreSQL (pgserver, in bench/out/)",
        "load": {
            "requests": args.requests,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "client": f"aiohttp {aiohttp.__version__}, in the benchmark process",
            "note": NOTE,
        },
        "results": [asdict(r) for r in results],
        "throughput_ratio": round(ratio, 3),
        "targets_met": {
            "throughput_ratio_at_least_0.5": ratio >= MIN_RATIO,
            "intake_p99_below_50ms": results[0].p99_ms < MAX_P99_MS,
        },
    }


def print_table(data: dict[str, Any]) -> None:
    m, load = data["machine"], data["load"]
    print(f"bench-intake  {data['date']}")
    print(f"machine:  {m['nproc']} CPUs, {m['cpu']}, Python {m['python']}, ", end="")
    print(f"load average {m['loadavg_1m_before']:.2f} before the run")
    print(f"database: {data['database']}")
    print(f"load:     {load['requests']} requests per target (+{load['warmup']} warm-up), ", end="")
    print(f"{load['concurrency']} connections, {load['client']}")
    print(f"note:     {load['note']}")
    print(f"\n{'':<46}{'CPU ms per request':>30}")
    print(
        f"{'target':<20}{'requests':>9}{'errors':>8}{'subm/s':>10}{'p50 ms':>9}{'p99 ms':>9}",
        end="",
    )
    print(f"{'server':>10}{'postgres':>10}{'client':>10}")
    for r in data["results"]:
        cpu = r["cpu_ms"]
        print(
            f"{r['target']:<20}{r['requests']:>9}{r['errors']:>8}{r['per_second']:>10.1f}"
            f"{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
            f"{cpu['server']:>10.3f}{cpu['postgres']:>10.3f}{cpu['client']:>10.3f}"
            f"  {r['error_kinds'] or ''}"
        )
    met = ["MISSED", "met"]
    ratio, p99 = data["throughput_ratio"], data["results"][0]["p99_ms"]
    ratio_ok, p99_ok = data["targets_met"].values()
    print(f"\nintake/bare throughput {ratio:.2f}: target >= {MIN_RATIO} {met[ratio_ok]}")
    print(f"intake p99 {p99:.1f} ms: target < {MAX_P99_MS:.0f} ms {met[p99_ok]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__)
    parser.add_argument("--requests", type=int, default=4000, help="measured, per target")
    parser.add_argument("--concurrency", type=int, default=64, help="client connections")
    parser.add_argument("--warmup", type=int, default=200, help="not measured, per target")
    parser.add_argument("--start-timeout", type=float, default=180.0, help="seconds per server")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LEADFLOW_DATABASE_URL") or None,
        help="default: LEADFLOW_DATABASE_URL; unset: the embedded PostgreSQL",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.requests < 2 or args.concurrency < 1 or args.warmup < 0:
        parser.error("needs --requests >= 2, --concurrency >= 1, --warmup >= 0")
    loadavg = os.getloadavg()[0]  # other work on the machine skews the figures: show it
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="intake-", dir=OUT))
    try:
        results = asyncio.run(run(args, work))
    except StartError as exc:
        print(f"bench-intake: {exc}", file=sys.stderr)
        return 2
    finally:
        stop_orphaned_postgres(work / "data" / "postgres")
    data = report(args, results, loadavg)
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
