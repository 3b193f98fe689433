"""A job that dead-letters raises a ``dead_letter`` alert, sent by a job of its own."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from leadflow.connectors.fakes import RecordingNotifier
from leadflow.stage import PermanentFailure
from tests.pipeline.conftest import drain
from tests.pipeline.test_engine import FlakyCrm, submit, use_crm


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
