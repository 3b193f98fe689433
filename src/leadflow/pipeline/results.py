"""What a stage of the pipeline returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leadflow.models import LeadStatus


@dataclass(frozen=True, slots=True)
class StageResult:
    """What a stage did (for the timeline) and, if the lead stops here, in which status."""

    detail: dict[str, Any]
    halt: LeadStatus | None = None
