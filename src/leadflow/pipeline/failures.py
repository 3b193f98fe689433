"""How a job says it failed: for good (dead letter now) or for now (retry later).

Handlers raise ``PermanentFailure`` for bad data and for a partner's 4xx, and
``RetryableFailure`` for timeouts, 5xx and 429 (with the partner's
``Retry-After``). Any other exception is treated as retryable: an unexpected
error must never drop a lead, and after the schedule it still ends as a dead
letter that a person can see and replay.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


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
