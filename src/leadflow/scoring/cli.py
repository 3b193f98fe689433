"""``leadflow rescore``: every lead scored by other rules than the config's, scored again."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadflow.commands.common import config_or_exit, with_session
from leadflow.settings import get_settings


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

    config = config_or_exit(config_path or get_settings().config)
    total = 0
    while True:
        done = with_session(lambda session: rescore_outdated(session, config, limit=batch))
        total += done
        if done < batch:
            break
    typer.echo(f"Re-scored {total} lead(s) with rules {ruleset_version(config.scoring)}.")
