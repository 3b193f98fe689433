"""The retry schedule: when to try a failed job again, and when to stop (pure)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from leadflow.stage import PermanentFailure, RetryableFailure


@dataclass(frozen=True, slots=True)
class Decision:
    """What happens after a failure: retry at ``retry_at``, or dead letter (None)."""

    retry_at: datetime | None
    reason: str

    @property
    def dead(self) -> bool:
        return self.retry_at is None


def decide(
    error: BaseException,
    *,
    failures: int,
    schedule: list[timedelta],
    jitter: float,
    now: datetime,
    rng: random.Random | None = None,
) -> Decision:
    """Decide after the ``failures``-th failure (1-based) since the job was queued or replayed.

    The n-th failure waits ``schedule[n-1]`` give or take ``jitter`` (so that many
    jobs failing together do not retry together), or longer when the partner asked
    for it with Retry-After; after the last delay the job is a dead letter.
    """
    if isinstance(error, PermanentFailure):
        return Decision(None, "permanent failure")
    if failures > len(schedule):
        return Decision(None, f"gave up after {failures} attempts")
    delay = schedule[failures - 1].total_seconds()
    spread = delay * jitter
    delay = delay + (rng or random).uniform(-spread, spread)
    if isinstance(error, RetryableFailure) and error.retry_after is not None:
        # A partner may ask for a pause, not for forever: at most the longest step.
        longest = max(step.total_seconds() for step in schedule)
        delay = max(delay, min(error.retry_after, longest))
    return Decision(now + timedelta(seconds=delay), f"retry {failures} of {len(schedule)}")


def total_span(schedule: list[timedelta]) -> timedelta:
    """How long a job keeps being retried before it becomes a dead letter."""
    return sum(schedule, timedelta())
