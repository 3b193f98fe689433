"""The runnable examples of a Markdown file: its ``console`` and ``sh`` blocks.

A ``console`` block is a terminal session: ``$ command`` lines (a line ending in ``\\``
goes on on the next), each followed by the output a reader will see. A ``sh`` block is
a script that must succeed. A block right after a ``<!-- not run: why -->`` comment is
left out (``make serve`` itself, say, which tests/test_fresh_clone.py runs instead).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<why>.+?)\s*-->")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")


@dataclass(frozen=True)
class Command:
    """One ``$`` line of a console block and the output shown under it."""

    line: int  # in the Markdown file, 1-based
    command: str
    expected: tuple[str, ...]

    def missing(self, output: str) -> str | None:
        """The first shown line that ``output`` does not have (in order), or None.

        A shown line matches an output line that contains it, spaces collapsed;
        ``…`` in a shown line stands for anything."""
        lines = [" ".join(line.split()) for line in output.splitlines()]
        at = 0
        for shown in self.expected:
            parts = " ".join(shown.split()).split("…")
            pattern = re.compile(".*?".join(re.escape(part) for part in parts))
            while at < len(lines) and not pattern.search(lines[at]):
                at += 1
            if at == len(lines):
                return shown
            at += 1
        return None


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence
    lang: str
    text: str
    not_run: str | None = None
    commands: tuple[Command, ...] = field(default=())


def blocks(path: Path) -> list[Block]:
    """Every fenced block of the file, with its console commands parsed."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    previous = ""
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            if lines[i].strip():
                previous = lines[i]
            i += 1
            continue
        start, body = i + 1, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        i += 1
        lang = opening["lang"]
        skip = NOT_RUN.search(previous)
        commands = _commands(start + 1, body) if lang == "console" else ()
        found.append(Block(start, lang, "\n".join(body), skip["why"] if skip else None, commands))
        previous = ""
    return found


def _commands(first: int, body: list[str]) -> tuple[Command, ...]:
    commands: list[Command] = []
    n = 0
    while n < len(body):
        if not body[n].startswith("$ "):
            raise ValueError(f"line {first + n}: a console block starts with '$ ': {body[n]!r}")
        at, command = first + n, body[n][2:]
        while command.endswith("\\") and n + 1 < len(body):
            n += 1
            command = command[:-1].rstrip() + " " + body[n].strip()
        n += 1
        shown: list[str] = []
        while n < len(body) and not body[n].startswith("$ "):
            if body[n].strip():
                shown.append(body[n])
            n += 1
        commands.append(Command(at, command, tuple(shown)))
    return tuple(commands)
