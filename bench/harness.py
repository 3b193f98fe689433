"""Leadflow as bench-pipeline runs it: a fresh database, ``leadflow serve`` and workers.

The built-in demo config (its form, owners, teams, routing and scoring rules:
the stages' real logic) with the recording CRM and rate limits out of the way;
every process's output in ``bench/out/<run>/<name>.log``.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import httpx

from bench.fresh import fresh_database

OUT = Path(__file__).resolve().parent / "out"
FORM = "demo"

# The built-in demo config (its form, owners, teams, routing and scoring rules: the
# stages' real logic), the recording CRM, and rate limits out of the way.
DEMO = resources.files("leadflow.config").joinpath("demo.yaml").read_text(encoding="utf-8")

EXTRA = """
intake:
  rate_limits: {{per_ip: 1000000/minute, per_form: 1000000/minute}}
connectors:
  crm: {{kind: recording, path: {crm}}}
"""


class Failed(Exception):
    """A process did not start or died, or leads were lost: the run is not a measurement."""


class Processes:
    """``leadflow`` subprocesses of one run, their output in bench/out/<run>/<name>.log."""

    def __init__(self, env: dict[str, str], run_dir: Path) -> None:
        self.env, self.run_dir = env, run_dir
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, *args: str) -> None:
        with (self.run_dir / f"{name}.log").open("wb") as log:
            command = [sys.executable, "-m", "leadflow", *args]
            process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.running.append((name, process))

    def check(self) -> None:
        for name, process in self.running:
            if process.poll() is not None:
                raise Failed(f"{name} exited with {process.returncode}:\n{self.log(name)}")

    def log(self, name: str) -> str:
        return (self.run_dir / f"{name}.log").read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        for _, process in self.running:
            if process.poll() is None:
                process.terminate()  # SIGTERM: running jobs finish first
        for _, process in self.running:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.running.clear()


def run_processes(run: str, db: str) -> Processes:
    """The run's folder (demo config, recording CRM, data) and its processes' environment."""
    run_dir = OUT / run
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "crm.jsonl").unlink(missing_ok=True)
    (run_dir / "leadflow.yaml").write_text(DEMO + EXTRA.format(crm=run_dir / "crm.jsonl"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env |= {
        "LEADFLOW_DATABASE_URL": db,
        "LEADFLOW_ADMIN_TOKEN": secrets.token_hex(16),
        "LEADFLOW_DATA_DIR": str(run_dir / "data"),
        "LEADFLOW_CONFIG": str(run_dir / "leadflow.yaml"),
        "LEADFLOW_LOG_LEVEL": "WARNING",
    }
    return Processes(env, run_dir)


def start_serve(procs: Processes) -> str:
    """Start ``leadflow serve --no-worker`` on a free port; its base URL once it is ready."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    procs.start("serve", "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port))
    deadline = time.monotonic() + 90
    while True:
        procs.check()
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return base
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise Failed(f"leadflow serve not ready in 90 s:\n{procs.log('serve')}")
        time.sleep(0.2)


@contextmanager
def leadflow(server: str, run: str) -> Iterator[tuple[str, str, Processes]]:
    """A fresh database and a ready ``leadflow serve --no-worker``: (db url, base url, procs)."""
    with fresh_database(server) as db:
        procs = run_processes(run, db)
        try:
            yield db, start_serve(procs), procs
        finally:
            procs.stop()
