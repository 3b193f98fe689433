"""The batch a stage is handed: its leads in order, what each stage keeps, read once."""

from __future__ import annotations

import uuid

from leadflow.models import Lead
from leadflow.stage import Batch, StateKey

COUNTS = StateKey[dict[uuid.UUID, int]]("test.counts", dict)
SEEN = StateKey[set[str]]("test.seen", set)


def _leads(n: int) -> list[Lead]:
    return [Lead(id=uuid.uuid4(), form_key="contact", status="received") for _ in range(n)]


def test_a_stage_finds_what_it_kept_and_only_that() -> None:
    batch = Batch(_leads(2))
    batch.state(COUNTS)[uuid.UUID(int=1)] = 3
    batch.state(SEEN).add("e:ana@acme.de")

    assert batch.state(COUNTS) == {uuid.UUID(int=1): 3}
    assert batch.state(SEEN) == {"e:ana@acme.de"}
    assert Batch().state(COUNTS) == {}  # another transaction starts empty


def test_the_leads_after_one_are_those_taken_after_it() -> None:
    first, second, third = _leads(3)
    batch = Batch([first, second, third])

    assert list(batch.leads) == [first.id, second.id, third.id]
    assert batch.after(first.id) == {second.id, third.id}
    assert batch.after(third.id) == set()
    assert batch.after(uuid.uuid4()) == set()  # a lead outside the batch: none
    assert len(batch) == 3


def test_the_batch_forgets_the_submissions_of_the_leads_a_merge_moved() -> None:
    one, two = _leads(2)
    batch = Batch([one, two])
    batch.submissions[one.id] = []
    batch.submissions[two.id] = []

    batch.forget_submissions(one.id)

    assert set(batch.submissions) == {two.id}
