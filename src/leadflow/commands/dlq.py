"""``leadflow dlq``: jobs that failed for good, listed and replayed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from leadflow.commands.common import with_session

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from leadflow.pipeline.repository import DeadLetterFilter

dlq = typer.Typer(
    help="Dead letters: jobs that failed for good, and their replay.", no_args_is_help=True
)


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


KindOption = Annotated[str | None, typer.Option("--kind", help="Only this task, e.g. crm.sync.")]


LeadOption = Annotated[str | None, typer.Option("--lead", help="Only this lead's jobs (lead id).")]


SinceOption = Annotated[
    str | None, typer.Option("--since", help="Failed since: ISO time or age (2h, 7d).")
]


def _filters(kind: str | None, lead: str | None, since: str | None) -> DeadLetterFilter:
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
    letters = with_session(lambda session: list_dead_letters(session, filters, limit=limit))
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

    replayed = with_session(work)
    missing = sorted(set(job_ids or []) - set(replayed))
    typer.echo(f"Replayed {len(replayed)} dead letter(s): {', '.join(map(str, replayed)) or '-'}")
    if missing:
        typer.echo(
            f"Not dead letters (unknown, or already replayed): {', '.join(map(str, missing))}",
            err=True,
        )
        raise typer.Exit(1)
