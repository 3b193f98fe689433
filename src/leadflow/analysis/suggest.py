"""``leadflow scoring suggest``: scoring rules fitted on past leads, printed for review.

The candidate features are what a rule can read, so that every feature of the
model is exactly one rule:

- each categorical field (lead fields, their enrichment, the file's other
  columns as ``answers.<column>``) gives one indicator per frequent value
  (``equals``), plus one for "no value" (``exists: false``); rare values stay
  together as the group's reference and earn no points;
- each numeric column gives one indicator per range (``between``): quantile
  edges rounded to two significant digits, ranges too small merged.

Each indicator is computed with the engine's own operators (``holds``), so the
model is fitted on what the rules will see. A logistic regression (L2) on a
seeded, stratified training split gives a weight per indicator; per field the
weights are shifted so the lowest level earns 0 (when every row has a level),
scaled so the best training lead gets 100, rounded to whole points, and the
tiny ones dropped. Levels of a field with the same points become one ``in``
rule. Thresholds put the top ~20 % of training leads in hot and the next ~30 %
in warm. The AUC is then measured on the held-out rows, by scoring them with
the printed block after loading it back through the config schema (so an
invalid block can never be printed) and with the current rules.

Nothing is applied: the output is a ``scoring:`` section to read, backtest
(``leadflow backtest --compare``) and paste.
"""

from __future__ import annotations

import importlib
import json
import math
import random
import re
import shlex
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from leadflow.analysis.backtest import RuleSet, SegmentStats, auc, summarise
from leadflow.analysis.history import History
from leadflow.config import ConfigError, load_config_text
from leadflow.config.scoring import Category, Scoring
from leadflow.scoring.engine import LeadView, _empty, _number, holds, score, value_of

MIN_POINTS = 3  # rounded points below this are noise, not a rule
MAX_LEVELS = 15  # most values of one field that get their own rule
NUMERIC_SHARE = 0.95  # a column is numeric when this share of its values are numbers
QUANTILES = (0.2, 0.4, 0.6, 0.8)
HOT_SHARE, WARM_SHARE = 0.2, 0.5  # of training leads at or above hot / warm
MIN_CLASS = 20  # converted and not converted leads each, at least
C_GRID = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)  # L1 strengths tried (smaller: fewer rules)

# Enrichment worth a rule (email_domain duplicates company_domain, flags the kinds).
QUALITY_CANDIDATES = (
    "quality.seniority",
    "quality.function",
    "quality.email_kind",
    "quality.phone_valid",
    "quality.phone_type",
    "quality.country",
    "quality.company_domain",
)
DATA_QUALITY = frozenset({"quality.email_kind", "quality.phone_valid", "quality.phone_type"})
INTENT = frozenset(
    {
        "product_interest",
        "budget_range",
        "deadline",
        "message",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
        "quality.channel",
    }
)

ML_HINT = "scoring suggest needs scikit-learn: pip install 'leadflow[ml]'"


class MissingML(RuntimeError):
    """scikit-learn is not installed (it is the optional ``ml`` extra)."""


class SuggestError(ValueError):
    """The file cannot support a suggestion (too few outcomes of a kind, no usable column)."""


Kind = Literal["equals", "between", "missing"]


@dataclass(frozen=True, slots=True)
class Level:
    """One indicator of a field: a condition a rule can state, and a readable name."""

    ref: str
    kind: Kind
    operand: Any  # a value, (low, high), or None for missing
    name: str

    def holds(self, value: Any) -> bool:
        """The rule's condition on the field's value, by the engine's own operators."""
        if self.kind == "missing":
            return holds("exists", False, value)
        return holds(self.kind, self.operand, value)


@dataclass(frozen=True, slots=True)
class Group:
    """The levels of one field; rows that hold none are its reference (0 points)."""

    ref: str
    levels: list[Level]


@dataclass(frozen=True, slots=True)
class Suggestion:
    file: str
    label: str
    rows: int
    train_rows: int
    holdout_rows: int
    seed: int
    base_rate: float
    scoring: Scoring
    yaml: str
    auc_suggested: float | None
    auc_current: float | None
    auc_model: float | None
    holdout_segments: list[SegmentStats]
    current_source: str
    strength: float  # the L1 C chosen by cross-validation
    skipped: dict[str, str] = field(default_factory=dict)  # field -> why no rule

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "label": self.label,
            "rows": self.rows,
            "train_rows": self.train_rows,
            "holdout_rows": self.holdout_rows,
            "seed": self.seed,
            "l1_c": self.strength,
            "base_rate": self.base_rate,
            "auc": {
                "suggested": self.auc_suggested,
                "current": self.auc_current,
                "current_source": self.current_source,
                "model": self.auc_model,
            },
            "holdout_segments": [s.as_dict() for s in self.holdout_segments],
            "thresholds": self.scoring.thresholds.model_dump(),
            "rules": [
                r.model_dump(mode="json", by_alias=True, exclude_none=True)
                for r in self.scoring.rules
            ],
            "skipped": self.skipped,
            "yaml": self.yaml,
        }


# -- splitting -------------------------------------------------------------------------------


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


# -- features --------------------------------------------------------------------------------


def nice(x: float, *, down: bool = False, up: bool = False) -> float:
    """``x`` to two significant digits (37 -> 37, 1234 -> 1200, 0.0456 -> 0.046)."""
    if x == 0:
        return 0.0
    digits = 1 - math.floor(math.log10(abs(x)))
    factor = 10.0**digits
    scaled = x * factor
    rounded = math.floor(scaled) if down else math.ceil(scaled) if up else round(scaled)
    return round(rounded / factor, max(digits, 0))


def _show(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _range(start: float, end: float, top: bool) -> str:
    if top:
        return f"{_show(start)} or more"
    return _show(start) if start == end else f"{_show(start)} to {_show(end)}"


def _numeric_group(ref: str, numbers: list[float], min_count: int) -> Group | None:
    ordered = sorted(numbers)
    low, high = ordered[0], ordered[-1]
    integral = all(v.is_integer() for v in ordered)
    edges: list[float] = []
    for q in QUANTILES:
        raw = ordered[min(int(q * len(ordered)), len(ordered) - 1)]
        edge = float(round(nice(raw))) if integral else nice(raw)
        if low < edge <= high and edge not in edges:
            edges.append(edge)
    if not edges:  # one value dominates (mostly 0): split it from the rest
        above = next(v for v in ordered if v > low)
        edges = [above if integral else min(nice(above, up=True), high)]
    edges.sort()

    def counts(cuts: list[float]) -> list[int]:
        bounds = [-math.inf, *cuts, math.inf]
        return [
            sum(1 for v in ordered if bounds[i] <= v < bounds[i + 1])
            for i in range(len(bounds) - 1)
        ]

    while edges:  # merge the smallest range into its smaller neighbour until all are big enough
        sizes = counts(edges)
        smallest = min(range(len(sizes)), key=sizes.__getitem__)
        if sizes[smallest] >= min_count:
            break
        if smallest == 0:
            edges.pop(0)
        elif smallest == len(sizes) - 1:
            edges.pop()
        else:
            left, right = sizes[smallest - 1], sizes[smallest + 1]
            edges.pop(smallest - 1 if left <= right else smallest)
    if not edges:
        return None
    floor = 0.0 if low >= 0 else nice(low, down=True)
    ceiling = 10.0 ** (math.floor(math.log10(high)) + 2) if high > 0 else 0.0
    bounds = [floor, *edges, ceiling]
    levels = []
    for i in range(len(bounds) - 1):
        start, last = bounds[i], i == len(bounds) - 2
        end = bounds[i + 1] - 1 if integral and not last else bounds[i + 1]
        levels.append(Level(ref, "between", (float(start), float(end)), _range(start, end, last)))
    return Group(ref, levels)


def _categorical_group(ref: str, values: list[Any], min_count: int) -> Group | None:
    spellings: defaultdict[str, Counter[Any]] = defaultdict(Counter)
    for value in values:
        key = str(value).strip().casefold()
        spellings[key][value] += 1
    frequent = sorted(
        ((sum(c.values()), key) for key, c in spellings.items() if sum(c.values()) >= min_count),
        reverse=True,
    )[:MAX_LEVELS]
    levels = []
    for _, key in frequent:
        shown = spellings[key].most_common(1)[0][0]
        levels.append(Level(ref, "equals", shown, str(shown)))
    return Group(ref, levels) if levels else None


def candidates(history: History) -> list[str]:
    """Field references a rule could use: enrichment, lead fields, the other columns.

    Enrichment comes first: when a value of a field picks the same leads as one of
    the enrichment (the title "CEO" and seniority c_level), the enrichment's rule
    is kept, as it also reads the titles the file never had.
    """
    fields = list(history.plan.fields)
    refs = [q for q in QUALITY_CANDIDATES if q != "quality.country" or "country" not in fields]
    if history.plan.has_source:
        refs.append("quality.channel")
    refs += fields
    refs += [f"answers.{name}" for name in history.plan.custom()]
    return refs


def build_groups(
    refs: Sequence[str], views: Sequence[LeadView]
) -> tuple[list[Group], dict[str, str]]:
    """The indicator groups of each field on the training views; why the others have none."""
    n = len(views)
    min_count = max(10, math.ceil(0.01 * n))
    groups: list[Group] = []
    skipped: dict[str, str] = {}
    for ref in refs:
        values = [value_of(view, ref) for view in views]
        present = [v for v in values if not _empty(v) and not isinstance(v, list | dict)]
        missing = n - len(present)
        numbers = [x for v in present if (x := _number(v)) is not None]
        if present and sum(1 for v in present if _DATE.match(str(v))) >= NUMERIC_SHARE * len(
            present
        ):
            skipped[ref] = "dates: a past date says nothing about a new lead"
            continue
        group: Group | None
        if present and len(numbers) >= NUMERIC_SHARE * len(present) and len(set(numbers)) >= 5:
            group = _numeric_group(ref, numbers, min_count)
        else:
            group = _categorical_group(ref, present, min_count)
        levels = list(group.levels) if group else []
        if missing >= min_count and present:
            levels.append(Level(ref, "missing", None, "missing"))
        if not levels and not present and ref.startswith("quality."):
            continue  # enrichment the file has no column for: nothing to say
        if not levels:
            distinct = len({str(v).casefold() for v in present})
            skipped[ref] = (
                "always empty"
                if not present
                else f"{distinct} distinct values, none on {min_count}+ leads"
            )
            continue
        groups.append(Group(ref, levels))
    return groups, skipped


# -- fitting ---------------------------------------------------------------------------------


def _sklearn() -> tuple[Any, Any]:
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


def _matrix(csr_matrix: Any, hits: Sequence[Sequence[int]], width: int) -> Any:
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


# -- rules and YAML --------------------------------------------------------------------------

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]|$)")
_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")
_RESERVED = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n"})


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _show(float(value))
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text, ensure_ascii=False)


def _slug(text: str, limit: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")
    return slug[:limit].strip("-") or "x"


def _field_name(ref: str) -> str:
    return ref.removeprefix("quality.").removeprefix("answers.")


def _category(ref: str) -> Category:
    if ref in DATA_QUALITY:
        return "data_quality"
    return "intent" if ref in INTENT else "fit"


def _joined_ranges(group: Group, points: dict[int, int]) -> list[tuple[Level, int]]:
    """Neighbouring ranges with the same points become one range: one rule, not three."""
    ranges = [k for k, level in enumerate(group.levels) if level.kind == "between"]
    top = ranges[-1] if ranges else -1
    joined: list[tuple[Level, int]] = []
    run: list[int] = []
    for k in [*ranges, -1]:
        if run and (k == -1 or k != run[-1] + 1 or points.get(k) != points[run[0]]):
            low, high = group.levels[run[0]].operand[0], group.levels[run[-1]].operand[1]
            name = _range(low, high, run[-1] == top)
            joined.append((Level(group.ref, "between", (low, high), name), points[run[0]]))
            run = []
        if k in points:
            run.append(k)
    return joined


def rules_of(groups: Sequence[Group], points: dict[tuple[int, int], int]) -> list[dict[str, Any]]:
    """Rules as plain data, strongest fields first; same-point values of a field share a rule."""
    by_group: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)
    for (g, k), p in points.items():
        by_group[g].append((k, p))
    order = sorted(by_group, key=lambda g: -max(abs(p) for _, p in by_group[g]))
    rules: list[dict[str, Any]] = []
    ids: set[str] = set()
    for g in order:
        group = groups[g]
        name = _field_name(group.ref)
        merged: defaultdict[int, list[Level]] = defaultdict(list)
        singles: list[tuple[Level, int]] = []
        for k, p in by_group[g]:
            level = group.levels[k]
            if level.kind == "equals":
                merged[p].append(level)
            elif level.kind == "missing":
                singles.append((level, p))
        singles += _joined_ranges(group, dict(by_group[g]))
        items: list[tuple[list[Level], int]] = [(lv, p) for p, lv in merged.items()]
        items += [([lv], p) for lv, p in singles]

        def place(item: tuple[list[Level], int]) -> tuple[int, float, int]:
            level = item[0][0]
            if level.kind == "missing":
                return (2, 0.0, -item[1])
            if level.kind == "between":
                return (0, level.operand[0], 0)
            return (1, 0.0, -item[1])

        for levels, p in sorted(items, key=place):
            when: dict[str, Any] = {"field": group.ref}
            first = levels[0]
            if first.kind == "missing":
                when["exists"] = False
                reason = f"No {name}"
            elif first.kind == "between":
                when["between"] = list(first.operand)
                reason = f"{name} {first.name}: {{value}}"
            elif len(levels) == 1:
                when["equals"] = first.operand
                reason = f"{name} is {{value}}"
            else:
                when["in"] = [lv.operand for lv in levels]
                reason = f"{name} is {{value}}"
            value_part = "-".join(lv.name for lv in levels)
            base = f"suggested-{_slug(name, 24)}-{_slug(value_part, 28)}"
            rule_id, n = base, 2
            while rule_id in ids:
                rule_id, n = f"{base}-{n}", n + 1
            ids.add(rule_id)
            rules.append(
                {
                    "id": rule_id,
                    "category": _category(group.ref),
                    "points": p,
                    "when": when,
                    "reason": reason[:200],
                }
            )
    return rules


def _flow(mapping: dict[str, Any]) -> str:
    parts = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            shown = _flow(value)
        elif isinstance(value, list):
            shown = "[" + ", ".join(_scalar(v) for v in value) + "]"
        else:
            shown = _scalar(value)
        parts.append(f"{key}: {shown}")
    return "{" + ", ".join(parts) + "}"


def to_yaml(thresholds: dict[str, int], rules: Sequence[dict[str, Any]], header: str) -> str:
    lines = [*(f"# {line}".rstrip() for line in header.splitlines()), "scoring:"]
    lines.append(f"  thresholds: {_flow(thresholds)}")
    if not rules:
        lines.append("  rules: []")
    else:
        lines.append("  rules:")
        lines.extend(f"    - {_flow(rule)}" for rule in rules)
    return "\n".join(lines) + "\n"


def load_block(text: str) -> Scoring:
    """The printed block read back through the config schema; a failure here is our bug."""
    try:
        return load_config_text(text, "<suggestion>").scoring
    except ConfigError as exc:  # pragma: no cover - guarded by tests
        raise RuntimeError(f"the suggested block does not load:\n{exc}\n{text}") from exc


def thresholds_of(scores: Sequence[int]) -> dict[str, int]:
    """hot: the top ~20 % of training scores; warm: the top ~50 %."""
    ordered = sorted(scores)

    def at(share: float) -> int:
        return ordered[min(int((1 - share) * len(ordered)), len(ordered) - 1)]

    warm = max(1, at(WARM_SHARE))
    hot = max(warm + 1, at(HOT_SHARE))
    if hot > 100:
        warm, hot = 99, 100
    return {"warm": warm, "hot": hot}


# -- the whole suggestion --------------------------------------------------------------------


def _describe(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def suggest_rules(
    history: History,
    current: Scoring,
    *,
    current_source: str = "current rules",
    holdout: float = 0.3,
    seed: int = 7,
    now: datetime | None = None,
) -> Suggestion:
    """Fit, round, print, reload and measure: see the module's docstring."""
    make_model, csr_matrix = _sklearn()
    labels = history.labels
    positives = sum(labels)
    if positives < MIN_CLASS or len(labels) - positives < MIN_CLASS:
        raise SuggestError(
            f"needs at least {MIN_CLASS} converted and {MIN_CLASS} not converted leads; "
            f"the file has {positives} and {len(labels) - positives}"
        )
    moment = now or datetime.now(UTC)
    views = list(history.views())
    train, test = split(labels, holdout, seed)
    train_views = [views[i] for i in train]
    train_labels = [labels[i] for i in train]
    test_views = [views[i] for i in test]
    test_labels = [labels[i] for i in test]

    groups, skipped = build_groups(candidates(history), train_views)
    hits, columns = indicators(groups, train_views)
    if not columns:
        raise SuggestError("no column has a value shared by enough leads to learn from")
    matrix = _matrix(csr_matrix, hits, len(columns))
    strength, _ = choose_c(make_model, matrix, train_labels, seed)
    model = make_model(strength).fit(matrix, train_labels)
    weights = [float(w) for w in model.coef_[0]]
    points = points_of(columns, weights, hits)
    rules = rules_of(groups, points)

    provisional = Scoring.model_validate({"rules": rules})
    train_scores = [score(provisional, v, moment).score for v in train_views]
    thresholds = thresholds_of(train_scores)

    test_hits, test_columns = indicators(groups, test_views, keep=columns)
    assert test_columns == columns
    model_auc = auc(
        [float(p) for p in model.predict_proba(_matrix(csr_matrix, test_hits, len(columns)))[:, 1]],
        test_labels,
    )
    current_scores = [score(current, v, moment).score for v in test_views]
    current_auc = auc(current_scores, test_labels)

    def header(suggested_auc: float | None, segments: Sequence[SegmentStats]) -> str:
        seg = "; ".join(
            f"{s.segment} {s.count} leads, {100 * (s.rate or 0):.1f}% converted"
            for s in segments[:3]
        )
        lines = [
            f"Suggested by `leadflow scoring suggest` from {history.path.name} "
            f"(outcome column {history.plan.label!r}).",
            f"L1 logistic regression (C={strength:g}, by 5-fold cross-validation) on "
            f"{len(train)} leads ({100 * (1 - holdout):.0f}%, stratified, seed {seed}); "
            f"measured on the {len(test)} held out.",
            f"Held-out AUC: suggested rules {_describe(suggested_auc)}, current rules "
            f"{_describe(current_auc)} ({current_source}); the fitted model before rounding "
            f"to points {_describe(model_auc)}.",
            f"Held out, with these rules: {seg} (base rate {100 * positives / len(labels):.1f}%).",
            "Thresholds: hot is about the top 20% of training leads, warm the next 30%.",
        ]
        if skipped:
            lines.append("No rule from: " + ", ".join(f"{r} ({why})" for r, why in skipped.items()))
        lines += [
            "Nothing was applied. Save this output as suggested.yaml, check it with",
            f"  leadflow backtest {shlex.quote(history.path.name)} "
            f"--label {shlex.quote(history.plan.label)} --compare suggested.yaml",
            "then put its thresholds and rules under scoring: in your config.",
        ]
        return "\n".join(lines)

    # Measure the block as printed: render, load back, score the held-out rows with it.
    draft = to_yaml(thresholds, rules, "")
    loaded = load_block(draft)
    expected = Scoring.model_validate({"thresholds": thresholds, "rules": rules})
    if loaded != expected:  # pragma: no cover - a rendering bug, never a user's mistake
        raise RuntimeError(f"the suggested block reads back differently:\n{draft}")
    test_scores = [score(loaded, v, moment) for v in test_views]
    suggested_auc = auc([r.score for r in test_scores], test_labels)
    evaluation = summarise(
        RuleSet("suggested", "suggestion", loaded),
        [r.score for r in test_scores],
        [r.segment for r in test_scores],
        test_labels,
    )
    text = to_yaml(thresholds, rules, header(suggested_auc, evaluation.segments))
    assert load_block(text) == loaded
    return Suggestion(
        file=str(history.path),
        label=history.plan.label,
        rows=len(labels),
        train_rows=len(train),
        holdout_rows=len(test),
        seed=seed,
        base_rate=positives / len(labels),
        scoring=loaded,
        yaml=text,
        auc_suggested=suggested_auc,
        auc_current=current_auc,
        auc_model=model_auc,
        holdout_segments=evaluation.segments,
        current_source=current_source,
        strength=strength,
        skipped=skipped,
    )


def render(suggestion: Suggestion) -> str:
    """What the command prints: the YAML block, whose comments carry the figures."""
    return suggestion.yaml.rstrip("\n")
