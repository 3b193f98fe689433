"""What a stage of the pipeline returns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from leadflow.models import LeadStatus


@dataclass(frozen=True, slots=True)
class StageResult:
    """What a stage did (for the timeline) and, if the lead stops here, in which status."""

    detail: dict[str, Any]
    halt: LeadStatus | None = None
    # Other leads whose records outside (the CRM) must be brought up to date,
    # e.g. the lead a returning person was merged into.
    refresh: tuple[uuid.UUID, ...] = ()
    # Other leads to run through the stages again, e.g. an imported contact who
    # now comes in through a form: a new inbound lead to score and route.
    reopen: tuple[uuid.UUID, ...] = ()
    # Wrote what the stage reads of other leads (dedup: a merge, a pair record): in a
    # batch, written out before the stage reads for the next lead.
    shared: bool = False
