"""What every section of the config is built from."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from leadflow.config.durations import parse_duration

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]


class Strict(BaseModel):
    """Unknown keys are mistakes (a typo must not silently do nothing); values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def unique_ids(ids: Iterable[str], what: str = "rule ids") -> None:
    seen = list(ids)
    dupes = sorted({i for i in seen if seen.count(i) > 1})
    if dupes:
        raise ValueError(f"{what} used twice: {', '.join(dupes)}")
