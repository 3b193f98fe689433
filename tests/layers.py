"""The import graph of a source tree, and the layers it must keep (see tests/test_layers.py).

Every ``import`` counts, wherever it stands: at module level, inside a function, or
under ``if TYPE_CHECKING``; a loop held together by a lazy or a type-only import is
still a loop, one refactoring away from an ImportError.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

Graph = Mapping[str, frozenset[str]]

# The stage packages: each owns its repository (SQL) and service, and stands on the
# contract below it; the pipeline calls them, never the reverse.
STAGES = frozenset(
    {"validation", "dedup", "consent", "scoring", "routing", "leads", "intake", "connectors"}
)
# The bottom floor: what every stage may import. It imports no stage, no orchestrator,
# no edge (modules, or packages with everything in them).
CONTRACT = frozenset({"stage", "jobs", "models", "config", "fields"})
ORCHESTRATOR = "pipeline"
# The edges of the whole process; each stage's own edges are its endpoints and cli.
EDGES = frozenset({"app", "cli"})
STAGE_EDGES = frozenset({"endpoints", "cli"})


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package under ``root`` (``root/package/...``), by dotted name."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The dotted names an import statement asks for (``from x import y``: x.y and x)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        anchor = parts if is_package else parts[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def import_graph(root: Path, package: str) -> dict[str, frozenset[str]]:
    """Which modules of the package each of its modules imports (its own package's only)."""
    modules = module_names(root, package)
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets: set[str] = set()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = _imported(node, module, path.name == "__init__.py")
            if isinstance(node, ast.ImportFrom):
                # ``from x import y``: the module x.y when there is one, else x itself.
                base, members = names[-1], names[:-1]
                submodules = [name for name in members if name in modules]
                names = submodules if len(submodules) == len(members) else [*submodules, base]
            targets.update(name for name in names if name in modules and name != module)
        graph[module] = frozenset(targets)
    return graph


@dataclass(frozen=True)
class Loop:
    """Modules that import each other, directly or not (a strongly connected set)."""

    members: frozenset[str]
    path: tuple[str, ...]  # one loop through them, from the first back to it

    def __str__(self) -> str:
        return f"{' -> '.join(self.path)} (all of {', '.join(sorted(self.members))})"


def cycles(graph: Graph) -> list[Loop]:
    """The import loops: each strongly connected set of modules, with one loop through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[Loop] = []

    def visit(module: str) -> None:  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            members = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.add(member)
                if member == module:
                    break
            if len(members) > 1:
                found.append(Loop(frozenset(members), _loop_through(graph, members)))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found, key=lambda loop: loop.path)


def _loop_through(graph: Graph, members: set[str]) -> tuple[str, ...]:
    """One loop within a strongly connected set, from its first module back to it."""
    start = min(members)
    paths = {start: (start,)}
    todo = [start]
    while todo:
        module = todo.pop(0)
        for target in sorted(graph.get(module, ())):
            if target == start:
                return (*paths[module], start)
            if target in members and target not in paths:
                paths[target] = (*paths[module], target)
                todo.append(target)
    raise AssertionError(f"no loop through {sorted(members)}")


@dataclass(frozen=True, order=True)
class Violation:
    importer: str
    imported: str
    rule: str

    def __str__(self) -> str:
        return f"{self.importer} imports {self.imported}: {self.rule}"


def _area(module: str) -> tuple[str, str | None]:
    """``leadflow.dedup.service`` -> ("dedup", "service"); ``leadflow.jobs`` -> ("jobs", None)."""
    parts = module.split(".")[1:]
    return (parts[0] if parts else "", parts[1] if len(parts) > 1 else None)


def violations(graph: Graph) -> list[Violation]:
    """Every import that points up or sideways across the layers."""
    found = []
    for importer, targets in graph.items():
        area, name = _area(importer)
        for imported in targets:
            their_area, their_name = _area(imported)
            if area in CONTRACT and their_area in {*STAGES, ORCHESTRATOR, *EDGES}:
                found.append(Violation(importer, imported, "the contract imports no stage"))
            if area not in STAGES or their_area == area:
                continue
            if their_area in {ORCHESTRATOR, *EDGES} and name not in STAGE_EDGES:
                found.append(Violation(importer, imported, "a stage imports no orchestrator"))
            if their_area in EDGES and name in STAGE_EDGES:
                found.append(Violation(importer, imported, "a stage's edge imports no edge"))
            if their_area in STAGES and their_name in STAGE_EDGES:
                found.append(Violation(importer, imported, "another stage's edge"))
    return sorted(found)


def write_tree(root: Path, sources: Mapping[str, str]) -> None:
    """A package on disk from ``{"leadflow.dedup.service": "import ..."}``; every package
    on the way gets an ``__init__.py`` (a module named like a package is its ``__init__``)."""
    packages = {name.rsplit(".", n)[0] for name in sources for n in range(1, name.count(".") + 1)}
    for name in sorted(packages | set(sources)):
        parts = name.split(".")
        is_package = name in packages
        path = root.joinpath(*parts, "__init__.py") if is_package else root.joinpath(*parts)
        if not is_package:
            path = path.with_suffix(".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sources.get(name, ""))


def described(items: Iterable[object]) -> str:
    return "\n".join(str(item) for item in items)
