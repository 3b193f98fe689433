"""The CRM jobs: routed leads created in the CRM (a batch in one call), records kept up to date."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.connectors import crm_from_config
from leadflow.connectors.base import CrmLead
from leadflow.db import transaction
from leadflow.jobs import defer_named, defer_once, job_app
from leadflow.leads import repository as leads
from leadflow.models import Lead, LeadStatus
from leadflow.pipeline.attempts import EFFECT_PRIORITY, RETRY, split
from leadflow.runtime import Runtime, runtime_of
from leadflow.scoring.service import score_note


async def queue_crm_sync(session: AsyncSession, lead_ids: Sequence[uuid.UUID]) -> None:
    """Create routed leads in the CRM: one job for one lead, one CRM call for a batch."""
    if len(lead_ids) == 1:
        lead_id = str(lead_ids[0])
        await defer_once(session, "crm.sync", f"crm.sync:{lead_id}", lead_id=lead_id)
    else:
        ids = [str(lead_id) for lead_id in lead_ids]
        await defer_named(session, "crm.sync_batch", lead_ids=ids)


@job_app.task(
    name="crm.sync", queue="effects", retry=RETRY, priority=EFFECT_PRIORITY, pass_context=True
)
async def sync_to_crm(
    context: procrastinate.JobContext, lead_id: str, update: bool = False
) -> None:
    """Create the lead in the CRM (once: the CRM's id is kept on the lead), or with
    ``update`` bring the CRM's record up to date (a returning person's new details)."""
    await sync(runtime_of(context), [uuid.UUID(lead_id)], update=update)


@job_app.task(
    name="crm.sync_batch",
    queue="effects",
    retry=RETRY,
    priority=EFFECT_PRIORITY,
    pass_context=True,
)
async def sync_many_to_crm(context: procrastinate.JobContext, lead_ids: list[str]) -> None:
    """Create a batch's routed leads in the CRM in one call (CRMs limit calls, not
    records: HubSpot's batch upsert takes 100 records for one call of its quota). When
    it fails, each lead gets a ``crm.sync`` job of its own, with its own retries."""
    rt = runtime_of(context)
    ids = [uuid.UUID(lead_id) for lead_id in lead_ids]
    try:
        await sync(rt, ids, update=False)
    except Exception as error:
        await split(rt, ids, error, "crm.sync")


async def sync(rt: Runtime, lead_ids: Sequence[uuid.UUID], *, update: bool) -> None:
    """Create these leads in the CRM (or with ``update`` bring their records up to date)."""
    crm = crm_from_config(rt.config, rt.settings.data_dir)
    if crm is None:
        return
    async with transaction(rt.sessions) as session:
        todo = [
            lead
            for lead in await leads.lock_many(session, lead_ids)
            if update or crm.name not in lead.external_ids
        ]
        if not todo:
            return
        started = time.perf_counter()
        # The key makes a retry after a crash (call made, commit lost) an update, not a copy.
        keys = [f"lead:{lead.id}" for lead in todo]
        if len(todo) == 1:
            external_ids = [await crm.upsert_lead(_crm_lead(todo[0]), idempotency_key=keys[0])]
        else:
            external_ids = await crm.upsert_leads(
                [_crm_lead(lead) for lead in todo], idempotency_keys=keys
            )
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        for lead, external_id in zip(todo, external_ids, strict=True):
            event = "crm.updated" if crm.name in lead.external_ids else "crm.synced"
            lead.external_ids = {**lead.external_ids, crm.name: external_id}
            if lead.status in (LeadStatus.ROUTED.value, LeadStatus.FAILED.value):
                lead.set_status(LeadStatus.SYNCED)
            detail: dict[str, Any] = {
                "crm": crm.name,
                "external_id": external_id,
                "status": lead.status,
            }
            if len(todo) > 1:
                detail["batch"] = len(todo)
            await leads.add_event(session, lead.id, event, detail, duration_ms=duration_ms)


def _crm_lead(lead: Lead) -> CrmLead:
    return CrmLead(
        lead_id=str(lead.id),
        email=lead.email,
        phone=lead.phone,
        first_name=lead.first_name,
        last_name=lead.last_name,
        company=lead.company,
        title=lead.title,
        owner=lead.owner,
        score=lead.score,
        segment=lead.segment,
        utm_source=lead.utm_source,
        utm_campaign=lead.utm_campaign,
        note="\n".join(
            line for line in (score_note(lead), (lead.routing_reason or {}).get("sentence")) if line
        )
        or None,
    )
