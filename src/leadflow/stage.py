"""The stage contract: what a stage of the pipeline is given, what it returns, how it fails.

The bottom floor of the stages: it imports only the models and the config, so that
every stage (validation, dedup, scoring, routing, ...) can stand on it, and the
pipeline, which calls the stages, stands on them.

A job fails for good (``PermanentFailure``: bad data, a partner's 4xx; dead letter
now) or for now (``RetryableFailure``: timeouts, 5xx and 429, with the partner's
``Retry-After``). Any other exception is treated as retryable: an unexpected error
must never drop a lead, and after the schedule it still ends as a dead letter that
a person can see and replay.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Config
from leadflow.models import Lead, LeadStatus, Submission

T = TypeVar("T")


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


class StateKey(Generic[T]):
    """Names what one stage keeps in a ``Batch``, with its type and its empty value: the
    contract holds every stage's state without knowing the stages' types."""

    __slots__ = ("empty", "name")

    def __init__(self, name: str, empty: Callable[[], T]) -> None:
        self.name = name
        self.empty = empty

    def __repr__(self) -> str:
        return f"StateKey({self.name!r})"


class Batch:
    """The leads one transaction runs through the stages, locked since it began, and
    what the stages keep about them until it ends (read once, used by several stages).

    What the session has of a lead of the batch is what the lead is: a stage reads the
    batch's earlier leads as the session has them, not as the table does. ``Batch()``,
    holding no lead, serves a transaction outside the pipeline (a person's merge, a
    re-score): the stages' functions keep what they read in it all the same."""

    __slots__ = ("_state", "leads", "submissions")

    def __init__(self, leads: Iterable[Lead] = ()) -> None:
        # In the order the stages take them.
        self.leads: dict[uuid.UUID, Lead] = {lead.id: lead for lead in leads}
        # Each lead's submissions, oldest first, once read (leads.repository.submissions).
        self.submissions: dict[uuid.UUID, Sequence[Submission]] = {}
        self._state: dict[StateKey[Any], Any] = {}

    def __len__(self) -> int:
        return len(self.leads)

    def after(self, lead_id: uuid.UUID) -> set[uuid.UUID]:
        """The batch's leads that come after ``lead_id`` (none when it is not one of them)."""
        order = list(self.leads)
        return set(order[order.index(lead_id) + 1 :]) if lead_id in self.leads else set()

    def state(self, key: StateKey[T]) -> T:
        """What the stage that owns ``key`` keeps here; its empty value the first time."""
        try:
            value: T = self._state[key]
        except KeyError:
            value = self._state[key] = key.empty()
        return value

    def forget_submissions(self, *lead_ids: uuid.UUID) -> None:
        """Submissions moved to or from these leads: read them again when next asked."""
        for lead_id in lead_ids:
            self.submissions.pop(lead_id, None)


# A stage: the lead, locked, with its batch and the config, to what the stage did.
StageFunction = Callable[[AsyncSession, Batch, Lead, Config], Awaitable[StageResult]]
# Runs once before (or after) a stage for the batch's leads still going through it.
BatchHook = Callable[[AsyncSession, Batch, Sequence[Lead], Config], Awaitable[None]]


class PermanentFailure(Exception):
    """Retrying cannot help (bad data, a 4xx answer): go to the dead letters now."""


class RetryableFailure(Exception):
    """Retrying may help (timeout, 5xx, 429); ``retry_after`` is the partner's wish, in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value) if len(value) <= 12 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def failure_for_status(
    status: int, body: str = "", *, retry_after: str | None = None
) -> PermanentFailure | RetryableFailure:
    """The failure a partner's HTTP error status means."""
    message = f"HTTP {status}: {body[:500]}".rstrip(": ")
    if status in (408, 425, 429) or status >= 500:
        return RetryableFailure(message, retry_after=parse_retry_after(retry_after))
    return PermanentFailure(message)
