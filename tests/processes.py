"""Real Leadflow processes for tests: start, wait until ready, submit as a form tool would, stop.

A process's stderr goes to a file (a pipe nobody reads fills up and blocks a chatty
process); ``log()`` reads it back.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx
import psycopg
from psycopg.rows import dict_row

from leadflow.connectors.fakes import RecordingCrm


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def leadflow_env(tmp_path: Path, url: str, config: str, **settings: str) -> dict[str, str]:
    """The environment of a deployment's processes: ``config`` written to
    ``tmp_path/leadflow.yaml``, the database at ``url``, and ``settings`` as LEADFLOW_*."""
    path = tmp_path / "leadflow.yaml"
    path.write_text(config)
    return {
        **os.environ,
        "LEADFLOW_DATABASE_URL": url,
        "LEADFLOW_ADMIN_TOKEN": "t",
        "LEADFLOW_DATA_DIR": str(tmp_path),
        "LEADFLOW_CONFIG": str(path),
        "LEADFLOW_LOG_LEVEL": "WARNING",
        **{f"LEADFLOW_{name.upper()}": value for name, value in settings.items()},
    }


class Process:
    """``python -m leadflow ARGS`` with ``env``; its stderr in ``log_path``."""

    def __init__(
        self, args: list[str], env: dict[str, str], log_path: Path, cwd: Path | None = None
    ) -> None:
        self.args = args
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "leadflow", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            assert self.alive(), f"{self.args} exited:\n{self.log()}"
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not logged by {self.args} in {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as a supervisor would; SIGKILL if it does not end in ``timeout``."""
        if self.alive():
            self.popen.terminate()
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            code = self.popen.wait()
        self._log.close()
        return code

    def kill(self) -> None:
        self.popen.kill()
        self.popen.wait()
        self._log.close()


class Running(Protocol):
    """What ``wait_ready`` watches: a process that may die, and what it logged."""

    def alive(self) -> bool: ...

    def log(self) -> str: ...


def wait_ready(base: str, process: Running, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.alive(), process.log()
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"leadflow serve did not become ready within {timeout}s")


def submit(
    base: str | Sequence[str],
    keys: list[str],
    acknowledged: dict[str, str],
    stop: threading.Event | None = None,
    *,
    forwarded_for: Callable[[str], str] | None = None,
) -> None:
    """Post one submission per key until each is acknowledged (202), as a form tool does:
    on a refused connection or a 503 it tries again later with the same Idempotency-Key.

    With several bases (API replicas), the attempts go round them, as through a load
    balancer: a replica that is down sends the retry to the next one. ``forwarded_for``
    gives each key's client address (X-Forwarded-For, believed from 127.0.0.1)."""
    bases = [base] if isinstance(base, str) else list(base)
    turns = itertools.count()
    with httpx.Client(timeout=5) as client:
        for key in keys:
            headers = {"Idempotency-Key": key}
            if forwarded_for is not None:
                headers["X-Forwarded-For"] = forwarded_for(key)
            while stop is None or not stop.is_set():
                try:
                    response = client.post(
                        f"{bases[next(turns) % len(bases)]}/v1/forms/contact/submissions",
                        json={"email": f"{key}@acme.de", "name": f"Person {key}"},
                        headers=headers,
                    )
                except httpx.TransportError:
                    time.sleep(0.05)
                    continue
                if response.status_code == 202:
                    acknowledged[key] = response.json()["lead_id"]
                    break
                assert response.status_code == 503, response.text  # never a 500
                time.sleep(min(float(response.headers.get("Retry-After", "1")), 0.5))


def submitting(
    base: str | Sequence[str],
    keys: list[str],
    acknowledged: dict[str, str],
    *,
    forwarded_for: Callable[[str], str] | None = None,
) -> threading.Thread:
    """``submit`` in a thread of its own (join it)."""
    thread = threading.Thread(
        target=submit,
        args=(base, keys, acknowledged),
        kwargs={"forwarded_for": forwarded_for},
        daemon=True,
    )
    thread.start()
    return thread


def statuses(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row, connect_timeout=5) as db:
        rows = db.execute("SELECT status, count(*) AS n FROM leads GROUP BY status").fetchall()
    return {row["status"]: row["n"] for row in rows}


def wait_final(url: str, expected: dict[str, int], timeout: float = 120) -> None:
    """Wait until the leads' statuses are ``expected`` (say {"synced": 300})."""
    deadline = time.monotonic() + timeout
    seen: dict[str, int] = {}
    while time.monotonic() < deadline:
        try:
            seen = statuses(url)
        except psycopg.OperationalError:
            seen = {}
        if seen == expected:
            return
        time.sleep(0.5)
    raise AssertionError(f"leads are {seen}, expected {expected}")


def timeline_counts(url: str) -> dict[str, tuple[int, int]]:
    """Per event type of the pipeline: (events, distinct leads)."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as db:
        rows = db.execute(
            "SELECT type, count(*) AS n, count(DISTINCT lead_id) AS leads FROM lead_events "
            "WHERE type IN ('received', 'lead.route', 'crm.synced') GROUP BY type"
        ).fetchall()
    return {row["type"]: (row["n"], row["leads"]) for row in rows}


def lead_ids(url: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as db:
        return {row[0] for row in db.execute("SELECT id::text FROM leads").fetchall()}


def scalar(url: str, sql: str) -> Any:
    with psycopg.connect(url, autocommit=True) as db:
        row = db.execute(sql).fetchone()
        return None if row is None else row[0]


def count_or_none(url: str, sql: str) -> int | None:
    """``sql``'s count, or None while the database or the table is not there yet."""
    try:
        return int(scalar(url, sql))
    except psycopg.Error:
        return None


def wait_running(url: str, worker: Process, timeout: float = 90) -> None:
    """Wait until ``worker`` says in its heartbeat that it is running."""
    sql = f"SELECT count(*) FROM worker_heartbeats WHERE pid = {worker.pid} AND state = 'running'"
    deadline = time.monotonic() + timeout
    while count_or_none(url, sql) != 1:
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.1)


def assert_each_lead_once(url: str, crm_log: Path, acknowledged: dict[str, str]) -> None:
    """Every acknowledged lead is there and no other, each received, routed and synced
    once, and created once in the (recording) CRM writing to ``crm_log``."""
    n = len(acknowledged)
    assert lead_ids(url) == set(acknowledged.values())  # none lost, none extra
    assert timeline_counts(url) == {
        "received": (n, n),
        "lead.route": (n, n),
        "crm.synced": (n, n),
    }
    creates = [c for c in RecordingCrm(crm_log).calls() if c["action"] == "create"]
    assert sorted(c["lead"]["lead_id"] for c in creates) == sorted(acknowledged.values())
