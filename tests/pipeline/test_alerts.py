"""A job that dead-letters raises a ``dead_letter`` alert, sent by a job of its own."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from leadflow.app import create_app
from leadflow.config import load_config_text
from leadflow.connectors.base import Alert
from leadflow.connectors.fakes import RecordingNotifier
from leadflow.connectors.notify import AppriseNotifier
from leadflow.settings import Settings
from leadflow.stage import PermanentFailure
from tests.conftest import TEST_CONFIG
from tests.pipeline.conftest import drain
from tests.pipeline.test_engine import FlakyCrm, submit, use_crm
from tests.receivers import Receiver


async def test_a_dead_letter_alerts_the_people_subscribed(
    app: FastAPI, client: httpx.AsyncClient, crm_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notifier = RecordingNotifier()
    app.state.runtime.notifier = notifier
    use_crm(monkeypatch, FlakyCrm(crm_log, 1, PermanentFailure("HTTP 401: token revoked")))

    await submit(client, "dead@acme.de")
    await drain(app)

    (alert,) = [a for a in notifier.alerts if a.kind == "dead_letter"]
    assert alert.message.startswith("job crm.sync #")
    assert "failed for good" in alert.message
    assert alert.detail["task"] == "crm.sync"
    assert "HTTP 401: token revoked" in str(alert.detail["error"])


async def test_a_runtime_with_notify_targets_sends_through_apprise(
    settings: Settings, database_url: str, receiver: Receiver
) -> None:
    config = load_config_text(
        TEST_CONFIG
        + f"connectors:\n  notify:\n    - {{url: '{receiver.url}', on: [pipeline_stalled]}}\n"
    )
    application = create_app(settings, config=config, database_url=database_url)
    async with LifespanManager(application):
        notifier = application.state.runtime.notifier
        await notifier.notify(Alert("pipeline_stalled", "no worker has run for 10m"))

    assert isinstance(notifier, AppriseNotifier)
    assert receiver.bodies[0]["title"] == "Leadflow: pipeline stalled"
