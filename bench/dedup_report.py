"""bench-dedup's report: percentiles per kind of probe, what was decided, the CPUs meanwhile."""

from __future__ import annotations

import math
import os
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from bench.dedup_load import DATABASE
from bench.dedup_probes import Sample


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest rank; NaN for no values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else math.nan


def line(
    label: str, samples: Sequence[Sample], target: float, reads: list[int] | None
) -> dict[str, Any]:
    ms = [s.ms for s in samples]
    counts = [s.candidates for s in samples if s.candidates >= 0]
    p95 = percentile(ms, 95)
    return {
        "line": label,
        "probes": len(samples),
        "p50_ms": percentile(ms, 50),
        "p95_ms": p95,
        "max_ms": max(ms),
        "target_p95_ms": target,
        "met": p95 < target,
        "candidates_mean": statistics.fmean(counts) if counts else math.nan,
        "candidates_max": max(counts, default=-1),
        "rows_read_mean": statistics.fmean(reads) if reads else None,
        "rows_read_max": max(reads) if reads else None,
    }


def outcomes(samples: Sequence[Sample]) -> dict[str, Any]:
    decisions = Counter(f"{s.decision}" + (f" ({s.rule})" if s.rule else "") for s in samples)
    out: dict[str, Any] = {"decisions": dict(decisions.most_common())}
    found = [s.source_found for s in samples if s.source_found is not None]
    best = [s.best_is_source for s in samples if s.best_is_source is not None]
    if found:
        out["source_among_candidates"] = sum(found)
    if best:
        out["source_is_best"] = sum(best)
    return out


def cpu_ticks() -> tuple[list[int], float]:
    """Machine-wide CPU ticks (/proc/stat) and this process's CPU seconds."""
    stat = Path("/proc/stat")
    fields = stat.read_text().split("\n", 1)[0].split()[1:] if stat.exists() else []
    times = os.times()
    return [int(x) for x in fields], times.user + times.system


def cpu_share(before: tuple[list[int], float], after: tuple[list[int], float]) -> dict[str, float]:
    """Busy and steal shares of all CPUs between two cpu_ticks(), and this process's share."""
    delta = [b - a for a, b in zip(before[0], after[0], strict=True)]
    if len(delta) < 8 or not sum(delta):
        return {}
    total = sum(delta)
    idle = delta[3] + delta[4]  # idle, iowait
    seconds = total / (os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1))
    return {
        "busy": (total - idle) / total,
        "steal": delta[7] / total,
        "this_process": (after[1] - before[1]) / seconds / (os.cpu_count() or 1),
        "seconds": seconds,
    }


def database_facts(db: str) -> dict[str, Any]:
    """Rows and sizes of the two tables, and the longest key lists (ANALYZE's commonest keys)."""
    with psycopg.connect(db) as conn:
        tables = {}
        for name in ("leads", "lead_match_keys"):
            row = conn.execute(
                f"SELECT count(*), pg_total_relation_size('{name}') FROM {name}"
            ).fetchone()
            assert row is not None
            tables[name] = {"rows": row[0], "mb": round(row[1] / 2**20)}
        common = conn.execute(
            "SELECT most_common_vals::text::text[] FROM pg_stats"
            " WHERE tablename = 'lead_match_keys' AND attname = 'key'"
        ).fetchone()
        top: list[tuple[str, int]] = []
        if common and common[0]:
            top = conn.execute(
                "SELECT key, count(*) FROM lead_match_keys WHERE key = ANY(%s)"
                " GROUP BY key ORDER BY 2 DESC, 1 LIMIT 5",
                (common[0],),
            ).fetchall()
    return {"tables": tables, "commonest_keys": top}


def report(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"\n{m['date']}  nproc {m['nproc']}  {m['cpu']}  Python {m['python']}", end="  ")
    print(f"load average before: {m['loadavg_before']:.2f}")
    print(f"PostgreSQL {m['postgresql']} ({result['database']}); commit {m['commit']}")
    if result["load_s"]:
        phases = ", ".join(f"{k} {v:.0f} s" for k, v in result["load_s"].items())
        print(f"loaded {result['leads']:,} leads: {phases}")
    else:
        print(f"reused {DATABASE} ({result['leads']:,} leads, seed {result['seed']})")
    facts = result["facts"]
    for name, t in facts["tables"].items():
        print(f"  {name}: {t['rows']:,} rows, {t['mb']:,} MB with indexes")
    top = ", ".join(f"{k} {n:,}" for k, n in facts["commonest_keys"])
    print(f"  longest key lists: {top}")
    print(
        f"\n{'configuration':<38} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}  {'target':<14}"
        f" {'verdict':<11} {'cand. mean/max':>14} {'key rows mean/max':>18}"
    )
    for row in result["lines"]:
        reads = (
            f"{row['rows_read_mean']:.0f}/{row['rows_read_max']}"
            if row["rows_read_mean"] is not None
            else "-"
        )
        cands = (
            f"{row['candidates_mean']:.1f}/{row['candidates_max']}"
            if row["candidates_max"] >= 0
            else "-"
        )
        print(
            f"{row['line']:<38} {row['p50_ms']:>7.2f} {row['p95_ms']:>7.2f} {row['max_ms']:>7.1f}"
            f"  {'p95 < ' + format(row['target_p95_ms'], '.0f') + ' ms':<14}"
            f" {'target met' if row['met'] else 'missed':<11} {cands:>14} {reads:>18}"
        )
    print(f"\n{result['probes']} measured probes per kind after {result['warmup']} warm-up each.")
    cpu = result.get("cpu_during")
    if cpu:
        print(
            f"CPUs during the {cpu['seconds']:.0f} s of measurement: {cpu['busy']:.0%} busy"
            f" (this process {cpu['this_process']:.0%}, steal {cpu['steal']:.1%})"
        )
    for what in ("lookup", "step"):
        for kind, o in result["outcomes"][what].items():
            extra = ""
            if "source_among_candidates" in o:
                extra += f"; source lead among candidates {o['source_among_candidates']}"
            if "source_is_best" in o:
                label = "best verdict" if what == "lookup" else "merged into"
                extra += f"; {label} the source lead {o['source_is_best']}"
            print(f"  {what} {kind}: {o['decisions']}{extra}")
    for kind, plan in result.get("explain", {}).items():
        print(f"\nEXPLAIN (ANALYZE, BUFFERS), slowest {kind} lookup:\n{plan}")
