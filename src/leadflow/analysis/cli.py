"""The offline tools' commands: ``backtest``, ``scoring suggest``, ``dedup``, ``import``.

``backtest`` and ``scoring suggest`` read a CSV file of past leads with an
outcome column and write nothing: they print a report (or JSON with ``--json``)
on stdout. Bad input (a missing column, an unreadable outcome, an invalid
config) is reported on stderr with its file, line and column, with exit code 2.
``dedup`` writes the rows of a CSV file with a cluster id; ``import`` loads
contacts or accounts into the database.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from leadflow.commands.common import CliError, config_or_exit, database
from leadflow.settings import get_settings

if TYPE_CHECKING:
    from leadflow.analysis.history import History
    from leadflow.analysis.importer import Report
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
HistoryMapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="Column SRC feeds lead field FIELD (SRC=FIELD), or custom field answers.NAME; "
        "repeatable.",
    ),
]
MapOption = Annotated[
    list[str] | None,
    typer.Option("--map", help="Column SRC feeds lead field FIELD (SRC=FIELD); repeatable."),
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
    chosen = path or get_settings().config
    config = config_or_exit(chosen)
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
    maps: HistoryMapOption = None,
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
        rulesets.append(RuleSet("compare", str(compare), config_or_exit(compare).scoring))
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
    maps: HistoryMapOption = None,
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


def dedup(
    file: Annotated[Path, typer.Argument(help="CSV file with a header row.", exists=True)],
    out: Annotated[Path, typer.Option("--out", help="Where to write the rows with cluster_id.")],
    maps: MapOption = None,
    fields: Annotated[
        list[str] | None,
        typer.Option(
            "--field",
            help="Also compare COLUMN as KIND (name, text, exact, date, address, postcode, "
            "phone, email, company); repeatable.",
        ),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option("--id", help="Column identifying a row: cluster_id is its value."),
    ] = None,
    threshold: Annotated[
        float, typer.Option(min=0.5, max=0.9999, help="Match probability that joins two rows.")
    ] = 0.9,
) -> None:
    """Find the rows of a CSV file that are the same person; write them with a cluster_id.

    It says which columns gave the rows blocking keys (rows are compared only with rows
    sharing one), and warns of rows with none and of columns whose values do not look
    like the field their header names.

    Examples:

    \b
        leadflow dedup contacts.csv --out clusters.csv
        leadflow dedup contacts.csv --out clusters.csv --map Mail=email --field dob:date
    """
    from rich.progress import Progress as Bar

    from leadflow.analysis.columns import MappingError, auto_mapped, read_rows, unlike_columns
    from leadflow.analysis.dedup import cluster, plan_columns, records_of, write_rows

    headers, rows = read_rows(file)
    if id_column is not None and id_column not in headers:
        raise CliError(
            f"--id: {file} has no column {id_column!r} (its columns: {', '.join(headers)})", 2
        )
    try:
        plan = plan_columns(headers, maps or [], fields or [])
    except MappingError as exc:
        raise CliError(f"{file}: {exc}", 2) from exc
    for warning in unlike_columns(auto_mapped(plan.columns, maps or []), rows):
        typer.echo(warning, err=True)
    records = list(records_of(plan, rows))
    with Bar(transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("Comparing candidate pairs", total=None)
        result = cluster(
            plan.fields, records, threshold=threshold, progress=lambda n: bar.advance(task, n)
        )
    ids: list[int | str] = list(result.cluster_ids)
    if id_column is not None:
        ids = [rows[root][id_column] for root in result.cluster_ids]
    write_rows(out, headers, rows, ids)
    clusters = len(set(result.cluster_ids))
    compared = ", ".join(f"{f.name} ({f.kind.value})" for f in plan.fields)
    typer.echo(
        f"{len(rows)} rows -> {clusters} clusters ({len(rows) - clusters} duplicates); "
        f"{result.pairs_compared} pairs compared, {result.pairs_matched} matched; "
        f"compared: {compared}",
        err=True,
    )
    for line in result.coverage.lines():
        typer.echo(line, err=True)
    if result.skipped_keys:
        typer.echo(f"{result.skipped_keys} blocking keys were too common to use", err=True)


def import_file(
    file: Annotated[Path, typer.Argument(help="CSV file with a header row.", exists=True)],
    maps: MapOption = None,
    accounts: Annotated[
        bool, typer.Option("--accounts", help="The rows are accounts (name, domain, owner).")
    ] = False,
    config_path: Annotated[
        Path | None, typer.Option("--config", help="Config file (default: LEADFLOW_CONFIG).")
    ] = None,
) -> None:
    """Load existing contacts (or accounts) so dedup and routing know them.

    An account's owner must be an owner of the config (a contact's may have left:
    it is kept as the history of who had them). For contacts it says which columns gave
    blocking keys (how known leads are looked up) and warns of rows with none.

    Examples:

    \b
        leadflow import contacts.csv
        leadflow import contacts.csv --map Mail=email
        leadflow import accounts.csv --accounts
    """
    from rich.progress import Progress as Bar

    from leadflow.analysis.columns import MappingError, auto_mapped, read_rows, unlike_columns
    from leadflow.analysis.importer import (
        contact_coverage,
        import_rows,
        plan_import,
        unknown_owners,
    )
    from leadflow.db import create_engine, session_factory

    settings = get_settings()
    config = config_or_exit(config_path or settings.config)
    headers, rows = read_rows(file)
    try:
        columns = plan_import(headers, maps or [], accounts=accounts)
    except MappingError as exc:
        raise CliError(f"{file}: {exc}", 2) from exc
    if not columns:
        raise CliError(f"{file}: no column maps to a field; use --map SRC=FIELD", 2)
    unknown = unknown_owners(rows, columns, config) if accounts else []
    if unknown:
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise CliError(
            f"{file}: {', '.join(unknown[:3])}{more}: not an owner of the config; owners: "
            f"{', '.join(o.email for o in config.owners) or 'none'} (nothing was imported)",
            2,
        )
    for warning in unlike_columns(auto_mapped(columns, maps or []), rows):
        typer.echo(warning, err=True)
    url = database(settings)

    async def main() -> Report:
        engine = create_engine(url, pool_size=1)
        try:
            with Bar(transient=True, disable=not sys.stderr.isatty()) as bar:
                task = bar.add_task(f"Importing {file.name}", total=len(rows))
                return await import_rows(
                    session_factory(engine),
                    config,
                    rows,
                    columns,
                    source=file.name,
                    accounts=accounts,
                    progress=lambda n: bar.advance(task, n),
                )
        finally:
            await engine.dispose()

    report = asyncio.run(main())
    mapped = ", ".join(f"{source}->{target}" for target, source in columns.items())
    typer.echo(f"Columns: {mapped}")
    if accounts:
        typer.echo(
            f"{report.rows} rows: {report.created} new accounts, {report.updated} updated, "
            f"{len(report.skipped)} skipped"
        )
    else:
        typer.echo(
            f"{report.rows} rows: {report.created} new contacts, {report.merged} merged into "
            f"known leads, {report.linked} linked for review, {len(report.skipped)} skipped"
        )
        for line in contact_coverage(rows, columns).lines():
            typer.echo(line, err=True)
    for problem in report.skipped[:20]:
        typer.echo(f"  {file}: {problem}", err=True)
    if len(report.skipped) > 20:
        typer.echo(f"  ... and {len(report.skipped) - 20} more", err=True)
