"""Alerts to people through apprise (Slack, e-mail, webhooks): once per condition, then quiet."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

import apprise

from leadflow.config.connectors import NotifyTarget
from leadflow.connectors.base import Alert

logger = logging.getLogger(__name__)

# What the person who gets the alert should look at first, by kind.
CHECK = {
    "pipeline_stalled": "Check that the workers run (leadflow worker) and the database answers.",
    "triage": "Check the queue and give the lead an owner.",
    "sla_breach": "Check the lead's owner: the first contact is overdue.",
    "connector_failing": "Check the connector's credentials and the service's status page.",
    "volume_drop": "Check the forms and intake: fewer leads arrive than usual.",
    "dead_letter": "Check the job's last error in the timeline, fix it, then retry the job.",
}
# Detail fields that tell one condition from another of the same kind (first found wins).
KEY_FIELDS = ("key", "lead_id", "job_id", "queue", "connector", "form", "policy")


def condition_key(alert: Alert) -> str:
    """The condition an alert is about: its kind and the first key field of its detail."""
    for name in KEY_FIELDS:
        if name in alert.detail:
            return f"{alert.kind}:{alert.detail[name]}"
    return alert.kind


def body_of(alert: Alert) -> str:
    lines = [alert.message, CHECK.get(alert.kind, "")]
    lines += [f"{name}: {value}" for name, value in sorted(alert.detail.items())]
    return "\n".join(line for line in lines if line)


class AppriseNotifier:
    """Sends each alert to the targets subscribed to its kind; a condition already sent
    to a target is sent again only once that target's ``quiet_for`` has passed."""

    def __init__(
        self, targets: Sequence[NotifyTarget], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._targets = list(targets)
        self._clock = clock
        self._sent: dict[tuple[int, str], float] = {}

    async def notify(self, alert: Alert) -> None:
        key = condition_key(alert)
        for index, target in enumerate(self._targets):
            if alert.kind not in target.on:
                continue
            last = self._sent.get((index, key))
            now = self._clock()
            if last is not None and now - last < target.quiet_for.total_seconds():
                continue
            if await self._send(target, alert):
                self._sent[(index, key)] = now

    async def _send(self, target: NotifyTarget, alert: Alert) -> bool:
        url = target.resolved_url()
        where = target.url_env or "the configured URL"
        if url is None:
            logger.error("alert %s not sent: %s is not set", alert.kind, target.url_env)
            return False
        try:
            sent = await asyncio.to_thread(_deliver, url, alert)
        except Exception:
            logger.exception("alert %s not sent to %s", alert.kind, where)
            return False
        if not sent:
            logger.error("alert %s not sent to %s: the target refused it", alert.kind, where)
        return sent


def _deliver(url: str, alert: Alert) -> bool:
    sender = apprise.Apprise()
    if not sender.add(url):
        raise ValueError("not an URL apprise knows")
    title = f"Leadflow: {alert.kind.replace('_', ' ')}"
    return bool(sender.notify(body=body_of(alert), title=title))
