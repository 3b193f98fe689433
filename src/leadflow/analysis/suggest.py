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
model is fitted on what the rules will see. An L1 logistic regression on a
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

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from leadflow.analysis.evaluation import RuleSet, SegmentStats, auc, summarise
from leadflow.analysis.features import build_groups, candidates
from leadflow.analysis.fitting import (
    choose_c,
    indicator_matrix,
    indicators,
    load_sklearn,
    points_of,
    split,
)
from leadflow.analysis.history import History
from leadflow.analysis.rule_block import load_block, rules_of, thresholds_of, to_yaml
from leadflow.config.scoring import Scoring
from leadflow.scoring.engine import score

MIN_CLASS = 20  # converted and not converted leads each, at least


class SuggestError(ValueError):
    """The file cannot support a suggestion (too few outcomes of a kind, no usable column)."""


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
    make_model, csr_matrix = load_sklearn()
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
    matrix = indicator_matrix(csr_matrix, hits, len(columns))
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
    test_matrix = indicator_matrix(csr_matrix, test_hits, len(columns))
    model_auc = auc([float(p) for p in model.predict_proba(test_matrix)[:, 1]], test_labels)
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
