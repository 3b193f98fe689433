"""``leadflow backtest`` and ``leadflow scoring suggest``: the rules against known outcomes.

Both read a CSV file of past leads with an outcome column and write nothing:
they print a report (or JSON with ``--json``) on stdout. Bad input (a missing
column, an unreadable outcome, an invalid config) is reported on stderr with
its file, line and column, with exit code 2.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from leadflow.analysis.history import History
    from leadflow.config import Config
    from leadflow.config.scoring import Scoring

scoring_app = typer.Typer(
    help="Scoring rules: learn them from past leads.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

FileArg = Annotated[
    Path,
    typer.Argument(help="CSV file of past leads with a header row.", exists=True, dir_okay=False),
]
LabelOption = Annotated[
    str,
    typer.Option(
        "--label",
        help="Column with the outcome: 1/0, true/false, yes/no, won/lost, converted/not converted.",
    ),
]
MapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="Column SRC feeds lead field FIELD (SRC=FIELD), or custom field answers.NAME; "
        "repeatable.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Config file (default: LEADFLOW_CONFIG, else the demo)."),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        "--region", help="Region of phone numbers written without +country (e.g. US, DE)."
    ),
]


def _config_and_source(path: Path | None) -> tuple[Config, str]:
    """The config of ``--config`` / LEADFLOW_CONFIG / the demo, as the other commands load it."""
    from leadflow.cli import _config_or_exit
    from leadflow.settings import get_settings

    chosen = path or get_settings().config
    config = _config_or_exit(chosen)
    return config, str(chosen) if chosen else "built-in demo config"


def _scoring_or_exit(path: Path | None) -> tuple[Scoring, str]:
    config, source = _config_and_source(path)
    return config.scoring, source


def _history_or_exit(
    file: Path,
    label: str,
    maps: list[str] | None,
    region: str | None,
    exclude: list[str] | None = None,
) -> History:
    from leadflow.analysis.history import HistoryError, load_history

    try:
        return load_history(
            file, label=label, maps=maps or [], exclude=exclude or [], region=region
        )
    except HistoryError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


def backtest(
    file: FileArg,
    label: LabelOption,
    maps: MapOption = None,
    as_json: JsonOption = False,
    compare: Annotated[
        Path | None,
        typer.Option(
            "--compare", help="Another config (or a file with only scoring:) to show side by side."
        ),
    ] = None,
    config_path: ConfigOption = None,
    region: RegionOption = None,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", min=1, help="Processes for long files (default: one per CPU)."),
    ] = None,
) -> None:
    """Score past leads with the rules and show how well the score predicted the outcome."""
    from rich.progress import Progress as Bar

    from leadflow.analysis.backtest import backtest as run
    from leadflow.analysis.backtest import render
    from leadflow.analysis.evaluation import RuleSet

    config, source = _config_and_source(config_path)
    rulesets = [RuleSet("current", source, config.scoring)]
    if compare is not None:
        from leadflow.cli import _config_or_exit

        rulesets.append(RuleSet("compare", str(compare), _config_or_exit(compare).scoring))
    history = _history_or_exit(file, label, maps, region)
    with Bar(transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(f"Scoring {file.name}", total=len(history.rows))
        report = run(
            history,
            rulesets,
            progress=lambda n: bar.advance(task, n),
            jobs=jobs or os.cpu_count() or 1,
            config=config,
        )
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        typer.echo(render(report))


@scoring_app.command("suggest")
def suggest(
    file: FileArg,
    label: LabelOption,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            help="Leave COLUMN out (it leaks the outcome, or is an id); repeatable.",
        ),
    ] = None,
    maps: MapOption = None,
    as_json: JsonOption = False,
    config_path: ConfigOption = None,
    region: RegionOption = None,
    holdout: Annotated[
        float, typer.Option(min=0.1, max=0.5, help="Share of rows held out to measure the AUC.")
    ] = 0.3,
    seed: Annotated[int, typer.Option(help="Seed of the train/held-out split.")] = 7,
) -> None:
    """Suggest scoring rules fitted on past leads (a YAML block to paste; nothing is applied)."""
    from leadflow.analysis.fitting import MissingML
    from leadflow.analysis.suggest import SuggestError, render, suggest_rules

    current, source = _scoring_or_exit(config_path)
    history = _history_or_exit(file, label, maps, region, exclude)
    try:
        suggestion = suggest_rules(
            history, current, current_source=source, holdout=holdout, seed=seed
        )
    except MissingML as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    except SuggestError as exc:
        typer.echo(f"{file}: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(suggestion.as_dict(), indent=2))
    else:
        typer.echo(render(suggestion))
