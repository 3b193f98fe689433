"""Database outages under running processes: the pipeline comes back by itself.

A private PostgreSQL cluster (tests/pgcluster.py) is restarted and stopped under
real `leadflow serve` and `leadflow worker` processes while leads are submitted
before, during and after; the client retries 503s and refused connections with
the same Idempotency-Key, as a form tool would. Nothing the test does touches the
workers: every acknowledged lead must reach `synced` on its own, exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.pgcluster import Cluster
from tests.processes import (
    Process,
    assert_each_lead_once,
    count_or_none,
    free_port,
    lead_ids,
    leadflow_env,
    scalar,
    submit,
    submitting,
    wait_final,
    wait_ready,
    wait_running,
)

CONFIG = """
intake:
  rate_limits: {{per_ip: 100000/minute, per_form: 100000/minute}}
forms:
  contact: {{}}
pipeline:
  heartbeat: 1s
  stalled_after: {stalled_after}
  stop_grace: 5s
  retry: {{default: [1s, 1s, 2s, 2s, 5s, 10s]}}
connectors:
  crm: {{kind: recording, path: {crm}}}
"""


def _env(tmp_path: Path, url: str, stalled_after: str = "3s") -> dict[str, str]:
    config = CONFIG.format(crm=tmp_path / "crm.jsonl", stalled_after=stalled_after)
    return leadflow_env(tmp_path, url, config)


def _assert_each_lead_once(url: str, tmp_path: Path, acknowledged: dict[str, str]) -> None:
    assert_each_lead_once(url, tmp_path / "crm.jsonl", acknowledged)


def _diagnose(url: str, acknowledged: dict[str, str]) -> str:
    """What the leads that did not arrive went through, for a failing run's report."""
    with psycopg.connect(url, autocommit=True) as db:
        missing = set(acknowledged.values()) - lead_ids(url)
        late = db.execute("SELECT id::text, status FROM leads WHERE status <> 'synced'").fetchall()
        report = [f"acknowledged but absent: {sorted(missing)}", f"not synced: {late}"]
        for lead_id, _ in late:
            report.append(
                str(
                    db.execute(
                        "SELECT type, at FROM lead_events WHERE lead_id = %s ORDER BY id",
                        (lead_id,),
                    ).fetchall()
                )
            )
            report.append(
                str(
                    db.execute(
                        "SELECT id, task_name, status, attempts, worker_id FROM procrastinate_jobs "
                        "WHERE args::text LIKE %s",
                        (f"%{lead_id}%",),
                    ).fetchall()
                )
            )
    return "\n".join(report)


def _keys(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


@pytest.mark.slow
def test_a_worker_waits_for_the_schema_and_rides_through_restarts(
    cluster: Cluster, tmp_path: Path
) -> None:
    env = _env(tmp_path, cluster.url)
    worker = Process(["worker", "--concurrency", "4"], env, tmp_path / "worker.log")
    api: Process | None = None
    acknowledged: dict[str, str] = {}
    try:
        # Started before the schema exists: it waits and says what for.
        worker.wait_for_log("waiting for the database schema")
        time.sleep(1)
        assert worker.alive()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        api = Process(["serve", "--no-worker", "--port", str(port)], env, tmp_path / "api.log")
        wait_ready(base, api)  # serve migrated the database; the worker starts working
        submit(base, _keys("before", 20), acknowledged)
        wait_final(cluster.url, {"synced": 20}, timeout=30)

        cluster.restart()  # a fast restart: every connection is cut
        submit(base, _keys("restart", 20), acknowledged)
        during = submitting(base, _keys("outage", 20), acknowledged)
        cluster.stop()
        time.sleep(5)
        cluster.start()
        during.join(timeout=60)
        submit(base, _keys("after", 20), acknowledged)

        wait_final(cluster.url, {"synced": 80}, timeout=90)
        assert worker.alive(), worker.log()
        assert api.alive(), api.log()
    finally:
        logs = worker.log()
        worker.stop()
        if api is not None:
            api.stop()
    _assert_each_lead_once(cluster.url, tmp_path, acknowledged)
    assert "database outage: worker" in logs
    assert "working again" in logs
    assert "Side task" not in logs  # procrastinate's stop is the supervisor's business


@pytest.mark.slow
def test_the_embedded_worker_comes_back_and_readyz_tells_while_it_is_down(
    cluster: Cluster, tmp_path: Path
) -> None:
    env = _env(tmp_path, cluster.url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = Process(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    acknowledged: dict[str, str] = {}
    try:
        wait_ready(base, serve)
        submit(base, _keys("before", 10), acknowledged)
        during = submitting(base, _keys("outage", 10), acknowledged)
        cluster.stop()
        ready = httpx.get(f"{base}/readyz", timeout=5)
        time.sleep(10)
        cluster.start()
        during.join(timeout=60)
        submit(base, _keys("after", 10), acknowledged)
        wait_final(cluster.url, {"synced": 30}, timeout=90)
        back = httpx.get(f"{base}/readyz", timeout=5)
        assert serve.alive()
    finally:
        logs = serve.log()
        serve.stop()
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("unreachable")
    assert back.status_code == 200
    assert back.json()["checks"]["worker"] == "ok"
    _assert_each_lead_once(cluster.url, tmp_path, acknowledged)
    assert "database outage: worker" in logs


@pytest.mark.slow
def test_workers_started_together_with_migrate_share_one_migration(
    cluster: Cluster, tmp_path: Path
) -> None:
    env = _env(tmp_path, cluster.url)
    workers = [Process(["worker", "--migrate"], env, tmp_path / f"worker{i}.log") for i in range(3)]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    running = "SELECT count(*) FROM worker_heartbeats WHERE state = 'running'"
    api: Process | None = None
    try:
        deadline = time.monotonic() + 60
        while count_or_none(cluster.url, running) != 3:
            assert time.monotonic() < deadline, [worker.log() for worker in workers]
            time.sleep(0.2)
        api = Process(["serve", "--no-worker", "--port", str(port)], env, tmp_path / "api.log")
        wait_ready(base, api)
        acknowledged: dict[str, str] = {}
        submit(base, _keys("lead", 10), acknowledged)
        wait_final(cluster.url, {"synced": 10}, timeout=30)
    finally:
        codes = [worker.stop() for worker in workers]
        if api is not None:
            api.stop()
    assert codes == [0, 0, 0], [worker.log() for worker in workers]
    assert not any("Traceback" in worker.log() for worker in workers)


@pytest.mark.slow
def test_a_deploy_that_restarts_every_worker_repeats_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    """SIGTERM lets running jobs finish: no job is found stalled, none runs twice. (A
    worker is taken for dead after 10 s of silence here, not 3 s: on a loaded machine a
    live worker's heartbeat can be late by seconds, which would count as a stall.)"""
    env = _env(tmp_path, cluster.url, stalled_after="10s")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = Process(["serve", "--no-worker", "--port", str(port)], env, tmp_path / "api.log")
    logs = tmp_path / "workers.log"
    workers = [Process(["worker", "--concurrency", "4"], env, logs) for _ in range(2)]
    acknowledged: dict[str, str] = {}
    codes = []
    try:
        wait_ready(base, api)
        submitter = submitting(base, _keys("deploy", 300), acknowledged)
        for _ in range(3):  # a rolling deploy, three times over
            time.sleep(0.7)
            for i, old in enumerate(list(workers)):
                workers[i] = Process(["worker", "--concurrency", "4"], env, logs)
                wait_running(cluster.url, workers[i])  # the new one works, then the old goes
                codes.append(old.stop())
        submitter.join(timeout=180)
        wait_final(cluster.url, {"synced": 300}, timeout=180)
    finally:
        for worker in workers:
            codes.append(worker.stop())
        api.stop()
    assert set(codes) == {0}
    _assert_each_lead_once(cluster.url, tmp_path, acknowledged)
    assert scalar(cluster.url, "SELECT count(*) FROM job_attempts WHERE outcome = 'stalled'") == 0


@pytest.mark.slow
def test_chaos_database_restarts_and_kill_9_lose_nothing_and_double_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    env = _env(tmp_path, cluster.url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    logs = tmp_path / "chaos.log"
    api = Process(["serve", "--no-worker", "--port", str(port)], env, logs)
    workers = [Process(["worker", "--concurrency", "4"], env, logs) for _ in range(2)]
    acknowledged: dict[str, str] = {}
    rng = random.Random(int(os.environ.get("LEADFLOW_CHAOS_SEED", "20261203")))
    events = []
    try:
        wait_ready(base, api)
        submitters = [submitting(base, _keys(f"chaos{n}", 250), acknowledged) for n in range(4)]
        for _ in range(10):
            time.sleep(rng.uniform(0.3, 1.5))
            what = rng.choice(["restart", "outage", "kill worker", "kill worker", "kill api"])
            events.append(what)
            if what == "restart":
                cluster.restart(rng.choice(["fast", "immediate"]))
            elif what == "outage":
                cluster.stop(rng.choice(["fast", "immediate"]))
                time.sleep(rng.uniform(1, 4))
                cluster.start()
            elif what == "kill worker":
                victim = workers.pop(rng.randrange(len(workers)))
                os.kill(victim.pid, signal.SIGKILL)
                victim.kill()
                workers.append(Process(["worker", "--concurrency", "4"], env, logs))
            else:
                os.kill(api.pid, signal.SIGKILL)
                api.kill()
                api = Process(["serve", "--no-worker", "--port", str(port)], env, logs)
                wait_ready(base, api)
        chaos_over = time.monotonic()
        for submitter in submitters:
            submitter.join(timeout=180)
        submitted = time.monotonic()
        assert len(acknowledged) == 1000
        try:
            wait_final(cluster.url, {"synced": 1000}, timeout=60)
        except AssertionError:
            print(_diagnose(cluster.url, acknowledged))
            raise
        print(
            f"submitted {submitted - chaos_over:.1f} s after the chaos, all synced "
            f"{time.monotonic() - submitted:.1f} s later"
        )
        assert all(worker.alive() for worker in workers), events
    finally:
        for worker in workers:
            worker.stop()
        api.stop()
    _assert_each_lead_once(cluster.url, tmp_path, acknowledged)
    print("chaos:", events)
