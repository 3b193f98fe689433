"""The retry schedule and the meaning of partner errors (pure, no sleeping)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadflow.config import load_config_text
from leadflow.pipeline.retry import decide, total_span
from leadflow.stage import (
    PermanentFailure,
    RetryableFailure,
    failure_for_status,
    parse_retry_after,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DEFAULT = load_config_text("").pipeline.schedule_for("crm.sync")


def test_default_schedule_is_svix_like_and_spans_more_than_a_day() -> None:
    assert [d.total_seconds() for d in DEFAULT] == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert total_span(DEFAULT) >= timedelta(hours=24)


def test_retryable_failures_walk_the_schedule_then_dead_letter() -> None:
    error = RetryableFailure("HTTP 503")
    waits = []
    for failure in range(1, len(DEFAULT) + 1):
        decision = decide(error, failures=failure, schedule=DEFAULT, jitter=0, now=NOW)
        assert decision.retry_at is not None
        waits.append(decision.retry_at - NOW)
    last = decide(error, failures=len(DEFAULT) + 1, schedule=DEFAULT, jitter=0, now=NOW)

    assert waits == DEFAULT
    assert last.dead
    assert last.reason == "gave up after 8 attempts"


def test_permanent_failures_dead_letter_at_once() -> None:
    decision = decide(PermanentFailure("HTTP 400"), failures=1, schedule=DEFAULT, jitter=0, now=NOW)
    assert decision.dead
    assert decision.reason == "permanent failure"


def test_unknown_errors_are_retried() -> None:
    decision = decide(KeyError("x"), failures=1, schedule=DEFAULT, jitter=0, now=NOW)
    assert decision.retry_at == NOW + timedelta(seconds=5)


def test_retry_after_is_honoured_when_longer_than_the_schedule() -> None:
    asked = RetryableFailure("HTTP 429", retry_after=120)
    shorter = RetryableFailure("HTTP 429", retry_after=1)

    assert decide(
        asked, failures=1, schedule=DEFAULT, jitter=0, now=NOW
    ).retry_at == NOW + timedelta(seconds=120)
    assert decide(
        shorter, failures=1, schedule=DEFAULT, jitter=0, now=NOW
    ).retry_at == NOW + timedelta(seconds=5)


@given(failure=st.integers(1, 7), seed=st.integers(0, 2**32), jitter=st.floats(0, 1))
def test_jitter_stays_within_its_share(failure: int, seed: int, jitter: float) -> None:
    decision = decide(
        RetryableFailure("x"),
        failures=failure,
        schedule=DEFAULT,
        jitter=jitter,
        now=NOW,
        rng=random.Random(seed),
    )
    assert decision.retry_at is not None
    wait = (decision.retry_at - NOW).total_seconds()
    nominal = DEFAULT[failure - 1].total_seconds()
    assert nominal * (1 - jitter) - 1e-6 <= wait <= nominal * (1 + jitter) + 1e-6


def test_jitter_spreads_retries() -> None:
    rng = random.Random(7)
    waits = {
        decide(
            RetryableFailure("x"), failures=3, schedule=DEFAULT, jitter=0.2, now=NOW, rng=rng
        ).retry_at
        for _ in range(50)
    }
    assert len(waits) > 40


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, PermanentFailure),
        (401, PermanentFailure),
        (404, PermanentFailure),
        (422, PermanentFailure),
        (408, RetryableFailure),
        (429, RetryableFailure),
        (500, RetryableFailure),
        (503, RetryableFailure),
    ],
)
def test_partner_status_codes(status: int, kind: type[Exception]) -> None:
    assert isinstance(failure_for_status(status, "body"), kind)


def test_retry_after_header_forms() -> None:
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Thu, 26 Nov 2026 12:01:00 GMT", now=NOW) == 60
    assert parse_retry_after("Thu, 26 Nov 2026 11:00:00 GMT", now=NOW) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    failure = failure_for_status(429, "slow down", retry_after="30")
    assert isinstance(failure, RetryableFailure)
    assert failure.retry_after == 30


def test_a_schedule_per_task_kind_is_configurable() -> None:
    config = load_config_text("pipeline:\n  retry: {crm.sync: [1s, 1m]}\n")
    assert config.pipeline.schedule_for("crm.sync") == [timedelta(seconds=1), timedelta(minutes=1)]
    assert config.pipeline.schedule_for("lead.process") == DEFAULT


def test_a_partner_cannot_ask_for_forever() -> None:
    greedy = RetryableFailure("HTTP 503", retry_after=10**12)
    decision = decide(greedy, failures=1, schedule=DEFAULT, jitter=0, now=NOW)
    assert decision.retry_at == NOW + max(DEFAULT)
    assert parse_retry_after("9" * 20) is None
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now=NOW) is not None
