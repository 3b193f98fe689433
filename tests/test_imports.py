"""Every module a process may load first imports on its own (no import cycles)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# What procrastinate's own CLI and workers load first (job_app's import_paths), and
# the modules a process may start from.
FIRST = [
    "leadflow.pipeline.tasks",
    "leadflow.pipeline.worker",
    "leadflow.intake.service",
    "leadflow.runtime",
]


@pytest.mark.parametrize("module", FIRST)
def test_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_queue_finds_its_tasks_by_import_path() -> None:
    code = (
        "from leadflow.jobs import job_app; job_app.perform_import_paths(); "
        "print(sorted(job_app.tasks))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "lead.process" in done.stdout
