"""Webhook deliveries as jobs: signed, recorded in the lead's timeline, retried on a 5xx."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
import standardwebhooks
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from leadflow.app import create_app
from leadflow.config import load_config_text
from leadflow.db import transaction
from leadflow.jobs import queue_webhooks
from leadflow.settings import Settings
from tests.conftest import TEST_CONFIG
from tests.pipeline.conftest import drain, events_of
from tests.pipeline.test_engine import submit
from tests.receivers import Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
async def hooked_app(
    settings: Settings, database_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FastAPI]:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    config = load_config_text(
        TEST_CONFIG
        + "connectors:\n  webhooks:\n"
        + f"    - {{url: '{receiver.http_url}', secret_env: TEST_WEBHOOK_SECRET,\n"
        + "       events: [lead.routed], allow_private: true}\n"
    )
    application = create_app(settings, config=config, database_url=database_url)
    async with LifespanManager(application):
        yield application


async def test_a_delivery_is_signed_and_recorded_in_the_timeline(
    hooked_app: FastAPI, receiver: Receiver, db: psycopg.Connection[dict[str, Any]]
) -> None:
    receiver.status = 500
    transport = httpx.ASGITransport(app=hooked_app, client=("203.0.113.7", 51234))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        lead_id = await submit(client, "hook@acme.de")
    rt = hooked_app.state.runtime
    async with transaction(rt.sessions) as session:  # no endpoint subscribes: no job
        await queue_webhooks(session, rt.config, "lead.merged", uuid.UUID(lead_id), {})
    await drain(hooked_app)  # routed; the delivery fails and is retried later, on the schedule
    retry = db.execute(
        "SELECT status, scheduled_at > now() AS later FROM procrastinate_jobs "
        "WHERE task_name = 'webhook.deliver'"
    ).fetchone()
    db.execute(
        "UPDATE procrastinate_jobs SET scheduled_at = now() WHERE task_name = 'webhook.deliver'"
    )
    receiver.status = 200
    await drain(hooked_app)

    assert retry == {"status": "todo", "later": True}
    (first, _), (headers, body) = receiver.raw
    verified = standardwebhooks.Webhook(SECRET).verify(body, headers)
    assert verified["type"] == "lead.routed"
    assert verified["data"]["lead_id"] == lead_id
    assert verified["data"]["outcome"] == "routed"
    assert first["webhook-id"] == headers["webhook-id"]
    assert "webhook.delivered" in events_of(db, lead_id)
