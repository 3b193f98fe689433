"""The contracts outside systems are reached through."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CrmLead:
    """What a CRM is told about a lead."""

    lead_id: str
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    company: str | None
    title: str | None
    owner: str | None
    score: int | None
    segment: str | None
    utm_source: str | None
    utm_campaign: str | None
    note: str | None = None  # for the rep: why this score, in a sentence or three


class CrmConnector(Protocol):
    """A CRM that leads are synced to.

    ``upsert_lead`` must be idempotent for one ``idempotency_key``: a retry after
    a crash (the call went through, our commit did not) updates the same record
    instead of creating a second one. It raises ``PermanentFailure`` or
    ``RetryableFailure`` (leadflow.stage) when the CRM refuses.

    ``upsert_leads`` is the same for several leads in as few calls as the CRM
    allows (its batch API), all or nothing: when it raises, the pipeline retries
    each lead alone, so a record the CRM took before the failure is only updated.
    """

    name: str

    async def upsert_lead(self, lead: CrmLead, *, idempotency_key: str) -> str:
        """Create or update the lead; return the CRM's id for it."""
        ...

    async def upsert_leads(
        self, leads: Sequence[CrmLead], *, idempotency_keys: Sequence[str]
    ) -> list[str]:
        """Create or update the leads; return the CRM's ids for them, in their order."""
        ...


@dataclass(frozen=True, slots=True)
class Alert:
    """Something a person must look at: a stalled pipeline, a lead sent to triage, ...

    ``kind`` is what notification rules subscribe to (``pipeline_stalled``, ``triage``,
    ``sla_breach``, ``connector_failing``, ``volume_drop``, ``dead_letter``)."""

    kind: str
    message: str
    detail: Mapping[str, object] = field(default_factory=dict)


class Notifier(Protocol):
    """Where alerts go (chat, e-mail, a webhook). It must not raise: an alert that cannot
    be delivered is logged, and the check that raised it runs again on its next tick."""

    async def notify(self, alert: Alert) -> None: ...
