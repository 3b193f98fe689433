"""The ``leadflow`` command."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from leadflow import __version__
from leadflow.config import Config, ConfigError, load_config
from leadflow.config.loader import STARTER_CONFIG, builtin_text
from leadflow.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

app = typer.Typer(
    name="leadflow",
    help="Leadflow: form submissions in, followed-up leads out. Nothing lost, nothing doubled.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _config_or_exit(path: Path | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


def _database(settings: Settings) -> str:
    from leadflow.db import database_url

    if not settings.database_url:
        typer.echo(
            f"Starting the embedded PostgreSQL in {settings.data_dir / 'postgres'} ...", err=True
        )
    return database_url(settings)


# Collect the youngest generation after this many new objects (Python's default: 700).
# A batch of leads allocates some hundred thousand objects, nearly all freed by
# reference counting; collecting every 700 cost the worker 6-9 % of its throughput
# (bench-pipeline), for no memory saved. Older generations every 20 of the younger.
GC_THRESHOLDS = (20_000, 20, 20)


def _freeze_startup_objects() -> None:
    """Keep the garbage collector off what start-up built (modules, classes, config):
    it lives as long as the process, and scanning it again and again made full
    collections pause a busy server for 100 ms and more. And collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run a worker in this process.")
    ] = True,
) -> None:
    """Run the API, the hosted forms and (unless --no-worker) a worker; migrates first."""
    import uvicorn

    from leadflow import migrate
    from leadflow.app import create_app
    from leadflow.settings import admin_token

    settings = get_settings()
    _logging(settings)
    config = _config_or_exit(settings.config)
    url = _database(settings)
    migrate.upgrade(url)
    token = admin_token(settings)
    typer.echo(f"Leadflow {__version__} on http://{host}:{port}", err=True)
    for key in config.forms:
        typer.echo(f"  form {key!r}: http://{host}:{port}/f/{key}", err=True)
    if settings.admin_token is None:
        typer.echo(f"  admin token (from {settings.data_dir / 'admin-token'}): {token}", err=True)
    app_ = create_app(settings, config=config, database_url=url, embedded_worker=worker)
    _freeze_startup_objects()
    uvicorn.run(
        app_,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs run at once (default: LEADFLOW_WORKER_CONCURRENCY).")
    ] = None,
    migrate_first: Annotated[
        bool,
        typer.Option(
            "--migrate",
            help="Apply the migrations first (under a lock: several processes may start at "
            "once) instead of waiting for `leadflow migrate` or `serve` to apply them.",
        ),
    ] = False,
    alive_file: Annotated[
        Path | None,
        typer.Option(
            help="Touch this file every heartbeat while the worker lives (also while it "
            "waits for the database), for a container healthcheck."
        ),
    ] = None,
) -> None:
    """Run a worker only (start as many as you like, on any machines).

    It waits for the database and its schema, rides through database restarts and
    failovers, and on SIGTERM lets running jobs finish (pipeline.stop_grace)."""
    import signal

    from leadflow import migrate as migrations
    from leadflow import runtime
    from leadflow.pipeline.worker import WorkerSupervisor, wait_for_database, wait_for_schema

    settings = get_settings()
    _logging(settings)
    config = _config_or_exit(settings.config)
    url = _database(settings)

    async def main() -> None:
        if migrate_first:
            await wait_for_database(url)
            await asyncio.to_thread(migrations.upgrade, url)
        else:
            await wait_for_schema(url)
        rt = await runtime.start(settings, config, url)
        supervisor = WorkerSupervisor(
            rt,
            url,
            kind="worker",
            concurrency=concurrency or settings.worker_concurrency,
            alive_file=alive_file,
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, _stopper(supervisor.stop))
        try:
            await supervisor.run()
        finally:
            await rt.close()

    _freeze_startup_objects()
    asyncio.run(main())


def _stopper(stop: Callable[[], None]) -> Callable[[], None]:
    """The first signal stops gracefully; a second one ends the process at once (its
    running jobs then run again elsewhere, as after a crash)."""
    signals = 0

    def handle() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            typer.echo("Stopping: running jobs finish first (again to stop now).", err=True)
            stop()
        else:
            typer.echo("Stopping now: running jobs will run again on another worker.", err=True)
            os._exit(1)

    return handle


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Workers and their last heartbeats, the queue per task, and stalled stages.

    Exits 1 when something needs a person (no worker running, leads waiting too long)."""
    from leadflow.pipeline.cli import render
    from leadflow.pipeline.status import status as pipeline_status

    settings = get_settings()
    config = _config_or_exit(settings.config)
    report = _with_session(lambda session: pipeline_status(session, config))
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        render(report)
    if not report.healthy:
        raise typer.Exit(1)


@app.command()
def migrate(
    check: Annotated[
        bool, typer.Option("--check", help="Only check that models and migrations agree.")
    ] = False,
) -> None:
    """Bring the database schema (leads and queue) to the latest version."""
    from leadflow import migrate as migrations

    settings = get_settings()
    _logging(settings)
    url = _database(settings)
    if check:
        from alembic.util import CommandError

        try:
            migrations.check(url)
        except CommandError as exc:
            typer.echo(f"Migration check failed: {exc}", err=True)
            raise typer.Exit(1) from exc
        typer.echo("Models and migrations agree.")
        return
    migrations.upgrade(url)
    typer.echo("Database is at the latest migration.")


@app.command("check-config")
def check_config(
    file: Annotated[
        Path | None, typer.Argument(help="Config file (default: LEADFLOW_CONFIG).")
    ] = None,
) -> None:
    """Validate a config file; errors name the file, the line and the field."""
    path = file or get_settings().config
    config = _config_or_exit(path)
    typer.echo(
        f"{path or 'built-in demo config'}: OK ({len(config.forms)} forms, "
        f"{len(config.owners)} owners, {len(config.sla)} SLA policies)"
    )


@app.command()
def init(
    file: Annotated[Path, typer.Argument(help="Where to write the starter config.")] = Path(
        "leadflow.yaml"
    ),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter leadflow.yaml."""
    if file.exists() and not force:
        typer.echo(f"{file} exists; use --force to overwrite it.", err=True)
        raise typer.Exit(1)
    file.write_text(builtin_text(STARTER_CONFIG), encoding="utf-8")
    typer.echo(f"Wrote {file}. Check it with: leadflow check-config {file}")


dlq = typer.Typer(
    help="Dead letters: jobs that failed for good, and their replay.", no_args_is_help=True
)
app.add_typer(dlq, name="dlq")


def _since(value: str | None) -> datetime | None:
    """A time given as ISO 8601 or as an age like 2h or 7d ("since 2 hours ago")."""
    if value is None:
        return None
    from leadflow.config.durations import parse_duration

    try:
        when = datetime.fromisoformat(value)
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    except ValueError:
        pass
    try:
        return datetime.now(UTC) - parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r}: give an ISO time or an age like 2h or 7d") from exc


def _with_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from leadflow.db import create_engine, session_factory, transaction

    settings = get_settings()
    url = _database(settings)

    async def main() -> T:
        engine = create_engine(url, pool_size=1)
        try:
            async with transaction(session_factory(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(main())


KindOption = Annotated[str | None, typer.Option("--kind", help="Only this task, e.g. crm.sync.")]
LeadOption = Annotated[str | None, typer.Option("--lead", help="Only this lead's jobs (lead id).")]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="Failed since: ISO time or age (2h, 7d).")
]


def _filters(kind: str | None, lead: str | None, since: str | None) -> Any:
    from leadflow.pipeline.repository import DeadLetterFilter

    try:
        lead_id = uuid.UUID(lead) if lead else None
    except ValueError as exc:
        raise typer.BadParameter(f"{lead!r} is not a lead id") from exc
    return DeadLetterFilter(kind=kind, lead_id=lead_id, since=_since(since))


@dlq.command("list")
def dlq_list(
    kind: KindOption = None,
    lead: LeadOption = None,
    since: SinceOption = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List dead letters, newest first, with their last error."""
    from leadflow.pipeline.service import list_dead_letters

    filters = _filters(kind, lead, since)
    letters = _with_session(lambda session: list_dead_letters(session, filters, limit=limit))
    if as_json:
        rows = [
            {
                "job_id": d.job_id,
                "kind": d.kind,
                "lead_id": str(d.lead_id) if d.lead_id else None,
                "attempts": d.attempts,
                "failed_at": d.failed_at.isoformat() if d.failed_at else None,
                "error": d.error,
            }
            for d in letters
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not letters:
        typer.echo("No dead letters.")
        return
    for d in letters:
        when = d.failed_at.strftime("%Y-%m-%d %H:%M:%S") if d.failed_at else "?"
        typer.echo(f"{d.job_id:>8}  {d.kind:<14} {when}  lead {d.lead_id}  attempts {d.attempts}")
        typer.echo(f"          {d.error or 'no error recorded'}")


@dlq.command("replay")
def dlq_replay(
    job_ids: Annotated[list[int] | None, typer.Argument(help="Dead letter ids to replay.")] = None,
    kind: KindOption = None,
    lead: LeadOption = None,
    since: SinceOption = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
) -> None:
    """Put dead letters back in the queue: by id, by filter, or --all. They keep their history."""
    from leadflow.pipeline.repository import DeadLetterFilter
    from leadflow.pipeline.service import replay

    filters = _filters(kind, lead, since)
    if not job_ids and filters.empty and not replay_all:
        typer.echo("Give dead letter ids, a filter (--kind, --lead, --since) or --all.", err=True)
        raise typer.Exit(2)

    async def work(session: AsyncSession) -> list[int]:
        if job_ids:
            replayed: list[int] = []
            for job_id in job_ids:
                replayed += await replay(session, DeadLetterFilter(), job_id=job_id)
            return replayed
        return await replay(session, filters)

    replayed = _with_session(work)
    missing = sorted(set(job_ids or []) - set(replayed))
    typer.echo(f"Replayed {len(replayed)} dead letter(s): {', '.join(map(str, replayed)) or '-'}")
    if missing:
        typer.echo(
            f"Not dead letters (unknown, or already replayed): {', '.join(map(str, missing))}",
            err=True,
        )
        raise typer.Exit(1)


@app.command()
def rescore(
    config_path: Annotated[
        Path | None, typer.Option("--config", help="Config file (default: LEADFLOW_CONFIG).")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Leads per transaction.")] = 500,
) -> None:
    """Score again every lead scored with other rules than the config's (after a change).

    Each lead's timeline records the old and the new score. Workers do the same
    a batch at a time in the background; this does it all now."""
    from leadflow.scoring.engine import ruleset_version
    from leadflow.scoring.service import rescore_outdated

    config = _config_or_exit(config_path or get_settings().config)
    total = 0
    while True:
        done = _with_session(lambda session: rescore_outdated(session, config, limit=batch))
        total += done
        if done < batch:
            break
    typer.echo(f"Re-scored {total} lead(s) with rules {ruleset_version(config.scoring)}.")


MapOption = Annotated[
    list[str] | None,
    typer.Option("--map", help="Column SRC feeds lead field FIELD (SRC=FIELD); repeatable."),
]


@app.command()
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
    """Find the rows of a CSV file that are the same person; write them with a cluster_id."""
    from rich.progress import Progress as Bar

    from leadflow.analysis.columns import MappingError, read_rows
    from leadflow.analysis.dedup import cluster, plan_columns, write_rows

    headers, rows = read_rows(file)
    if id_column is not None and id_column not in headers:
        typer.echo(f"--id: {file} has no column {id_column!r}", err=True)
        raise typer.Exit(2)
    try:
        plan = plan_columns(headers, maps or [], fields or [])
    except MappingError as exc:
        typer.echo(f"{file}: {exc}", err=True)
        raise typer.Exit(2) from exc
    from leadflow.analysis.dedup import records_of

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
    if result.skipped_keys:
        typer.echo(f"{result.skipped_keys} blocking keys were too common to use", err=True)


@app.command("import")
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
    """Load existing contacts (or accounts) so dedup and routing know them."""
    from rich.progress import Progress as Bar

    from leadflow.analysis.columns import MappingError, read_rows
    from leadflow.analysis.importer import import_rows, plan_import
    from leadflow.db import create_engine, session_factory

    settings = get_settings()
    config = _config_or_exit(config_path or settings.config)
    headers, rows = read_rows(file)
    try:
        columns = plan_import(headers, maps or [], accounts=accounts)
    except MappingError as exc:
        typer.echo(f"{file}: {exc}", err=True)
        raise typer.Exit(2) from exc
    if not columns:
        typer.echo(f"{file}: no column maps to a field; use --map SRC=FIELD", err=True)
        raise typer.Exit(2)
    url = _database(settings)

    async def main() -> Any:
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
    for problem in report.skipped[:20]:
        typer.echo(f"  {file}: {problem}", err=True)
    if len(report.skipped) > 20:
        typer.echo(f"  ... and {len(report.skipped) - 20} more", err=True)


from leadflow.analysis.cli import backtest, scoring_app  # noqa: E402
from leadflow.routing.cli import route  # noqa: E402 - registered last

app.command("backtest")(backtest)
app.add_typer(scoring_app, name="scoring")
app.command("route")(route)


def main() -> None:
    app()
