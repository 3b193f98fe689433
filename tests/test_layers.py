"""The layers hold: no import loop in src/, no stage reaching up into the pipeline or an edge.

contract (stage.py, jobs.py, models, config, fields.py) -> stages -> orchestrator
(pipeline) -> edges (app.py, cli.py, each stage's endpoints and cli). An arrow only
points down; a stage asks for a later step by deferring a job by name (jobs.py).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.layers import cycles, described, import_graph, violations, write_tree

SRC = Path(__file__).resolve().parents[1] / "src"

# What is left to fix, each an exact loop or import of the tree: none today. Not a
# licence: the test fails when one of them is fixed, so that it leaves the list too.
KNOWN_LOOPS: set[frozenset[str]] = set()
KNOWN_VIOLATIONS: set[str] = set()


def test_no_module_of_src_is_part_of_an_import_loop() -> None:
    loops = cycles(import_graph(SRC, "leadflow"))
    new = [loop for loop in loops if loop.members not in KNOWN_LOOPS]
    assert not new, "import loops:\n" + described(new)
    fixed = KNOWN_LOOPS - {loop.members for loop in loops}
    assert not fixed, f"no such loop any more, take it off KNOWN_LOOPS: {fixed}"


def test_every_import_of_src_points_down_the_layers() -> None:
    found = {str(v) for v in violations(import_graph(SRC, "leadflow"))}
    assert not found - KNOWN_VIOLATIONS, described(sorted(found - KNOWN_VIOLATIONS))
    fixed = KNOWN_VIOLATIONS - found
    assert not fixed, f"fixed, take them off KNOWN_VIOLATIONS: {sorted(fixed)}"


# --- the checks themselves, on small trees made up for them -----------------------------

LOOPS = {
    "module level": {
        "leadflow.intake.service": "from leadflow.intake import writer",
        "leadflow.intake.writer": "from leadflow.intake.service import store",
    },
    "inside a function": {
        "leadflow.runtime": "def start():\n    from leadflow.intake.writer import GroupCommit",
        "leadflow.intake.writer": "import leadflow.runtime",
    },
    "type checking only": {
        "leadflow.runtime": "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from leadflow.intake.writer import GroupCommit",
        "leadflow.intake.writer": "from leadflow import runtime",
    },
    "relative, through three modules": {
        "leadflow.cli": "from .routing import cli",
        "leadflow.routing.cli": "from ..scoring.cli import app",
        "leadflow.scoring.cli": "from ..cli import _database",
    },
}


@pytest.mark.parametrize("sources", LOOPS.values(), ids=LOOPS.keys())
def test_an_import_loop_is_found(tmp_path: Path, sources: dict[str, str]) -> None:
    write_tree(tmp_path, sources)
    [loop] = cycles(import_graph(tmp_path, "leadflow"))
    assert loop.members == set(sources)
    assert loop.path[0] == loop.path[-1]
    assert set(loop.path) == set(sources)


def test_a_package_importing_its_own_modules_is_no_loop(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "leadflow.connectors": "from leadflow.connectors.fakes import RecordingCrm",
            "leadflow.connectors.fakes": "from leadflow.connectors.base import CrmConnector",
            "leadflow.connectors.base": "",
        },
    )
    assert cycles(import_graph(tmp_path, "leadflow")) == []


CONTRACT = "the contract imports no stage"
UP = "a stage imports no orchestrator"
EDGE = "a stage's edge imports no edge"
SIDEWAYS = "another stage's edge"
BAD_IMPORTS = [
    ("leadflow.dedup.service", "from leadflow.pipeline.results import StageResult", UP),
    ("leadflow.intake.service", "from leadflow.pipeline.tasks import queue_new_leads", UP),
    ("leadflow.scoring.events", "from leadflow.pipeline import tasks", UP),
    ("leadflow.leads.service", "import leadflow.app", UP),
    ("leadflow.validation.service", "def f():\n    from leadflow.cli import app", UP),
    ("leadflow.routing.cli", "from leadflow.cli import _config_or_exit", EDGE),
    ("leadflow.scoring.events", "from leadflow.intake.endpoints import client_ip", SIDEWAYS),
    ("leadflow.scoring.cli", "from leadflow.routing.cli import route", SIDEWAYS),
    ("leadflow.stage", "from leadflow.dedup.service import judge", CONTRACT),
    ("leadflow.jobs", "from leadflow.pipeline import tasks", CONTRACT),
    ("leadflow.models.lead", "from leadflow.scoring.engine import LeadView", CONTRACT),
    ("leadflow.config.schema", "from leadflow.routing.router import Router", CONTRACT),
    ("leadflow.fields", "from leadflow.app import create_app", CONTRACT),
]


@pytest.mark.parametrize(("importer", "source", "rule"), BAD_IMPORTS)
def test_an_import_against_the_layers_is_found(
    tmp_path: Path, importer: str, source: str, rule: str
) -> None:
    imported = _target(source)
    write_tree(tmp_path, {importer: source, imported: ""})
    [violation] = violations(import_graph(tmp_path, "leadflow"))
    assert (violation.importer, violation.imported, violation.rule) == (importer, imported, rule)


GOOD_IMPORTS = [
    ("leadflow.dedup.service", "from leadflow.stage import Batch, StageResult"),
    ("leadflow.intake.service", "from leadflow.jobs import defer_named"),
    ("leadflow.scoring.events", "from leadflow.dedup.service import survivors"),
    ("leadflow.dedup.endpoints", "from leadflow.pipeline.stages import STARTABLE"),
    ("leadflow.dedup.service", "from leadflow.dedup.endpoints import router"),
    ("leadflow.pipeline.stages", "from leadflow.routing.service import route_lead"),
    ("leadflow.cli", "from leadflow.routing.cli import app"),
    ("leadflow.app", "from leadflow.intake.endpoints import router"),
    ("leadflow.jobs", "from leadflow.config import Config"),
]


@pytest.mark.parametrize(("importer", "source"), GOOD_IMPORTS)
def test_an_import_down_the_layers_is_fine(tmp_path: Path, importer: str, source: str) -> None:
    imported = _target(source)
    write_tree(tmp_path, {importer: source, imported: ""})
    assert import_graph(tmp_path, "leadflow")[importer] == {imported}
    assert violations(import_graph(tmp_path, "leadflow")) == []


def _target(source: str) -> str:
    """The module the (one) import statement in ``source`` brings in."""
    [node] = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import | ast.ImportFrom)]
    return node.names[0].name if isinstance(node, ast.Import) else str(node.module)


# --- the queue's tasks --------------------------------------------------------------------


def _registering_tasks() -> set[str]:
    """The modules of src/ that register a task on the queue (``@job_app.task``)."""
    found = set()
    for path in (SRC / "leadflow").rglob("*.py"):
        if "@job_app.task(" in path.read_text():
            found.add(".".join(path.relative_to(SRC).with_suffix("").parts))
    return found


def test_the_queue_imports_every_module_that_registers_tasks() -> None:
    from leadflow.jobs import job_app

    assert set(job_app.import_paths) == _registering_tasks()


def _deferred_names() -> set[str]:
    """The task names src/ defers by name (``defer_named`` and ``defer_once``)."""
    names = set()
    for path in (SRC / "leadflow").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("defer_named", "defer_once")
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
            ):
                names.add(str(node.args[1].value))
    return names


def test_every_task_deferred_by_name_is_registered_in_a_fresh_process() -> None:
    code = (
        "from leadflow.jobs import job_app; job_app.perform_import_paths(); "
        "print(' '.join(sorted(job_app.tasks)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    deferred = _deferred_names()
    assert {"lead.process", "lead.process_batch", "crm.sync", "lead.rescore"} <= deferred
    assert deferred <= set(done.stdout.split())
