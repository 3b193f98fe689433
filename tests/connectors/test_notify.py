"""Alerts reach a chat webhook through apprise: once per condition, again after the quiet."""

from __future__ import annotations

import pytest

from leadflow.config.connectors import NotifyTarget
from leadflow.connectors.base import Alert
from leadflow.connectors.notify import AppriseNotifier
from tests.receivers import Receiver


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def dead_letter(job_id: int) -> Alert:
    return Alert("dead_letter", f"job {job_id} failed for good", {"job_id": job_id})


async def test_one_condition_is_sent_once_then_again_after_the_quiet(
    receiver: Receiver,
) -> None:
    clock = Clock()
    target = NotifyTarget(url=receiver.url, on=["dead_letter"], quiet_for="1h")
    notifier = AppriseNotifier([target], clock=clock)

    await notifier.notify(dead_letter(7))
    clock.now += 30 * 60
    await notifier.notify(dead_letter(7))
    await notifier.notify(dead_letter(8))  # another condition: its own message

    assert [b["message"].splitlines()[0] for b in receiver.bodies] == [
        "job 7 failed for good",
        "job 8 failed for good",
    ]
    assert receiver.bodies[0]["title"] == "Leadflow: dead letter"
    assert "retry the job" in receiver.bodies[0]["message"]

    clock.now += 31 * 60
    await notifier.notify(dead_letter(7))

    assert len(receiver.bodies) == 3


async def test_only_subscribed_kinds_are_sent(receiver: Receiver) -> None:
    notifier = AppriseNotifier([NotifyTarget(url=receiver.url, on=["triage"])])

    await notifier.notify(dead_letter(1))
    await notifier.notify(Alert("triage", "lead in queue triage", {"lead_id": "L1"}))

    assert [b["message"].splitlines()[0] for b in receiver.bodies] == ["lead in queue triage"]


async def test_a_failed_delivery_is_logged_and_tried_again_next_time(
    receiver: Receiver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.status = 500
    monkeypatch.delenv("NO_SUCH_ALERT_URL", raising=False)
    notifier = AppriseNotifier(
        [
            NotifyTarget(url=receiver.url, on=["dead_letter"]),
            NotifyTarget(url_env="NO_SUCH_ALERT_URL", on=["dead_letter"]),
        ]
    )

    await notifier.notify(dead_letter(7))  # must not raise
    receiver.status = 200
    await notifier.notify(dead_letter(7))

    assert len(receiver.bodies) == 2
    assert "alert dead_letter not sent to the configured URL" in caplog.text
    assert "alert dead_letter not sent: NO_SUCH_ALERT_URL is not set" in caplog.text
