"""``leadflow backtest`` on 100,000 generated past leads with the demo rules: seconds and rows/s.

The target is under 10 s for 100,000 rows, measured as a person runs it: the
``leadflow backtest FILE --label converted`` command in a fresh process
(interpreter start, imports, reading the CSV, enrichment, scoring, report).
An in-process breakdown shows where the time goes: reading the file, building
the views (the validation step's pure enrichment: email, phone, title,
channel), and the rules.

The leads are generated here (seeded): business, free, disposable and broken
email addresses, phone numbers with and without a country code, titles from
CEO to student, products, messages, source columns, company size, and an
outcome drawn from a logistic model of seniority, email kind and interest.

``--record`` appends the result, with the date and the machine, to
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

TARGET_SECONDS = 10.0
RESULTS = Path(__file__).with_name("RESULTS.md")

TITLES = {  # title -> weight in the outcome's log-odds
    "CEO": 1.2,
    "Founder": 1.0,
    "VP Sales": 1.0,
    "Head of IT": 0.8,
    "Director of Operations": 0.7,
    "Marketing Manager": 0.3,
    "Team Lead Support": 0.2,
    "Software Engineer": -0.3,
    "Accountant": -0.2,
    "Student": -1.0,
    "": -0.4,
}
FREE = ("gmail.com", "yahoo.com", "outlook.com", "gmx.de", "hotmail.com")
PRODUCTS = ("Enterprise plan", "Platform", "Team", "Starter", "")
MESSAGES = (
    "Can we book a demo next week?",
    "Please send a quote for 40 seats",
    "Just browsing",
    "What integrations do you have?",
    "",
)
MEDIUMS = ("cpc", "email", "social", "organic", "", "")
COUNTRIES = ("US", "Germany", "GB", "France", "")


def generate(path: Path, rows: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "email",
                "first_name",
                "last_name",
                "company",
                "job_title",
                "phone",
                "country",
                "product_interest",
                "message",
                "utm_medium",
                "employees",
                "converted",
            ]
        )
        for n in range(rows):
            kind = rng.random()
            if kind < 0.6:
                email, logit = f"p{n}@firm{n % 5000}.com", 0.5
            elif kind < 0.9:
                email, logit = f"p{n}@{rng.choice(FREE)}", -0.4
            elif kind < 0.95:
                email, logit = f"p{n}@mailinator.com", -1.2
            else:
                email, logit = rng.choice(["", "not-an-email"]), -0.8
            title = rng.choice(list(TITLES))
            product = rng.choice(PRODUCTS)
            logit += TITLES[title] + (0.6 if product in ("Enterprise plan", "Platform") else 0)
            phone = rng.choice(
                [f"+1 212 736 {n % 9000 + 1000}", f"+49 30 {900000 + n % 99999}", "12345", ""]
            )
            converted = rng.random() < 1 / (1 + math.exp(-(logit - 1.0)))
            writer.writerow(
                [
                    email,
                    "ana",
                    "weber",
                    f"Firm {n % 5000}",
                    title,
                    phone,
                    rng.choice(COUNTRIES),
                    product,
                    rng.choice(MESSAGES),
                    rng.choice(MEDIUMS),
                    int(math.exp(rng.uniform(0, 9))),
                    "yes" if converted else "no",
                ]
            )


def run_command(path: Path) -> tuple[float, str]:
    """Seconds for ``leadflow backtest`` in a new process, and what it printed."""
    env = {k: v for k, v in os.environ.items() if k != "LEADFLOW_CONFIG"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "leadflow", "backtest", str(path), "--label", "converted"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return time.perf_counter() - start, done.stdout


def breakdown(path: Path) -> dict[str, float]:
    """Seconds of each phase, in this process (imports already done)."""
    from leadflow.analysis.evaluation import RuleSet, evaluate
    from leadflow.analysis.history import load_history
    from leadflow.config import load_config

    rules = RuleSet("current", "demo", load_config(None).scoring)
    start = time.perf_counter()
    history = load_history(path, label="converted")
    read = time.perf_counter()
    views = list(history.views())
    built = time.perf_counter()
    evaluate([rules], views, history.labels)
    scored = time.perf_counter()
    return {"read": read - start, "views": built - read, "rules": scored - built}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, leadflow {version('leadflow')}"
    )


def commit() -> str:
    """The commit measured, and whether the work tree had changes on top of it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src", "bench"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"`{head}`" + (" with uncommitted changes" if dirty else "")


def record(rows: int, runs: list[float], phases: dict[str, float], auc_line: str) -> None:
    best = min(runs)
    verdict = "met" if best < TARGET_SECONDS else "missed"
    bullets = [
        f"**Date:** {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, code at commit {commit()}.",
        f"**Machine:** {machine()}.",
        "**Command:** `make bench-backtest` (`python -m bench.backtest --record`): "
        f"`leadflow backtest FILE --label converted` on {rows:,} generated leads with the "
        f"demo rules, {len(runs)} runs, each in a fresh process, with the default --jobs "
        f"(one process per CPU, {os.cpu_count()}).",
    ]
    summary = (
        f"**Target (< {TARGET_SECONDS:.0f} s for {rows:,} rows): {verdict}**, best run "
        f"{best:.2f} s. The same work in one process: reading the CSV {phases['read']:.2f} s, "
        f"the views (the validation step's enrichment: email, phone, title) "
        f"{phases['views']:.2f} s, the rules {phases['rules']:.2f} s. "
        f"The report's AUC line: `{auc_line}`."
    )
    section = [
        "",
        "## bench-backtest",
        "",
        *(textwrap.fill(b, 95, initial_indent="- ", subsequent_indent="  ") for b in bullets),
        "",
        "| run | seconds | rows/s |",
        "| --- | ---: | ---: |",
        *(f"| {i} | {s:.2f} | {rows / s:,.0f} |" for i, s in enumerate(runs, 1)),
        "",
        textwrap.fill(summary, 95),
    ]
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(section) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="leadflow-bench-backtest-") as tmp:
        path = Path(tmp) / "history.csv"
        generate(path, args.rows)
        runs = []
        output = ""
        for _ in range(args.runs):
            seconds, output = run_command(path)
            runs.append(seconds)
            print(
                f"leadflow backtest, {args.rows:,} rows: {seconds:.2f} s "
                f"(target < {TARGET_SECONDS:.0f} s), {args.rows / seconds:,.0f} rows/s",
                flush=True,
            )
        phases = breakdown(path)
    print("in process: " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))
    auc_line = next((line for line in output.splitlines() if line.startswith("AUC")), "")
    print(auc_line)
    best = min(runs)
    print(
        f"best: {best:.2f} s for {args.rows:,} rows (target < {TARGET_SECONDS:.0f} s: "
        f"{'met' if best < TARGET_SECONDS else 'MISSED'}), {args.rows / best:,.0f} rows/s"
    )
    if args.record:
        record(args.rows, runs, phases, " ".join(auc_line.split()))
        print(f"appended to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
