"""The servers, the load and the CPU accounting of ``bench.intake``, the same for every target.

One code path measures every target: the same payloads, the same aiohttp client in this
process, and CPU read from ``/proc`` around the measured requests: the server process's
own, that of the PostgreSQL backends that work for the run's database (told by the
database name in their process title), that of their server's WAL writer, checkpointer
and background writer (apart: they work for every database), and this process's (the
load generator).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import statistics
import time
import uuid
from asyncio.subprocess import Process
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent
FIELDS = {
    "name": "Ana Weber",
    "org": "Acme",
    "msg": "hello",
    "utm_source": "google",
    "consent_marketing_email": "yes",
}
# Processes of a PostgreSQL server that work for every database: their writes are ours too.
SHARED_WORKERS = ("walwriter", "checkpointer", "background writer")


class StartError(Exception):
    """A server did not become ready."""


@dataclass(frozen=True)
class Target:
    """A server under test, ready: what it is called, where it listens, how it answers."""

    name: str
    base: str
    pid: int
    path: str
    ok: int  # the status of an accepted submission


@dataclass(frozen=True)
class Result:
    target: str
    connections: int
    requests: int
    errors: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    error_kinds: dict[str, int]
    cpu_ms: dict[str, float]  # per request: server, PG backends, PG shared writers, client


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU a process has used so far (0 once it is gone)."""
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def postgres_processes(database: str) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """The backends connected to ``database``, and their server's shared writers.

    Other databases on the same server (other test runs on a shared machine) are left
    out, so their work does not count as ours; the shared writers work for them too,
    so they are counted apart. A backend that ends during the measured requests takes
    its CPU with it: the pools of every target keep theirs open."""
    backends: list[psutil.Process] = []
    writers: dict[int, list[psutil.Process]] = {}
    for process in psutil.process_iter(["name", "cmdline", "ppid"]):
        if process.info["name"] != "postgres":
            continue
        title = " ".join(process.info["cmdline"] or [])
        if f" {database} " in title:
            backends.append(process)
        elif any(title.rstrip().endswith(worker) for worker in SHARED_WORKERS):
            writers.setdefault(process.info["ppid"], []).append(process)
    servers = {backend.info["ppid"] for backend in backends}
    return backends, [w for server in servers for w in writers.get(server, [])]


def cpu_snapshot(server: int, database: str) -> dict[str, dict[int, float]]:
    """CPU so far of the server, of the PostgreSQL processes, of this process, by pid."""
    backends, writers = postgres_processes(database)
    return {
        "server": {server: cpu_seconds(psutil.Process(server))},
        "postgres": {p.pid: cpu_seconds(p) for p in backends},
        "pg_shared": {p.pid: cpu_seconds(p) for p in writers},
        "client": {0: cpu_seconds(psutil.Process())},
    }


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU between two snapshots; a process that appeared in between counts whole."""
    return sum(spent - before.get(pid, 0.0) for pid, spent in after.items())


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
    client: aiohttp.ClientSession, target: Target, payloads: list[bytes], concurrency: int
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
                async with client.post(target.path, data=body, headers=headers) as response:
                    await response.read()
                kind = "" if response.status == target.ok else str(response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                kind = type(exc).__name__
            latencies.append(time.perf_counter() - start)
            if kind:
                errors[kind] += 1

    start = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - start


async def measure(
    target: Target, database: str, connections: int, requests: int, warmup: int
) -> Result:
    """Warm ``target`` up, then send ``requests`` new submissions over ``connections``."""
    tag = uuid.uuid4().hex[:8]  # new emails each run, even against the same database
    pool = aiohttp.TCPConnector(limit=connections)  # one connection per client
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(target.base, connector=pool, timeout=timeout) as client:
        await drive(client, target, bodies(warmup, f"warmup.{tag}"), connections)
        payloads = bodies(requests, tag)
        before = cpu_snapshot(target.pid, database)
        latencies, errors, seconds = await drive(client, target, payloads, connections)
        after = cpu_snapshot(target.pid, database)
    ms = [round(cut * 1000, 2) for cut in statistics.quantiles(latencies, n=100)]
    n = len(latencies)
    cpu = {k: round(cpu_used(before[k], after[k]) * 1000 / n, 3) for k in before}
    return Result(
        target=target.name,
        connections=connections,
        requests=n,
        errors=errors.total(),
        seconds=round(seconds, 2),
        per_second=round(n / seconds, 1),
        p50_ms=ms[49],
        p99_ms=ms[98],
        error_kinds=dict(errors),
        cpu_ms=cpu,
    )


def postgres_cpu() -> float:
    """CPU so far of every PostgreSQL process on the machine (the server and its
    backends), with that of the backends that have exited (the server's children).
    bench-pipeline's figure: its workers' backends come and go across databases."""
    total = 0.0
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "postgres":
            total += cpu_seconds(process)
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.children_user + times.children_system
    return total
