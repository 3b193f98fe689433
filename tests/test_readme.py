"""The README's commands, run as a newcomer types them, against a real ``leadflow serve``.

Every ``console`` and ``sh`` block of README.md runs, in order, in one folder, with
``leadflow`` on the PATH and a server on a free port where the README says
``127.0.0.1:8000``; each console command must exit 0 and print the lines shown under
it. A command whose output is not there yet (a lead still on its way) is run again for
a few seconds, as a reader would. So an example cannot go stale.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadflow.config import load_config_text
from tests.processes import Process, free_port, wait_ready
from tests.readme import Block, Command, blocks

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHELL = {"console", "sh", "bash", "shell"}
RETRY_FOR = 15.0  # seconds: the pipeline routes a lead in well under a second


def runnable() -> list[Block]:
    return [b for b in blocks(README) if b.lang in SHELL and b.not_run is None]


def test_every_shell_block_of_the_readme_runs_or_says_why_not() -> None:
    shell = [b for b in blocks(README) if b.lang in SHELL]
    assert shell, "the README shows no commands"
    assert {b.lang for b in shell} <= {"console", "sh"}, "write shell blocks as console or sh"
    assert all(b.commands for b in shell if b.lang == "console")
    assert len(runnable()) >= 3


@pytest.fixture
def newcomer(tmp_path: Path, fresh_database: str) -> Iterator[tuple[dict[str, str], str]]:
    """A shell environment like the README reader's, and the server it talks to."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "LEADFLOW_DATABASE_URL": fresh_database,
        "LEADFLOW_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "200",  # tables as wide as they are, not wrapped
    }
    port = free_port()
    server = Process(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    try:
        wait_ready(f"http://127.0.0.1:{port}", server)
        yield env, f"127.0.0.1:{port}"
    finally:
        server.stop()


def _run(
    command: str, env: dict[str, str], cwd: Path, host: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command.replace("127.0.0.1:8000", host)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _check(command: Command, env: dict[str, str], cwd: Path, host: str) -> None:
    deadline = time.monotonic() + RETRY_FOR
    while True:
        done = _run(command.command, env, cwd, host)
        output = done.stdout + done.stderr
        missing = None if done.returncode else command.missing(output)
        if done.returncode == 0 and missing is None:
            return
        if time.monotonic() > deadline:
            why = f"exit {done.returncode}" if done.returncode else f"no line {missing!r}"
            shown = f"README.md:{command.line}: $ {command.command}"
            pytest.fail(f"{shown}\n{why}; it printed:\n{output}")
        time.sleep(0.5)


def test_the_readme_examples_run_and_print_what_it_shows(
    newcomer: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, host = newcomer
    work = tmp_path / "work"
    work.mkdir()
    for block in runnable():
        if block.lang == "sh":
            done = _run(block.text, env, work, host)
            assert done.returncode == 0, f"README.md:{block.line}:\n{done.stdout}{done.stderr}"
        for command in block.commands:
            _check(command, env, work, host)


def test_a_shown_line_must_be_printed_in_order(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Run it:\n\n```console\n$ leadflow thing \\\n    --flag\nstatus: routed\nScore … (hot)\n"
        "$ other\n```\n\n<!-- not run: needs a browser -->\n```sh\nopen x\n```\n"
    )
    first, second = blocks(page)
    assert second.not_run == "needs a browser"
    thing, other = first.commands
    assert (thing.line, thing.command) == (4, "leadflow thing --flag")
    assert thing.missing("x\nstatus:   routed\nScore 70 (hot): Decision maker\n") is None
    assert thing.missing("Score 70 (hot)\nstatus: routed\n") == "Score … (hot)"  # order counts
    assert thing.missing("status: received\n") == "status: routed"
    assert other.expected == ()


def test_every_config_the_readme_shows_is_valid() -> None:
    shown = [b for b in blocks(README) if b.lang == "yaml"]
    assert shown, "the README shows no config"
    for block in shown:
        config = load_config_text(block.text, f"README.md:{block.line}")  # raises, naming the line
        assert config.model_fields_set, f"README.md:{block.line}: an empty config"
