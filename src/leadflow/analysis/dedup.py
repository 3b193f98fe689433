"""``leadflow dedup``: cluster the rows of a CSV file with the lead matcher.

1. Columns map onto lead fields by header (``surname`` → ``last_name`` ...) or
   by ``--map SRC=FIELD`` (:mod:`leadflow.analysis.columns`); ``--field
   COLUMN:KIND`` compares any other column.
2. Rows sharing a blocking key become candidate pairs; a key shared by more
   than ``max_block`` rows (a placeholder, a family name everyone has) is too
   common to say anything and is skipped.
3. The model learns the file: u (how often different people agree by chance)
   from random pairs of rows, m (how often one person agrees with themself)
   and the share of true pairs by expectation-maximisation over the candidate
   pairs, as Splink does; the pairs are grouped by comparison vector, so this
   costs one pass over the distinct vectors per iteration.
4. Pairs at or above the threshold join the same cluster (connected components).
"""

from __future__ import annotations

import csv
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from leadflow.analysis.columns import HEADER_ALIASES, MappingError, map_columns
from leadflow.dedup.matching import (
    LEAD_MATCH_FIELDS,
    LEVELS,
    Field,
    Kind,
    Model,
    Record,
    blocking_keys,
    levels,
    prepare,
    score_vector,
)

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Plan:
    """Which column feeds which compared field."""

    fields: tuple[Field, ...]
    columns: dict[str, str]  # field name -> source column


def plan_columns(
    headers: Sequence[str], maps: Sequence[str] = (), extra: Sequence[str] = ()
) -> Plan:
    """Resolve ``--map SRC=FIELD`` and ``--field COLUMN:KIND`` against the file's headers."""
    columns = map_columns(headers, maps, LEAD_MATCH_FIELDS, HEADER_ALIASES)
    fields = [Field(name, LEAD_MATCH_FIELDS[name]) for name in LEAD_MATCH_FIELDS if name in columns]
    for item in extra:
        column, sep, kind = item.rpartition(":")
        if not sep or not column:
            raise MappingError(f"--field {item!r}: expected COLUMN:KIND")
        if column not in headers:
            raise MappingError(
                f"--field {item!r}: the file has no column {column!r} (its columns: "
                f"{', '.join(headers)})"
            )
        try:
            parsed = Kind(kind)
        except ValueError:
            known = ", ".join(k.value for k in Kind)
            raise MappingError(f"--field {item!r}: {kind!r} is not a kind ({known})") from None
        if column in columns.values():
            columns = {t: s for t, s in columns.items() if s != column}
            fields = [f for f in fields if f.name in columns]
        name = f"x_{column}" if column in LEAD_MATCH_FIELDS else column
        fields.append(Field(name, parsed))
        columns[name] = column
    if not fields:
        raise MappingError(
            "no column to compare: name lead fields with --map SRC=FIELD or add --field COLUMN:KIND"
        )
    return Plan(tuple(fields), columns)


def candidate_pairs(
    keyed: Sequence[set[str]], max_block: int = 200
) -> tuple[set[tuple[int, int]], int]:
    """Pairs of row indexes sharing a key; also how many keys were too common to use."""
    blocks: defaultdict[str, list[int]] = defaultdict(list)
    for index, keys in enumerate(keyed):
        for key in keys:
            blocks[key].append(index)
    pairs: set[tuple[int, int]] = set()
    skipped = 0
    for members in blocks.values():
        if len(members) > max_block:
            skipped += 1
            continue
        pairs.update(combinations(members, 2))
    return pairs, skipped


Vector = tuple[int | None, ...]


def estimate_u(
    fields: Sequence[Field], records: Sequence[Record], samples: int = 200_000, seed: int = 7
) -> dict[str, tuple[float, ...]]:
    """u per field and level, from random pairs of rows (nearly all of them different people)."""
    rng = random.Random(seed)  # noqa: S311 - sampling, not secrets
    counts = {f.name: [1.0] * len(LEVELS[f.kind]) for f in fields}  # add-one smoothing
    n = len(records)
    if n >= 2:
        for _ in range(samples if n * (n - 1) // 2 > samples else n * (n - 1) // 2):
            i, j = rng.sample(range(n), 2)
            for f, level in zip(fields, levels(fields, records[i], records[j]), strict=True):
                if level is not None:
                    counts[f.name][level] += 1
    return {name: tuple(c / sum(row) for c in row) for name, row in counts.items()}


def estimate_m(model: Model, vectors: Counter[Vector], iterations: int = 25) -> Model:
    """m per field and level and the prior, by expectation-maximisation over candidate pairs."""
    current = model
    for _ in range(iterations):
        m_counts = {f.name: [0.5] * len(LEVELS[f.kind]) for f in current.fields}
        matched = 0.0
        total = 0
        for vector, count in vectors.items():
            p = score_vector(current, vector).probability
            matched += p * count
            total += count
            for f, level in zip(current.fields, vector, strict=True):
                if level is not None:
                    m_counts[f.name][level] += p * count
        if not total:
            return current
        prior = min(max(matched / total, 1e-6), 1 - 1e-6)
        m = {name: tuple(c / sum(row) for c in row) for name, row in m_counts.items()}
        current = Model(current.fields, m, current.u, prior)
    return current


@dataclass(frozen=True, slots=True)
class Coverage:
    """Which compared fields gave the rows blocking keys: a row without one is compared
    with no other row, so it can never be found a duplicate."""

    rows: int
    by_source: dict[str, int]  # "email", "first_name + last_name", "dob + a name" -> rows
    without: int  # rows with no key at all
    keyless: tuple[str, ...]  # compared fields that gave no row a key

    def lines(self) -> list[str]:
        """What ``leadflow dedup`` and ``leadflow import`` print about it."""
        given = ", ".join(f"{source} {n} rows" for source, n in self.by_source.items())
        out = [f"Blocking keys: {given or 'none'}"]
        if self.without:
            out.append(
                f"warning: {self.without} of {self.rows} rows had no blocking key, so they "
                "were compared with no other row"
            )
        if self.keyless:
            out.append(
                f"warning: {', '.join(self.keyless)} gave no row a blocking key: an email, a "
                "phone, or a first and a last name make keys; company, city, postcode, "
                "domain and text fields only together with a name; street and country "
                "never. Map such columns with --map SRC=FIELD"
            )
        return out


def _source(fields: Sequence[Field], key: str) -> str:
    prefix, _, rest = key.partition(":")
    if prefix in ("e", "m", "p"):
        kind = Kind.EMAIL if prefix != "p" else Kind.PHONE
        return "/".join(f.name for f in fields if f.kind is kind)
    if prefix == "n":
        return "first_name + last_name"
    name = rest.split(":", 1)[0]
    return name if prefix == "d" else f"{name} + a name"


def coverage(fields: Sequence[Field], keyed: Sequence[set[str]]) -> Coverage:
    """Which fields the rows' blocking keys came from (``keyed``: each row's keys)."""
    counts: Counter[str] = Counter()
    for keys in keyed:
        counts.update({_source(fields, key) for key in keys})
    used = {part for source in counts for part in source.replace(" + ", "/").split("/")}
    if any(source.endswith(" + a name") for source in counts):
        used |= {"first_name", "last_name"}
    keyless = tuple(f.name for f in fields if f.name not in used)
    without = sum(1 for keys in keyed if not keys)
    by_source = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    return Coverage(len(keyed), by_source, without, keyless)


@dataclass(frozen=True, slots=True)
class Result:
    cluster_ids: list[int]  # per input row
    pairs_compared: int
    pairs_matched: int
    skipped_keys: int
    model: Model
    coverage: Coverage


def _root(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def cluster(
    fields: Sequence[Field],
    records: Sequence[Record],
    *,
    threshold: float = 0.9,
    max_block: int = 200,
    progress: Progress | None = None,
) -> Result:
    """Cluster ids (the smallest row index of each cluster) for ``records``."""
    keyed = [blocking_keys(fields, r) for r in records]
    pairs, skipped = candidate_pairs(keyed, max_block)
    compared: list[tuple[int, int, Vector]] = []
    vectors: Counter[Vector] = Counter()
    for n, (i, j) in enumerate(sorted(pairs)):
        vector = levels(fields, records[i], records[j])
        compared.append((i, j, vector))
        vectors[vector] += 1
        if progress and n % 1000 == 999:
            progress(1000)
    if progress:
        progress(len(pairs) % 1000)
    model = Model(tuple(fields), Model.default(fields).m, estimate_u(fields, records), 0.5)
    trained = estimate_m(model, vectors)
    # EM's prior is the share of matches among candidates; a pair is judged
    # against the odds that two rows taken at random are one person.
    all_pairs = max(len(records) * (len(records) - 1) // 2, 1)
    prior = min(max(trained.prior * len(compared) / all_pairs, 1e-9), 0.5)
    model = Model(trained.fields, trained.m, trained.u, prior)
    verdicts = {v: score_vector(model, v).probability >= threshold for v in vectors}
    parent = list(range(len(records)))
    matched = 0
    for i, j, vector in compared:
        if verdicts[vector]:
            matched += 1
            a, b = _root(parent, i), _root(parent, j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    ids = [_root(parent, i) for i in range(len(records))]
    return Result(ids, len(compared), matched, skipped, model, coverage(fields, keyed))


def records_of(plan: Plan, rows: Iterable[dict[str, str]]) -> Iterator[dict[str, str]]:
    for row in rows:
        yield prepare(plan.fields, {name: row.get(col) for name, col in plan.columns.items()})


def write_rows(
    path: Path,
    headers: Sequence[str],
    rows: Sequence[dict[str, str]],
    cluster_ids: Sequence[int | str],
) -> None:
    column = "cluster_id" if "cluster_id" not in headers else "leadflow_cluster_id"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, [*headers, column])
        writer.writeheader()
        for row, cluster_id in zip(rows, cluster_ids, strict=True):
            writer.writerow({**row, column: cluster_id})
