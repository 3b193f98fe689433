"""Every example in a command's --help runs, as a person would paste it."""

from __future__ import annotations

import csv
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from leadflow.cli import app

runner = CliRunner()


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def examples() -> list[str]:
    """The lines under ``Examples:`` in each command's --help."""
    found = []
    for path in _commands(typer.main.get_command(app)):
        text = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"}).output
        lines = [line.strip(" │") for line in text.splitlines()]
        if "Examples:" not in lines:
            continue
        for line in lines[lines.index("Examples:") + 1 :]:
            if line.startswith("╭"):
                break
            if line.startswith("leadflow "):
                found.append(line)
    return found


EXAMPLES = examples()


def test_the_commands_that_need_examples_have_them() -> None:
    assert {shlex.split(e)[1] for e in EXAMPLES} >= {"route", "import", "dedup"}


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_help_example_runs(
    example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operator_env: None
) -> None:
    monkeypatch.chdir(tmp_path)
    with (tmp_path / "contacts.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(
            [
                ["Mail", "First Name", "Surname", "Company", "dob"],
                ["ana.weber@acme.de", "Ana", "Weber", "Acme", "1980-02-01"],
                ["ana.weber@acme.de", "Anna", "Weber", "Acme GmbH", "1980-02-01"],
                ["bob@globex.com", "Bob", "Stone", "Globex", "1975-11-30"],
            ]
        )
    (tmp_path / "accounts.csv").write_text(
        "name,domain,owner,country\nAcme,acme.de,ana@example.com,DE\n"
    )

    result = runner.invoke(app, shlex.split(example)[1:])

    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
