"""Splink 4 on DuckDB, bench-dedup's reference matcher: one model per data set, from Splink's docs.

See ``bench/dedup_quality.py`` for each model's source and settings.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from bench.dedup_sets import DataSet, Result, score

SPLINK_SEED = 2  # the febrl3 example's seed for u sampling
U_MAX_PAIRS = 1e6


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


MODELS: dict[str, Callable[[], SplinkModel]] = {
    "fake_1000": splink_fake_1000,
    "febrl3": splink_febrl3,
    "febrl4": splink_febrl4,
}


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
