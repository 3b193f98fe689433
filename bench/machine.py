"""Where a benchmark ran: date, CPUs, Python, PostgreSQL, load and commit, printed beside it."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

REPOSITORY = Path(__file__).resolve().parent.parent


def machine(server: str) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    cpu = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")), "?")
    with psycopg.connect(server) as conn:
        version = (conn.execute("SHOW server_version").fetchone() or ("?",))[0]
    git = ["git", "-C", str(REPOSITORY)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True, text=True)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "postgresql": version,
        "loadavg_before": os.getloadavg()[0],
        "commit": commit.stdout.strip() + (" + uncommitted src/ changes" if dirty.stdout else ""),
    }
