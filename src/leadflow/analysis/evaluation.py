"""How well one rule set's scores ranked leads whose outcome is known.

Per segment: leads, conversions, conversion rate and lift over the base rate;
the AUC of the score; and a calibration table, the conversion rate per score
band. ``leadflow backtest`` shows these for the file's rows, ``leadflow
scoring suggest`` for its held-out rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from leadflow.config.scoring import Scoring, Segment
from leadflow.scoring.engine import LeadView, ruleset_version, score

SEGMENTS: tuple[Segment, ...] = ("hot", "warm", "cold")
BANDS: tuple[tuple[int, int], ...] = ((0, 19), (20, 39), (40, 59), (60, 79), (80, 100))
Progress = Callable[[int], None]


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """P(score of a converted lead > score of another), ties counting half; None without both.

    Scores are grouped by value, so this is one sort of the distinct scores:
    the sum over converted leads of (others scoring lower + half of those tied).
    """
    positives: Counter[float] = Counter()
    negatives: Counter[float] = Counter()
    for value, label in zip(scores, labels, strict=True):
        (positives if label else negatives)[value] += 1
    p, n = sum(positives.values()), sum(negatives.values())
    if not p or not n:
        return None
    below = 0
    u = 0.0
    for value in sorted(positives.keys() | negatives.keys()):
        u += positives[value] * (below + negatives[value] / 2)
        below += negatives[value]
    return u / (p * n)


@dataclass(frozen=True, slots=True)
class SegmentStats:
    segment: str
    count: int
    conversions: int
    rate: float | None
    lift: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "count": self.count,
            "conversions": self.conversions,
            "rate": self.rate,
            "lift": self.lift,
        }


@dataclass(frozen=True, slots=True)
class Band:
    low: int
    high: int
    count: int
    mean_score: float | None
    rate: float | None

    @property
    def name(self) -> str:
        return f"{self.low}-{self.high}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "band": self.name,
            "low": self.low,
            "high": self.high,
            "count": self.count,
            "mean_score": self.mean_score,
            "rate": self.rate,
        }


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One rule set's scores on the file, and what they say."""

    name: str
    source: str
    ruleset_version: str
    rules: int
    scores: list[int]
    segments: list[SegmentStats]
    auc: float | None
    calibration: list[Band]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "ruleset_version": self.ruleset_version,
            "rules": self.rules,
            "auc": self.auc,
            "segments": [s.as_dict() for s in self.segments],
            "calibration": [b.as_dict() for b in self.calibration],
        }


@dataclass(frozen=True, slots=True)
class RuleSet:
    name: str  # "current", "compare"
    source: str  # where it came from, as a person would recognise it
    scoring: Scoring


def rate_of(hits: int, count: int) -> float | None:
    """``hits`` out of ``count``; None out of none."""
    return hits / count if count else None


def summarise(
    ruleset: RuleSet, scores: list[int], segments: list[str], labels: Sequence[bool]
) -> Evaluation:
    """The figures of one rule set from its scores and segments."""
    base = rate_of(sum(labels), len(labels))
    stats = []
    for segment in (*SEGMENTS, "all"):
        members = [
            lab for seg, lab in zip(segments, labels, strict=True) if segment in (seg, "all")
        ]
        rate = rate_of(sum(members), len(members))
        lift = rate / base if rate is not None and base else None
        stats.append(SegmentStats(segment, len(members), sum(members), rate, lift))
    bands = []
    for low, high in BANDS:
        inside = [(s, lab) for s, lab in zip(scores, labels, strict=True) if low <= s <= high]
        mean = sum(s for s, _ in inside) / len(inside) if inside else None
        bands.append(
            Band(low, high, len(inside), mean, rate_of(sum(b for _, b in inside), len(inside)))
        )
    return Evaluation(
        ruleset.name,
        ruleset.source,
        ruleset_version(ruleset.scoring),
        len(ruleset.scoring.rules),
        scores,
        stats,
        auc(scores, labels),
        bands,
    )


def evaluate(
    rulesets: Sequence[RuleSet],
    views: Iterable[LeadView],
    labels: Sequence[bool],
    *,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> list[Evaluation]:
    """Score every view with every rule set (one pass over the views, built once)."""
    moment = now or datetime.now(UTC)
    scores: list[list[int]] = [[] for _ in rulesets]
    segments: list[list[str]] = [[] for _ in rulesets]
    for n, view in enumerate(views, 1):
        for i, ruleset in enumerate(rulesets):
            result = score(ruleset.scoring, view, moment)
            scores[i].append(result.score)
            segments[i].append(result.segment)
        if progress and n % 1000 == 0:
            progress(1000)
    if progress:
        progress(len(labels) % 1000)
    return [
        summarise(ruleset, scores[i], segments[i], labels) for i, ruleset in enumerate(rulesets)
    ]
