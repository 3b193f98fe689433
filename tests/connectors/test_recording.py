"""The recording CRM (dry runs and tests) keeps its promises, also across processes; the
configured CRM is one instance per target; notifiers keep or drop alerts as they say."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from datetime import datetime
from pathlib import Path

import pytest

from leadflow.connectors import crm_from_config
from leadflow.connectors.base import Alert
from leadflow.connectors.fakes import NullNotifier, RecordingCrm, RecordingNotifier
from tests.factories import config, config_with_crm, crm_lead


def actions(crm: RecordingCrm) -> list[tuple[str, str]]:
    return [(call["key"], call["action"]) for call in crm.calls()]


async def test_a_key_seen_before_is_an_update_not_a_second_create(tmp_path: Path) -> None:
    crm = RecordingCrm(tmp_path / "crm.jsonl")

    await crm.upsert_lead(crm_lead(1), idempotency_key="a")
    await crm.upsert_leads([crm_lead(2), crm_lead(1)], idempotency_keys=["b", "a"])
    await crm.upsert_lead(crm_lead(2), idempotency_key="b")

    assert actions(crm) == [("a", "create"), ("b", "create"), ("a", "update"), ("b", "update")]


async def test_each_call_is_a_json_line_with_what_was_sent(tmp_path: Path) -> None:
    path = tmp_path / "dry-run" / "crm.jsonl"  # its folder is made when first written
    crm = RecordingCrm(path)
    sent = [crm_lead(1, note="Hot: pricing page twice"), crm_lead(2)]

    ids = await crm.upsert_leads(sent, idempotency_keys=["a", "b"])

    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == crm.calls()
    assert [
        (call["key"], call["external_id"], call["batch"], call["lead"]) for call in crm.calls()
    ] == [
        ("a", ids[0], 2, dataclasses.asdict(sent[0])),
        ("b", ids[1], 2, dataclasses.asdict(sent[1])),
    ]
    assert all(datetime.fromisoformat(call["at"]).tzinfo for call in crm.calls())


def test_no_call_yet_reads_as_no_calls(tmp_path: Path) -> None:
    assert RecordingCrm(tmp_path / "never-written.jsonl").calls() == []


async def test_instances_sharing_a_file_share_what_they_have_seen(tmp_path: Path) -> None:
    path = tmp_path / "crm.jsonl"
    api, worker = RecordingCrm(path), RecordingCrm(path)

    first = await api.upsert_lead(crm_lead(1), idempotency_key="a")
    again = await worker.upsert_lead(crm_lead(1), idempotency_key="a")
    await api.upsert_lead(crm_lead(1), idempotency_key="a")  # after the other wrote

    assert again == first
    assert actions(RecordingCrm(path)) == [("a", "create"), ("a", "update"), ("a", "update")]


ROOT = Path(__file__).parents[2]  # where ``tests`` imports from
WORKER = """
import asyncio, sys
from pathlib import Path
from leadflow.connectors.fakes import RecordingCrm
from tests.factories import crm_lead

crm = RecordingCrm(Path(sys.argv[1]))
keys = [f"lead-{n}" for n in range(8)]
async def main() -> None:
    for _ in range(5):
        await crm.upsert_leads([crm_lead(n) for n in range(8)], idempotency_keys=keys)
asyncio.run(main())
"""


async def test_processes_writing_at_once_create_each_record_once(tmp_path: Path) -> None:
    path = tmp_path / "crm.jsonl"
    here = RecordingCrm(path)
    await here.upsert_lead(crm_lead(0), idempotency_key="lead-0")  # seen before the others

    workers = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", WORKER, str(path), cwd=ROOT)
        for _ in range(4)
    ]
    codes = [await asyncio.wait_for(worker.wait(), timeout=60) for worker in workers]
    await here.upsert_lead(crm_lead(7), idempotency_key="lead-7")  # written by the others

    assert codes == [0, 0, 0, 0]
    calls = RecordingCrm(path).calls()
    assert len(calls) == 1 + 4 * 5 * 8 + 1
    creates = sorted(call["key"] for call in calls if call["action"] == "create")
    assert creates == [f"lead-{n}" for n in range(8)]
    assert calls[-1]["action"] == "update"
    assert len({call["external_id"] for call in calls}) == 8


def test_the_configured_crm_is_one_instance_per_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    monkeypatch.chdir(tmp_path)  # a relative path is in the data dir, not the current one
    relative = config("\nconnectors:\n  crm: {kind: recording, path: crm.jsonl}\n")
    absolute = config_with_crm(data_dir / "crm.jsonl")
    elsewhere = config_with_crm(tmp_path / "crm.jsonl")

    crm = crm_from_config(absolute, data_dir)

    assert isinstance(crm, RecordingCrm)
    assert crm.path == data_dir / "crm.jsonl"
    assert crm_from_config(absolute, data_dir) is crm
    assert crm_from_config(relative, data_dir) is crm  # the same file, however it is written
    assert crm_from_config(elsewhere, data_dir) is not crm
    assert crm_from_config(config(), data_dir) is None  # no CRM: leads stop at routed


async def test_the_recording_notifier_keeps_alerts_in_order() -> None:
    notifier = RecordingNotifier()
    stalled = Alert("pipeline_stalled", "No lead has moved for 10 minutes.")
    triage = Alert("triage", "A lead went to triage.", {"lead_id": "L1", "queue": "triage"})

    await notifier.notify(stalled)
    await notifier.notify(triage)
    await notifier.notify(stalled)

    assert notifier.alerts == [stalled, triage, stalled]


async def test_the_null_notifier_takes_any_alert_and_keeps_none() -> None:
    notifier = NullNotifier()

    answers = [
        await notifier.notify(Alert(kind, "message", {"detail": object()}))
        for kind in ("dead_letter", "volume_drop", "")
    ]

    assert answers == [None, None, None]
    assert not vars(notifier)
