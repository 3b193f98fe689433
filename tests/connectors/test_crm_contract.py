"""What every CRM connector promises the sync step, seen through ``CrmConnector`` alone:
an idempotency key seen before is the same record, and a batch answers in its order.

It runs against each connector in conftest.CRMS."""

from __future__ import annotations

from leadflow.connectors.base import CrmConnector
from tests.factories import crm_lead


async def test_a_lead_gets_an_id_and_a_retry_with_its_key_gets_the_same_one(
    crm: CrmConnector,
) -> None:
    first = await crm.upsert_lead(crm_lead(1), idempotency_key="lead-1:sync")
    retry = await crm.upsert_lead(crm_lead(1, score=90), idempotency_key="lead-1:sync")

    assert isinstance(first, str)
    assert first
    assert retry == first


async def test_other_keys_are_other_records(crm: CrmConnector) -> None:
    ids = [await crm.upsert_lead(crm_lead(n), idempotency_key=f"lead-{n}:sync") for n in range(5)]

    assert len(set(ids)) == 5


async def test_a_batch_answers_each_lead_in_its_order(crm: CrmConnector) -> None:
    keys = [f"lead-{n}:sync" for n in range(6)]

    ids = await crm.upsert_leads([crm_lead(n) for n in range(6)], idempotency_keys=keys)
    again = await crm.upsert_leads(
        [crm_lead(n) for n in reversed(range(6))], idempotency_keys=list(reversed(keys))
    )

    assert len(ids) == len(set(ids)) == 6
    assert again == list(reversed(ids))


async def test_a_batch_and_single_calls_are_the_same_records(crm: CrmConnector) -> None:
    alone = await crm.upsert_lead(crm_lead(2), idempotency_key="lead-2:sync")

    together = await crm.upsert_leads(
        [crm_lead(1), crm_lead(2), crm_lead(3)],
        idempotency_keys=["lead-1:sync", "lead-2:sync", "lead-3:sync"],
    )
    later = await crm.upsert_lead(crm_lead(3), idempotency_key="lead-3:sync")

    assert together[1] == alone
    assert later == together[2]
    assert len(set(together)) == 3


async def test_a_connector_has_a_name_for_the_lead_external_ids(crm: CrmConnector) -> None:
    assert isinstance(crm.name, str)
    assert crm.name
