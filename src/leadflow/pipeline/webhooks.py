"""The ``webhook.deliver`` job: one event to one endpoint, retried on the pipeline's schedule."""

from __future__ import annotations

import uuid
from typing import Any

import procrastinate

from leadflow.connectors.webhooks import deliver
from leadflow.db import transaction
from leadflow.jobs import job_app
from leadflow.leads import repository as leads
from leadflow.pipeline.attempts import EFFECT_PRIORITY, RETRY
from leadflow.runtime import runtime_of
from leadflow.stage import PermanentFailure


@job_app.task(
    name="webhook.deliver",
    queue="effects",
    retry=RETRY,
    priority=EFFECT_PRIORITY,
    pass_context=True,
)
async def deliver_webhook(
    context: procrastinate.JobContext,
    endpoint: int,
    url: str,
    msg_id: str,
    event: str,
    lead_id: str,
    data: dict[str, Any],
) -> None:
    """POST the event, signed, to the endpoint (still configured with ``url``), and note
    the delivery in the lead's timeline. Every attempt sends the same ``webhook-id``."""
    rt = runtime_of(context)
    endpoints = rt.config.connectors.webhooks
    if endpoint >= len(endpoints) or endpoints[endpoint].url != url:
        raise PermanentFailure(f"webhook {url} is no longer in the config")
    status = await deliver(endpoints[endpoint], msg_id, event, data)
    async with transaction(rt.sessions) as session:
        await leads.add_event(
            session,
            uuid.UUID(lead_id),
            "webhook.delivered",
            {"url": url, "event": event, "webhook_id": msg_id, "status": status},
        )
