"""``leadflow leads show`` and ``leads list``: a lead's story, read from the database."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from leadflow.commands.common import with_session

if TYPE_CHECKING:
    from leadflow.leads.schemas import EventOut, LeadOut, LeadSummary

leads = typer.Typer(
    help="Leads as GET /v1/leads shows them: status, owner, score, reason, timeline.",
    no_args_is_help=True,
)

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the API's answer (GET /v1/leads[/ID]) as JSON.")
]


@leads.command("show")
def show(
    lead_id: Annotated[
        str,
        typer.Argument(
            help="The lead's id (a form's answer names it), or an email: its newest live lead."
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """One lead: status, owner or queue, score, routing reason and its timeline."""
    from leadflow.errors import NotFound, ValidationFailed
    from leadflow.leads.service import get_lead

    try:
        wanted = _lead_id(lead_id)
        lead = with_session(lambda session: get_lead(session, wanted))
    except (NotFound, ValidationFailed) as exc:
        typer.echo(exc.detail, err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(lead.model_dump_json(indent=2))
        return
    for line in describe(lead):
        typer.echo(line)


def _lead_id(given: str) -> uuid.UUID:
    """The id given, or the id of the newest live lead of the email given."""
    from leadflow.errors import NotFound, ValidationFailed
    from leadflow.leads.service import list_leads

    if "@" in given:
        page = with_session(
            lambda session: list_leads(session, status=None, limit=1, cursor=None, email=given)
        )
        if not page.items:
            raise NotFound(f"There is no lead with the email {given}.")
        return page.items[0].id
    try:
        return uuid.UUID(given)
    except ValueError:
        raise ValidationFailed(
            f"{given!r} is neither a lead id (like {uuid.UUID(int=0)}) nor an email."
        ) from None


@leads.command("list")
def list_(
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 20,
    email: Annotated[
        str | None, typer.Option(help="Only the live leads of this email address.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The newest leads: id, status, when, who, and their owner or queue."""
    from leadflow.errors import ValidationFailed
    from leadflow.leads.service import list_leads

    try:
        page = with_session(
            lambda session: list_leads(session, status=None, limit=limit, cursor=None, email=email)
        )
    except ValidationFailed as exc:
        typer.echo(exc.detail, err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(page.model_dump_json(indent=2))
        return
    if not page.items:
        typer.echo("No leads yet.")
        return
    for lead in page.items:
        typer.echo(summary_line(lead))
    typer.echo(f"{len(page.items)} of {page.total} lead(s), newest first.")


def _when(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _who(lead: LeadSummary) -> str:
    name = " ".join(part for part in (lead.first_name, lead.last_name) if part)
    email = f"<{lead.email}>" if lead.email and name else lead.email
    return " ".join(part for part in (name, email) if part) or "(no name or email)"


def _assignee(lead: LeadSummary) -> str:
    if lead.owner:
        return f"owner {lead.owner}"
    return f"queue {lead.queue}" if lead.queue else "not routed yet"


def summary_line(lead: LeadSummary) -> str:
    return (
        f"{lead.id}  {lead.status:<12} {_when(lead.submitted_at)}  {_who(lead)}  {_assignee(lead)}"
    )


def _score(lead: LeadOut) -> list[str]:
    if lead.score is None:
        return ["score      not scored yet"]
    lines = [f"score      {lead.score}" + (f" ({lead.segment})" if lead.segment else "")]
    for line in lead.score_breakdown or []:
        if isinstance(line, dict):
            lines.append(
                f"           {line.get('points', 0):+} {line.get('rule')}: {line.get('reason')}"
            )
    return lines


def _event(event: EventOut) -> str:
    detail = json.dumps(event.detail, sort_keys=True, default=str) if event.detail else ""
    at = event.at.astimezone(UTC)
    return (
        f"  {at:%Y-%m-%d %H:%M:%S}.{at.microsecond // 1000:03}  {event.type:<22} {detail}".rstrip()
    )


def describe(lead: LeadOut) -> list[str]:
    """The lead as a person reads it on a terminal."""
    reason: dict[str, Any] = lead.routing_reason or {}
    lines = [
        f"Lead {lead.id}",
        f"status     {lead.status} (since {_when(lead.status_changed_at)})",
        f"contact    {_who(lead)}"
        + "".join(f", {part}" for part in (lead.phone, lead.company) if part),
        f"form       {lead.form_key}, submitted {_when(lead.submitted_at)}",
        *_score(lead),
        f"assigned   {_assignee(lead)}",
        f"reason     {reason.get('sentence') or 'not routed yet'}",
    ]
    if lead.duplicate_of:
        lines.append(f"merged     into lead {lead.duplicate_of}")
    lines += ["", f"Timeline ({len(lead.timeline)} events)"]
    lines += [_event(event) for event in lead.timeline]
    return lines
