"""``leadflow backtest``: how well the rules would have ranked leads whose outcome is known.

Every row of a file of past leads is scored with the rules (exactly as the
``lead.score`` stage would, see :mod:`leadflow.analysis.history`), and the
scores are held against the outcomes:

- per segment: leads, conversions, conversion rate and lift over the base rate,
  i.e. whether hot leads really convert more than warm ones, and warm more than cold;
- the AUC of the score: the chance that a converted lead scores above one that
  did not (ties count half), the Mann-Whitney U statistic over P·N;
- a calibration table: conversion rate per score band, to see whether a higher
  score means a likelier sale all the way up.

With a second rule set the same figures are shown side by side, scored on the
same rows, so a change to the rules can be judged before it is deployed.

With the config's routing, the report also shows how the leads would have been
distributed per owner and queue (scored by the current rules, routed by the
current routing; capacity, working hours and out-of-office are not simulated,
since the file's leads arrived over many days), and the conversion rate of each.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from typing import Any

from leadflow.analysis.evaluation import (
    BANDS,
    SEGMENTS,
    Evaluation,
    Progress,
    RuleSet,
    evaluate,
    rate_of,
    summarise,
)
from leadflow.analysis.history import History, HistoryPlan, unreachable, view_of
from leadflow.config import Config
from leadflow.config.scoring import Scoring
from leadflow.routing.rules import decide
from leadflow.routing.views import RoutingLead, World
from leadflow.scoring.engine import LeadView, score


def without_limits(config: Config) -> Config:
    """The config with no capacity, hours, holidays or absences: the file spans many days."""
    data = config.model_dump(by_alias=True)
    for owner in data["owners"]:
        owner.update(max_per_day=None, max_open=None, hours=None, holidays=None, out_of_office=[])
    return Config.model_validate(data)


def route_all(
    config: Config, views: Sequence[LeadView], scored: Sequence[tuple[int, str]]
) -> list[str]:
    """Where each lead would go: an owner's email, or ``queue:<name>``."""
    world = World(now=datetime.now(UTC))
    out = []
    for view, (points, segment) in zip(views, scored, strict=True):
        fields = {**view.fields, "score": points, "segment": segment}
        decision = decide(RoutingLead(view=dataclasses.replace(view, fields=fields)), world, config)
        world = world.after(decision)
        out.append(decision.owner or f"queue:{decision.queue}")
    return out


@dataclass(frozen=True, slots=True)
class Share:
    assignee: str  # an owner's email or queue:<name>
    count: int
    conversions: int

    def as_dict(self) -> dict[str, Any]:
        return {"assignee": self.assignee, "leads": self.count, "conversions": self.conversions}


def distribution(assignees: Sequence[str], labels: Sequence[bool]) -> list[Share]:
    counts = Counter(assignees)
    won = Counter(a for a, label in zip(assignees, labels, strict=True) if label)
    return [Share(a, n, won[a]) for a, n in counts.most_common()]


@dataclass(frozen=True, slots=True)
class Report:
    file: str
    label: str
    rows: int
    conversions: int
    evaluations: list[Evaluation]
    notes: list[str]
    routing: list[Share] = dataclasses.field(default_factory=list)

    @property
    def base_rate(self) -> float:
        return self.conversions / self.rows if self.rows else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "label": self.label,
            "rows": self.rows,
            "conversions": self.conversions,
            "base_rate": self.base_rate,
            "rulesets": [e.as_dict() for e in self.evaluations],
            "routing": [share.as_dict() for share in self.routing],
            "notes": self.notes,
        }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _lift(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _auc(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _mean(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render(report: Report) -> str:
    """The report as a person reads it: one block of columns per rule set, side by side."""
    evals = report.evaluations
    gap = "  |  "
    width = 33  # one rule set's block: 7 + 1 + 9 + 1 + 7 + 1 + 7

    def row(head: str, cells: Iterable[str]) -> str:
        return f"{head:<9}" + gap.join(f"{cell:<{width}}" for cell in cells)

    lines = [
        f"{report.file}: {report.rows} leads, {report.conversions} converted "
        f"(base rate {_pct(report.base_rate)}), outcome column {report.label!r}",
    ]
    lines += [
        f"  {e.name}: {e.source} ({e.rules} rules, version {e.ruleset_version})" for e in evals
    ]
    lines.append("")
    if len(evals) > 1:
        lines.append(row("", (f"{e.name:>7}" for e in evals)))
    lines.append(
        row("segment", (f"{'leads':>7} {'converted':>9} {'rate':>7} {'lift':>7}" for _ in evals))
    )
    for index, segment in enumerate((*SEGMENTS, "all")):
        cells = (
            f"{s.count:>7} {s.conversions:>9} {_pct(s.rate):>7} {_lift(s.lift):>7}"
            for s in (e.segments[index] for e in evals)
        )
        lines.append(row(segment, cells))
    lines.append("")
    lines.append(row("AUC", (f"{_auc(e.auc):>7}" for e in evals)))
    lines.append(
        "(the chance that a converted lead outscores one that did not; 0.5 is a coin toss)"
    )
    lines.append("")
    lines.append(row("score", (f"{'leads':>7} {'avg score':>9} {'rate':>7}" for _ in evals)))
    for index, (low, high) in enumerate(BANDS):
        cells = (
            f"{b.count:>7} {_mean(b.mean_score):>9} {_pct(b.rate):>7}"
            for b in (e.calibration[index] for e in evals)
        )
        lines.append(row(f"{low}-{high}", cells))
    if report.routing:
        lines.append("")
        lines.append("routing (current rules; capacity, hours and absences not simulated):")
        lines.append(
            f"  {'owner or queue':<36} {'leads':>7} {'share':>7} {'converted':>9} {'rate':>7}"
        )
        for share in report.routing:
            lines.append(
                f"  {share.assignee:<36} {share.count:>7} {_pct(share.count / report.rows):>7} "
                f"{share.conversions:>9} {_pct(rate_of(share.conversions, share.count)):>7}"
            )
    if report.notes:
        lines.append("")
        lines.extend(f"Note: {note}" for note in report.notes)
    return "\n".join(line.rstrip() for line in lines)


PARALLEL_MIN = 20_000  # rows from which worker processes pay for their start


CHUNK = 5_000


def _score_chunk(
    plan: HistoryPlan,
    region: str | None,
    rows: Sequence[dict[str, str]],
    scorings: Sequence[Scoring],
    now: datetime,
    routing: Config | None = None,
) -> tuple[list[list[tuple[int, str]]], list[str]]:
    """(score, segment) of each row for each rule set, and where the current rules would
    send it: one worker's share of the file."""
    out: list[list[tuple[int, str]]] = [[] for _ in scorings]
    views = []
    for row in rows:
        view = view_of(plan, row, region)
        views.append(view)
        for i, scoring in enumerate(scorings):
            result = score(scoring, view, now)
            out[i].append((result.score, result.segment))
    assignees = route_all(routing, views, out[0]) if routing is not None else []
    return out, assignees


def _evaluate_parallel(
    history: History,
    rulesets: Sequence[RuleSet],
    now: datetime,
    jobs: int,
    progress: Progress | None,
    routing: Config | None = None,
) -> tuple[list[Evaluation], list[str]]:
    """As :func:`evaluate`, over chunks of rows in ``jobs`` processes (results kept in order)."""
    scorings = [r.scoring for r in rulesets]
    chunks = [history.rows[i : i + CHUNK] for i in range(0, len(history.rows), CHUNK)]
    scores: list[list[int]] = [[] for _ in rulesets]
    segments: list[list[str]] = [[] for _ in rulesets]
    # spawn, not fork: the progress bar runs a thread, and forking a threaded process is unsafe.
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = pool.map(
            _score_chunk,
            repeat(history.plan),
            repeat(history.region),
            chunks,
            repeat(scorings),
            repeat(now),
            repeat(routing),
        )
        assignees: list[str] = []
        for chunk, (result, routed) in zip(chunks, results, strict=True):
            assignees.extend(routed)
            for i, pairs in enumerate(result):
                scores[i].extend(s for s, _ in pairs)
                segments[i].extend(seg for _, seg in pairs)
            if progress:
                progress(len(chunk))
    evaluations = [
        summarise(ruleset, scores[i], segments[i], history.labels)
        for i, ruleset in enumerate(rulesets)
    ]
    return evaluations, assignees


def backtest(
    history: History,
    rulesets: Sequence[RuleSet],
    *,
    now: datetime | None = None,
    progress: Progress | None = None,
    jobs: int = 1,
    config: Config | None = None,
) -> Report:
    """Score the file's rows with each rule set and summarise them against the outcomes.

    With ``jobs`` > 1 and a long file, rows are scored in that many processes:
    the enrichment (email and phone parsing) is most of the time, and each row is
    independent of the others.
    """
    moment = now or datetime.now(UTC)
    routing = without_limits(config) if config is not None else None
    assignees: list[str] = []
    if jobs > 1 and len(history.rows) >= PARALLEL_MIN:
        evaluations, assignees = _evaluate_parallel(
            history, rulesets, moment, jobs, progress, routing
        )
    else:
        views = list(history.views())
        evaluations = evaluate(rulesets, views, history.labels, now=moment, progress=progress)
        if routing is not None:
            thresholds = rulesets[0].scoring.thresholds
            scored = [(points, thresholds.segment(points)) for points in evaluations[0].scores]
            assignees = route_all(routing, views, scored)
    notes: list[str] = []
    for ruleset in rulesets:
        prefix = f"{ruleset.name}: " if len(rulesets) > 1 else ""
        notes.extend(prefix + note for note in unreachable(ruleset.scoring, history.plan))
    return Report(
        str(history.path),
        history.plan.label,
        len(history.rows),
        history.conversions,
        evaluations,
        notes,
        distribution(assignees, history.labels) if assignees else [],
    )
