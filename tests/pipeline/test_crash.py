"""kill -9 at random moments: every acknowledged lead is processed, no effect happens twice.

Real processes: one API (`leadflow serve --no-worker`) and workers (`leadflow
worker`), killed with SIGKILL while leads flow and replaced, the API included.
The client retries refused connections with the same Idempotency-Key, as a form
tool would. At the end every acknowledged lead is `synced`, exactly once in the
(recording) CRM, with each stage in its timeline once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from leadflow.connectors.fakes import RecordingCrm
from tests.test_cli import _free_port, _start, _stop, _wait_ready

LEADS = 300
CONFIG = """
intake:
  rate_limits: {{per_ip: 100000/minute, per_form: 100000/minute}}
forms:
  contact: {{}}
pipeline:
  heartbeat: 1s
  stalled_after: 3s
  retry: {{default: [1s, 1s, 2s, 2s, 5s]}}
connectors:
  crm: {{kind: recording, path: {crm}}}
"""


def _submit_all(base: dict[str, str], acknowledged: dict[str, str], stop: threading.Event) -> None:
    with httpx.Client(timeout=5) as client:
        for n in range(LEADS):
            key = f"crash-{n}"
            while not stop.is_set():
                try:
                    response = client.post(
                        f"{base['url']}/v1/forms/contact/submissions",
                        json={"email": f"crash{n}@acme.de"},
                        headers={"Idempotency-Key": key},
                    )
                except httpx.TransportError:
                    time.sleep(0.05)  # the API is down or restarting: retry, same key
                    continue
                if response.status_code == 202:
                    acknowledged[key] = response.json()["lead_id"]
                    break
                time.sleep(0.05)


@pytest.mark.slow
def test_kill_9_loses_nothing_and_doubles_nothing(fresh_database: str, tmp_path: Path) -> None:
    crm_log = tmp_path / "crm.jsonl"
    config = tmp_path / "leadflow.yaml"
    config.write_text(CONFIG.format(crm=crm_log))
    env = {
        **os.environ,
        "LEADFLOW_DATABASE_URL": fresh_database,
        "LEADFLOW_ADMIN_TOKEN": "t",
        "LEADFLOW_DATA_DIR": str(tmp_path),
        "LEADFLOW_CONFIG": str(config),
        "LEADFLOW_LOG_LEVEL": "WARNING",
    }
    port = _free_port()
    base = {"url": f"http://127.0.0.1:{port}"}
    api = _start(["serve", "--no-worker", "--port", str(port)], env)
    _wait_ready(base["url"], api)
    workers = [_start(["worker", "--concurrency", "4"], env) for _ in range(2)]
    killed: list[subprocess.Popen[bytes]] = []
    acknowledged: dict[str, str] = {}
    stop = threading.Event()
    submitter = threading.Thread(target=_submit_all, args=(base, acknowledged, stop))
    rng = random.Random(20261126)
    try:
        submitter.start()
        for round_ in range(8):
            time.sleep(rng.uniform(0.15, 0.6))
            victim = workers.pop(rng.randrange(len(workers)))
            os.kill(victim.pid, signal.SIGKILL)
            killed.append(victim)
            workers.append(_start(["worker", "--concurrency", "4"], env))
            if round_ == 3:  # and once the API itself
                os.kill(api.pid, signal.SIGKILL)
                killed.append(api)
                api = _start(["serve", "--no-worker", "--port", str(port)], env)
                _wait_ready(base["url"], api)
        submitter.join(timeout=120)
        assert not submitter.is_alive(), "submissions did not finish"
        assert len(acknowledged) == LEADS

        deadline = time.monotonic() + 120
        with psycopg.connect(fresh_database, autocommit=True, row_factory=dict_row) as db:
            statuses: dict[str, Any] = {}
            while time.monotonic() < deadline:
                rows = db.execute(
                    "SELECT status, count(*) AS n FROM leads GROUP BY status"
                ).fetchall()
                statuses = {row["status"]: row["n"] for row in rows}
                if statuses == {"synced": LEADS}:
                    break
                time.sleep(0.5)
            assert statuses == {"synced": LEADS}, statuses
            leads = {row["id"] for row in db.execute("SELECT id::text FROM leads").fetchall()}
            per_type = db.execute(
                "SELECT type, count(*) AS n, count(DISTINCT lead_id) AS leads FROM lead_events "
                "WHERE type IN ('received', 'lead.route', 'crm.synced') GROUP BY type"
            ).fetchall()
            recovered = db.execute(
                "SELECT count(*) AS n FROM job_attempts WHERE outcome = 'stalled'"
            ).fetchone()
    finally:
        stop.set()
        for process in killed:
            process.communicate()  # reaps it and closes its stderr pipe
        _stop(api, *workers)

    assert leads == set(acknowledged.values())  # none lost, none extra
    assert {row["type"]: (row["n"], row["leads"]) for row in per_type} == {
        "received": (LEADS, LEADS),
        "lead.route": (LEADS, LEADS),
        "crm.synced": (LEADS, LEADS),
    }
    creates = [c for c in RecordingCrm(crm_log).calls() if c["action"] == "create"]
    assert sorted(c["lead"]["lead_id"] for c in creates) == sorted(leads)  # one contact per lead
    print("jobs found stalled and requeued:", recovered)
