"""Every benchmark module imports: a `make bench-*` must not die on a moved name."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
# bench-dedup's quality run needs the bench extra (Splink, recordlinkage), not installed here.
NEEDS_EXTRA = {"dedup_quality", "dedup_sets", "dedup_splink"}  # the [bench] extra


@pytest.mark.parametrize(
    "module", sorted(p.stem for p in BENCH.glob("*.py") if p.stem not in {"__init__", *NEEDS_EXTRA})
)
def test_the_benchmark_module_imports(module: str) -> None:
    importlib.import_module(f"bench.{module}")
