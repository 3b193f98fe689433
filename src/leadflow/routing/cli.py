"""``leadflow route --explain``: who would get this lead, and why, without assigning it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from leadflow.commands.common import config_or_exit, database
from leadflow.fields import LEAD_FIELDS


def _lead_of(lead_json: str | None, sets: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if lead_json:
        try:
            loaded = json.loads(lead_json)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"--lead is not JSON: {exc}") from exc
        if not isinstance(loaded, dict):
            raise typer.BadParameter("--lead must be a JSON object")
        data = loaded
    for item in sets:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"--set {item!r}: expected FIELD=VALUE")
        head, _, rest = name.partition(".")
        if head in ("quality", "answers", "account") and rest:
            data.setdefault(head, {})[rest] = value
        else:
            data[name] = value
    unknown = [
        k
        for k in data
        if k not in LEAD_FIELDS
        and k
        not in ("quality", "answers", "account", "score", "segment", "owner", "company_domain")
    ]
    if unknown:
        raise typer.BadParameter(f"not a lead field: {', '.join(sorted(unknown))}")
    return data


def route(
    lead_json: Annotated[
        str | None, typer.Option("--lead", help='The lead as JSON: {"country": "DE", ...}.')
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="FIELD=VALUE, e.g. quality.country=DE or segment=hot."),
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
    assigned (the database is read, never written)."""
    from leadflow.db import create_engine, session_factory
    from leadflow.models import Lead
    from leadflow.routing import service
    from leadflow.routing.views import AccountView, RoutingLead
    from leadflow.scoring.engine import LeadView
    from leadflow.settings import get_settings

    settings = get_settings()
    config = config_or_exit(config_path or settings.config)
    data = _lead_of(lead_json, sets or [])
    url = database(settings)

    async def main() -> Any:
        engine = create_engine(url, pool_size=1)
        try:
            async with session_factory(engine)() as session, session.begin():
                given = data.get("account")
                account: AccountView | None
                if given:
                    account = AccountView(
                        **{k: given.get(k) for k in ("name", "domain", "owner", "country")}
                    )
                else:
                    probe = Lead(
                        company=data.get("company"),
                        company_domain=data.get("company_domain")
                        or data.get("quality", {}).get("company_domain"),
                    )
                    account = service.account_view(await service.find_account(session, probe))
                fields = {
                    k: v for k, v in data.items() if k not in ("quality", "answers", "account")
                }
                view = LeadView(fields, data.get("quality", {}), data.get("answers", {}))
                lead = RoutingLead.of(
                    view,
                    previous_owner=data.get("owner"),
                    previous_reason="previous owner given",
                    account=account,
                )
                decision = await service.dry_run(session, lead, config)
                await session.rollback()  # a dry run: nothing is kept
                return decision
        finally:
            await engine.dispose()

    decision = asyncio.run(main())
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
            state = candidate.skipped or "available"
            today = "-" if candidate.today is None else candidate.today
            open_ = "-" if candidate.open is None else candidate.open
            typer.echo(f"  {candidate.owner:<32} today {today:>3}  open {open_:>4}  {state}")
