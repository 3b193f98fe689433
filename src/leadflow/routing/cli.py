"""``leadflow route --explain``: who would get this lead, and why, without assigning it.

The lead is given as a form would submit it (``{"country": "Germany", "title": "CTO"}``)
and is enriched as intake and validation would (``quality.country`` DE, ``quality.
seniority`` c_level), so the rules see what they would see for a real submission;
``quality.*`` and ``account.*`` given outright override what was derived.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from leadflow.analysis.history import enrich
from leadflow.commands.common import config_or_exit, database
from leadflow.fields import LEAD_FIELDS
from leadflow.intake.mapping import split_full_name

if TYPE_CHECKING:
    from leadflow.routing.views import Load, RoutingDecision

# What else routing reads besides the lead fields: the score's outcome, a previous owner.
EXTRA_FIELDS = ("score", "segment", "owner", "company_domain")
QUALITY_KEYS = tuple(sorted(enrich({}, source=True)))
ACCOUNT_KEYS = ("name", "domain", "owner", "country")


def _choices() -> str:
    return (
        f"lead fields ({', '.join(LEAD_FIELDS)}), {', '.join(EXTRA_FIELDS)}, "
        f"quality.<{'|'.join(QUALITY_KEYS)}>, account.<{'|'.join(ACCOUNT_KEYS)}>, "
        "answers.<form input>"
    )


def _check(name: str, where: str) -> None:
    head, dot, rest = name.partition(".")
    known = (
        (not dot and (name in LEAD_FIELDS or name in EXTRA_FIELDS))
        or (head == "quality" and rest in QUALITY_KEYS)
        or (head == "account" and rest in ACCOUNT_KEYS)
        or (head == "answers" and bool(rest))
    )
    if not known:
        names = [*LEAD_FIELDS, *EXTRA_FIELDS, *(f"quality.{k}" for k in QUALITY_KEYS)]
        names += [f"account.{k}" for k in ACCOUNT_KEYS]
        close = get_close_matches(name, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise typer.BadParameter(
            f"{where}: {name!r} is not something routing reads; {hint}use {_choices()}"
        )


def _lead_of(lead_json: str | None, sets: list[str]) -> dict[str, Any]:
    """The lead of ``--lead`` and ``--set``, every key checked; nested under
    ``quality``/``account``/``answers`` where a dotted name says so."""
    data: dict[str, Any] = {}
    if lead_json:
        try:
            loaded = json.loads(lead_json)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"--lead is not JSON: {exc}") from exc
        if not isinstance(loaded, dict):
            raise typer.BadParameter("--lead must be a JSON object")
        for key, value in loaded.items():
            if key in ("quality", "account", "answers") and isinstance(value, dict):
                for inner in value:
                    _check(f"{key}.{inner}", "--lead")
                data.setdefault(key, {}).update(value)
            else:
                _check(key, "--lead")
                data[key] = value
    for item in sets:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"--set {item!r}: expected FIELD=VALUE")
        _check(name, f"--set {item!r}")
        head, dot, rest = name.partition(".")
        if dot:
            data.setdefault(head, {})[rest] = value
        else:
            data[name] = value
    return data


def _view(data: Mapping[str, Any]) -> Any:
    """The rules' view of the lead: fields as intake stores them, quality as validation
    derives it from them, then what was given outright."""
    from leadflow.scoring.engine import LeadView

    fields = {
        k: " ".join(str(v).split()) if isinstance(v, str) else v
        for k, v in data.items()
        if k not in ("quality", "answers", "account")
    }
    full_name = fields.pop("full_name", None)
    if full_name:
        first, last = split_full_name(str(full_name))
        fields.setdefault("first_name", first)
        if last:
            fields.setdefault("last_name", last)
    quality = {**enrich(fields, source=True), **data.get("quality", {})}
    return LeadView(fields, quality, data.get("answers", {}))


def route(
    lead_json: Annotated[
        str | None,
        typer.Option(
            "--lead",
            help='The lead as a form submits it, as JSON: {"country": "DE", "title": "CTO"}.',
        ),
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="FIELD=VALUE, repeatable: a lead field (country=DE), segment=hot, "
            "quality.KEY, account.KEY or answers.INPUT.",
        ),
    ] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="List every owner considered and why skipped.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reason as JSON.")] = False,
    config_path: Annotated[
        Path | None, typer.Option("--config", help="Config file (default: LEADFLOW_CONFIG).")
    ] = None,
) -> None:
    """Who would get this lead and why: the routing rules against today's loads, nothing
    assigned (the database is read, never written).

    Examples:

    \b
        leadflow route --lead '{"country": "DE"}' --explain
        leadflow route --set country=Germany --set title=CTO --set segment=hot
    """
    from leadflow.settings import get_settings

    settings = get_settings()
    config = config_or_exit(config_path or settings.config)
    data = _lead_of(lead_json, sets or [])
    url = database(settings)
    decision, loads = asyncio.run(_dry_run(url, config, data))
    if as_json:
        typer.echo(json.dumps(decision.reason(), indent=2, default=str))
        return
    typer.echo(decision.sentence)
    for step in decision.steps:
        typer.echo(f"  before: {step}")
    if decision.alert:
        typer.echo(f"  alert: {decision.alert}")
    if explain:
        for candidate in decision.candidates:
            # The counts GET /v1/owners shows, also where the rule did not need them.
            load = loads.get(candidate.owner.lower())
            today = candidate.today if load is None else load.today
            open_ = candidate.open if load is None else load.open
            state = candidate.skipped or "available"
            typer.echo(
                f"  {candidate.owner:<32} today {today if today is not None else '-':>3}  "
                f"open {open_ if open_ is not None else '-':>4}  {state}"
            )


async def _dry_run(
    url: str, config: Any, data: Mapping[str, Any]
) -> tuple[RoutingDecision, dict[str, Load]]:
    """The decision for the lead, and every owner's load now; nothing is kept."""
    from leadflow.db import create_engine, session_factory
    from leadflow.models import Lead
    from leadflow.routing import service
    from leadflow.routing.views import AccountView, RoutingLead

    view = _view(data)
    engine = create_engine(url, pool_size=1)
    try:
        async with session_factory(engine)() as session, session.begin():
            given = data.get("account")
            account: AccountView | None
            if given:
                account = AccountView(**{k: given.get(k) for k in ACCOUNT_KEYS})
            else:
                probe = Lead(
                    company=view.fields.get("company"),
                    company_domain=view.fields.get("company_domain")
                    or view.quality.get("company_domain"),
                )
                account = service.account_view(await service.find_account(session, probe))
            lead = RoutingLead.of(
                view,
                previous_owner=data.get("owner"),
                previous_reason="previous owner given",
                account=account,
            )
            decision = await service.dry_run(session, lead, config)
            loads = {
                o.owner.email.lower(): o.load for o in await service.owners_now(session, config)
            }
            await session.rollback()  # a dry run: nothing is kept
            return decision, loads
    finally:
        await engine.dispose()
