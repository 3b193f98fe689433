"""The HubSpot CRM connector: contacts upserted by email, a note per lead and sync reason."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import urllib3
from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    SimplePublicObjectBatchInputUpsert,
)
from hubspot.crm.objects.notes import (
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectInputForCreate,
)
from urllib3.util.retry import Retry

from leadflow.connectors.base import CrmLead
from leadflow.models.base import utcnow
from leadflow.stage import PermanentFailure, RetryableFailure, failure_for_status

T = TypeVar("T")
NOTE_KEY = "leadflow_note_key"  # a custom note property: one note per lead and sync reason
CONTACT_TO_NOTE = 202  # HubSpot's association type id: note to contact


class HubSpotCrm:
    """Leads as HubSpot contacts (batch upsert by email) with a note of their score reasons."""

    name = "hubspot"

    def __init__(self, token: str, base_url: str, *, timeout: float = 10.0) -> None:
        # No urllib3 retries: the pipeline's schedule retries, and a POST must not be
        # sent twice behind our back.
        self._client = HubSpot(access_token=token, host=base_url.rstrip("/"), retry=Retry(0))
        self.timeout = timeout
        self._owners: dict[str, str] = {}
        self._owners_lock = threading.Lock()

    async def upsert_lead(self, lead: CrmLead, *, idempotency_key: str) -> str:
        return (await self.upsert_leads([lead], idempotency_keys=[idempotency_key]))[0]

    async def upsert_leads(
        self, leads: Sequence[CrmLead], *, idempotency_keys: Sequence[str]
    ) -> list[str]:
        for lead in leads:
            if not lead.email:
                raise PermanentFailure(f"lead {lead.lead_id} has no email: HubSpot upserts by it")
        answer = await self._call(lambda: self._upsert(leads))
        by_email = {str(r.properties.get("email", "")).lower(): str(r.id) for r in answer.results}
        ids = []
        for lead in leads:
            contact_id = by_email.get(str(lead.email).lower())
            if contact_id is None:
                raise RetryableFailure(f"HubSpot's answer lacks the contact for {lead.email}")
            ids.append(contact_id)
        for lead, key, contact_id in zip(leads, idempotency_keys, ids, strict=True):
            if lead.note:
                await self._note_once(lead, key, contact_id)
        return ids

    def _upsert(self, leads: Sequence[CrmLead]) -> Any:
        inputs = [
            SimplePublicObjectBatchInputUpsert(
                id_property="email", id=lead.email, properties=self._properties(lead)
            )
            for lead in leads
        ]
        return self._client.crm.contacts.batch_api.upsert(
            BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs),
            _request_timeout=self.timeout,
        )

    def _properties(self, lead: CrmLead) -> dict[str, str]:
        values: dict[str, object] = {
            "email": lead.email,
            "firstname": lead.first_name,
            "lastname": lead.last_name,
            "company": lead.company,
            "jobtitle": lead.title,
            "phone": lead.phone,
            "hubspot_owner_id": self._owner_id(lead.owner) if lead.owner else None,
            "leadflow_id": lead.lead_id,
            "leadflow_score": lead.score,
            "leadflow_segment": lead.segment,
            "utm_source": lead.utm_source,
            "utm_campaign": lead.utm_campaign,
        }
        return {name: str(value) for name, value in values.items() if value is not None}

    def _owner_id(self, email: str) -> str | None:
        """HubSpot's owner id for a Leadflow owner's email; the list is read once and
        again when an email is not in it (a rep added since)."""
        with self._owners_lock:
            if email.lower() not in self._owners:
                self._owners = self._read_owners()
            return self._owners.get(email.lower())

    def _read_owners(self) -> dict[str, str]:
        owners: dict[str, str] = {}
        after = None
        while True:
            page = self._client.crm.owners.owners_api.get_page(
                limit=500, after=after, _request_timeout=self.timeout
            )
            owners.update({str(o.email).lower(): str(o.id) for o in page.results if o.email})
            if page.paging is None or page.paging.next is None:
                return owners
            after = page.paging.next.after

    async def _note_once(self, lead: CrmLead, key: str, contact_id: str) -> None:
        """The lead's note on its contact, once per key and note text: a retry after a
        lost answer finds the note by its key instead of writing a second one."""
        note_key = hashlib.sha256(f"{key}\n{lead.note}".encode()).hexdigest()[:32]
        notes = self._client.crm.objects.notes
        search = PublicObjectSearchRequest(
            filter_groups=[
                FilterGroup(filters=[Filter(property_name=NOTE_KEY, operator="EQ", value=note_key)])
            ],
            properties=[NOTE_KEY],
            limit=1,
        )
        found = await self._call(
            lambda: notes.search_api.do_search(search, _request_timeout=self.timeout)
        )
        if found.results:
            return
        note = SimplePublicObjectInputForCreate(
            properties={
                "hs_note_body": lead.note,
                "hs_timestamp": utcnow().isoformat(),
                NOTE_KEY: note_key,
            },
            associations=[
                {
                    "to": {"id": contact_id},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": CONTACT_TO_NOTE,
                        }
                    ],
                }
            ],
        )
        await self._call(lambda: notes.basic_api.create(note, _request_timeout=self.timeout))

    async def _call(self, call: Callable[[], T]) -> T:
        """One client call in a thread, so the event loop never waits on HubSpot."""
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self._sync_call, call), timeout=self.timeout + 1
            )
        except TimeoutError as error:
            raise RetryableFailure(f"HubSpot did not answer in {self.timeout:g}s") from error

    def _sync_call(self, call: Callable[[], T]) -> T:
        """The one place HubSpot's errors become the pipeline's failures."""
        try:
            return call()
        except urllib3.exceptions.HTTPError as error:  # timeouts, refused, dropped
            raise RetryableFailure(f"HubSpot unreachable: {error}") from error
        except Exception as error:
            status = getattr(error, "status", None)
            if type(error).__name__ != "ApiException" or not isinstance(status, int):
                raise
            if status == 0:
                raise RetryableFailure(f"HubSpot unreachable: {error}") from error
            headers = getattr(error, "headers", None) or {}
            raise failure_for_status(
                status,
                _message(getattr(error, "body", None)),
                retry_after=headers.get("Retry-After"),
            ) from error


def _message(body: Any) -> str:
    """HubSpot's own message from an error body (JSON with ``message``), else the body."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return str(parsed.get("message", text)) if isinstance(parsed, dict) else text
