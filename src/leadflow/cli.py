"""The ``leadflow`` command: every subcommand, registered in the order ``--help`` lists them."""

from __future__ import annotations

import typer

from leadflow.analysis.cli import backtest, dedup, import_file, scoring_app
from leadflow.commands.admin import check_config, init, migrate, status, token
from leadflow.commands.common import Group
from leadflow.commands.dlq import dlq
from leadflow.commands.leads import leads
from leadflow.commands.run import serve, worker
from leadflow.routing.cli import route
from leadflow.scoring.cli import rescore

app = typer.Typer(
    name="leadflow",
    cls=Group,
    help="Leadflow: form submissions in, followed-up leads out. Nothing lost, nothing doubled.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command()(serve)
app.command()(worker)
app.command()(status)
app.command()(migrate)
app.command("check-config")(check_config)
app.command()(init)
app.command()(token)
app.add_typer(leads, name="leads")
app.add_typer(dlq, name="dlq")
app.command()(rescore)
app.command()(dedup)
app.command("import")(import_file)
app.command("backtest")(backtest)
app.add_typer(scoring_app, name="scoring")
app.command("route")(route)


def main() -> None:
    app()
