"""The ``alert.send`` job: an alert raised inside a transaction, sent once that commits."""

from __future__ import annotations

from typing import Any

import procrastinate

from leadflow.connectors.base import Alert
from leadflow.jobs import job_app
from leadflow.pipeline.attempts import EFFECT_PRIORITY
from leadflow.runtime import runtime_of

SEND_ALERT = "alert.send"


@job_app.task(name=SEND_ALERT, queue="effects", priority=EFFECT_PRIORITY, pass_context=True)
async def send_alert(
    context: procrastinate.JobContext, kind: str, message: str, detail: dict[str, Any]
) -> None:
    """Hand the alert to the runtime's notifier (which logs, never raises, a failed send)."""
    await runtime_of(context).notifier.notify(Alert(kind=kind, message=message, detail=detail))
