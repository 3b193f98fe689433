"""The lead's state machine through the internal stages (pure), and the queue's locks."""

from __future__ import annotations

import procrastinate
import pytest
from procrastinate.testing import InMemoryConnector

from leadflow.jobs import job_app
from leadflow.models import LeadStatus
from leadflow.pipeline.stages import STAGES, STARTABLE
from leadflow.pipeline.tasks import process_lead


def test_stages_move_the_lead_forward_in_the_documented_order() -> None:
    path = [LeadStatus.RECEIVED, *(stage.leaves for stage in STAGES)]
    assert [status.value for status in path] == [
        "received",
        "validated",
        "deduplicated",
        "scored",
        "routed",
    ]
    assert [stage.name for stage in STAGES] == ["validate", "dedup", "score", "route"]


def test_only_unfinished_or_failed_leads_are_started() -> None:
    assert "received" in STARTABLE
    assert "failed" in STARTABLE  # a replayed dead letter starts over
    finished = {"routed", "synced", "quarantined", "merged", "contacted", "qualified"}
    assert not finished & STARTABLE


def test_a_step_of_a_lead_is_queued_once() -> None:
    connector = InMemoryConnector()
    with job_app.replace_connector(connector):
        lock = "lead.process:1f0c"
        process_lead.configure(queueing_lock=lock).defer(lead_id="1f0c")
        with pytest.raises(procrastinate.exceptions.AlreadyEnqueued):
            process_lead.configure(queueing_lock=lock).defer(lead_id="1f0c")
        process_lead.configure(queueing_lock="lead.process:2a9e").defer(lead_id="2a9e")
    assert [job["args"] for job in connector.jobs.values()] == [
        {"lead_id": "1f0c"},
        {"lead_id": "2a9e"},
    ]
