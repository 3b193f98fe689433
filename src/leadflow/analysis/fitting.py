"""The fit behind ``leadflow scoring suggest``: an L1 logistic regression, weights to points.

The indicators of the training rows form a sparse matrix; the L1 strength is
chosen by 5-fold cross-validated AUC; per field the weights are shifted so the
lowest level earns 0 (when every row has a level), scaled so the best training
lead gets 100, rounded to whole points, and the tiny ones dropped.
scikit-learn is the optional ``ml`` extra, imported only when a fit is asked for.
"""

from __future__ import annotations

import importlib
import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from leadflow.analysis.evaluation import auc
from leadflow.analysis.features import Group
from leadflow.scoring.engine import LeadView, value_of

MIN_POINTS = 3  # rounded points below this are noise, not a rule
C_GRID = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)  # L1 strengths tried (smaller: fewer rules)
ML_HINT = "scoring suggest needs scikit-learn: pip install 'leadflow[ml]'"


class MissingML(RuntimeError):
    """scikit-learn is not installed (it is the optional ``ml`` extra)."""


def split(labels: Sequence[bool], holdout: float, seed: int) -> tuple[list[int], list[int]]:
    """Row indexes for training and held out: seeded, with each outcome split alike."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible split, not a secret
    train: list[int] = []
    test: list[int] = []
    for outcome in (True, False):
        members = [i for i, label in enumerate(labels) if label is outcome]
        rng.shuffle(members)
        cut = round(len(members) * holdout)
        test += members[:cut]
        train += members[cut:]
    return sorted(train), sorted(test)


def load_sklearn() -> tuple[Any, Any]:
    """LogisticRegression and csr_matrix, imported only when a suggestion is asked for."""
    try:
        linear_model = importlib.import_module("sklearn.linear_model")
        sparse = importlib.import_module("scipy.sparse")
        sklearn = importlib.import_module("sklearn")
    except ImportError as exc:
        raise MissingML(ML_HINT) from exc
    major, minor = (int(part) for part in str(sklearn.__version__).split(".")[:2])
    logistic_regression = linear_model.LogisticRegression

    def l1(c: float) -> Any:
        # scikit-learn 1.8 replaced penalty="l1" by l1_ratio=1 (and warns about the former).
        penalty = {"l1_ratio": 1.0} if (major, minor) >= (1, 8) else {"penalty": "l1"}
        return logistic_regression(C=c, solver="liblinear", max_iter=5000, **penalty)

    return l1, sparse.csr_matrix


def folds(labels: Sequence[bool], k: int, seed: int) -> list[list[int]]:
    """``k`` stratified folds of row indexes, seeded."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible split, not a secret
    out: list[list[int]] = [[] for _ in range(k)]
    for outcome in (True, False):
        members = [i for i, label in enumerate(labels) if label is outcome]
        rng.shuffle(members)
        for n, i in enumerate(members):
            out[n % k].append(i)
    return out


def choose_c(
    make: Any, matrix: Any, labels: Sequence[bool], seed: int
) -> tuple[float, dict[float, float]]:
    """The L1 strength by 5-fold cross-validated AUC on the training rows.

    The smallest C (fewest rules) whose AUC is within 0.005 of the best wins:
    a rule set a person can read is worth more than the third decimal.
    """
    parts = folds(labels, 5, seed)
    means: dict[float, float] = {}
    for c in C_GRID:
        scores = []
        for fold in parts:
            held = set(fold)
            train = [i for i in range(len(labels)) if i not in held]
            if len({labels[i] for i in train}) < 2 or len({labels[i] for i in fold}) < 2:
                continue
            model = make(c).fit(matrix[train], [labels[i] for i in train])
            probabilities = model.predict_proba(matrix[fold])[:, 1]
            value = auc([float(p) for p in probabilities], [labels[i] for i in fold])
            if value is not None:
                scores.append(value)
        means[c] = sum(scores) / len(scores) if scores else 0.5
    best = max(means.values())
    return min(c for c, value in means.items() if value >= best - 0.005), means


def indicators(
    groups: Sequence[Group],
    views: Sequence[LeadView],
    keep: Sequence[tuple[int, int]] | None = None,
) -> tuple[list[list[int]], list[tuple[int, int]]]:
    """Per row, the columns that hold; the (group, level) of each column.

    A level that holds on exactly the same rows as an earlier one (``country``
    and ``quality.country``) is left out: it would only split the weight. With
    ``keep`` (the columns found on the training rows), exactly those columns.
    """
    columns: list[tuple[int, int]] = []
    hits: list[list[int]] = [[] for _ in views]
    seen: set[tuple[int, ...]] = set()
    wanted = None if keep is None else set(keep)
    for g, group in enumerate(groups):
        values = [value_of(view, group.ref) for view in views]
        for k, level in enumerate(group.levels):
            if wanted is not None and (g, k) not in wanted:
                continue
            rows = tuple(i for i, value in enumerate(values) if level.holds(value))
            if wanted is None and (not rows or len(rows) == len(views) or rows in seen):
                continue
            seen.add(rows)
            for i in rows:
                hits[i].append(len(columns))
            columns.append((g, k))
    return hits, columns


def indicator_matrix(csr_matrix: Any, hits: Sequence[Sequence[int]], width: int) -> Any:
    indptr = [0]
    indices: list[int] = []
    for row in hits:
        indices.extend(row)
        indptr.append(len(indices))
    return csr_matrix(([1.0] * len(indices), indices, indptr), shape=(len(hits), width))


def points_of(
    columns: Sequence[tuple[int, int]],
    weights: Sequence[float],
    hits: Sequence[Sequence[int]],
) -> dict[tuple[int, int], int]:
    """Whole points per (group, level): shifted per group, scaled so the best lead gets 100."""
    n = len(hits)
    per_group: defaultdict[int, dict[int, float]] = defaultdict(dict)
    for (g, k), w in zip(columns, weights, strict=True):
        per_group[g][k] = w
    covered: defaultdict[int, set[int]] = defaultdict(set)
    for i, row in enumerate(hits):
        for c in row:
            covered[columns[c][0]].add(i)
    shifted: dict[tuple[int, int], float] = {}
    for g, levels in per_group.items():
        # When (nearly) every row has a level, the lowest level is the baseline: all points
        # are then gains. Otherwise the uncovered rows (rare values) are, at 0.
        shift = min(levels.values()) if len(covered[g]) >= 0.95 * n else 0.0
        for k, w in levels.items():
            shifted[(g, k)] = w - shift
    column_of = {key: c for c, key in enumerate(columns)}
    best = max((sum(shifted[columns[c]] for c in row) for row in hits), default=0.0)
    scale = 100 / best if best > 0 else 0.0
    result: dict[tuple[int, int], int] = {}
    for key, w in shifted.items():
        points = max(-100, min(100, round(w * scale)))
        if abs(points) >= MIN_POINTS and key in column_of:
            result[key] = points
    return result
