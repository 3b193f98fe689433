"""The deployment at scale, without containers: two API replicas and two workers on one
PostgreSQL and one Redis, as compose.yaml and deploy/kubernetes/ lay them out.

Real `leadflow serve --no-worker` and `leadflow worker` processes on a private
PostgreSQL cluster (tests/pgcluster.py) and the machine's Redis. The client goes round
both replicas as a load balancer would, and retries a refused connection or a 503 on
the next one with the same Idempotency-Key, as a form tool does.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from threading import Thread

import httpx
import pytest

from tests.pgcluster import Cluster
from tests.processes import (
    Process,
    assert_each_lead_once,
    free_port,
    leadflow_env,
    scalar,
    submitting,
    wait_final,
    wait_ready,
    wait_running,
)

PER_IP = 5
DOCUMENTATION = 0x2001_0DB8  # 2001:db8::/32, the addresses for documentation and tests
CONFIG = f"""
intake:
  rate_limits: {{per_ip: {PER_IP}/minute, per_form: 100000/minute}}
forms:
  contact: {{}}
pipeline:
  heartbeat: 1s
  stalled_after: 5s
  stop_grace: 5s
  retry: {{default: [1s, 1s, 2s, 2s, 5s, 10s]}}
connectors:
  crm: {{kind: recording, path: {{crm}}}}
"""


@dataclass
class Topology:
    url: str
    crm_log: Path
    apis: list[Process]
    bases: list[str]
    workers: list[Process]
    run: int  # this run's own client addresses: 2001:db8:RUN::/48 (the Redis is shared)

    def address(self, key: str) -> str:
        """A client address of its own for each key, so that no per-IP limit is hit."""
        interface = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
        return str(ipaddress.IPv6Address(DOCUMENTATION << 96 | self.run << 80 | interface))

    def stream(self, prefix: str, n: int, acknowledged: dict[str, str]) -> list[Thread]:
        """``n`` submissions from two form tools at once, each going round the replicas."""
        return [
            submitting(
                self.bases,
                [f"{prefix}{tool}-{i}" for i in range(tool, n, 2)],
                acknowledged,
                forwarded_for=self.address,
            )
            for tool in range(2)
        ]


@pytest.fixture
def topology(cluster: Cluster, redis_url: str, tmp_path: Path) -> Iterator[Topology]:
    crm_log = tmp_path / "crm.jsonl"
    # Pools kept small: 4 processes x (2 x 4 + 4 + 2) connections stay under the
    # cluster's 100 (the sizing rule of deploy/kubernetes/kustomization.yaml).
    env = leadflow_env(
        tmp_path,
        cluster.url,
        CONFIG.replace("{crm}", str(crm_log)),
        redis_url=redis_url,
        db_pool_size="4",
    )
    ports = [free_port(), free_port()]
    logs = tmp_path / "processes.log"
    migrate = Process(["migrate"], env, logs)
    assert migrate.popen.wait(timeout=120) == 0, migrate.log()  # the one-shot migration first
    migrate.stop()
    apis = [Process(["serve", "--no-worker", "--port", str(port)], env, logs) for port in ports]
    workers = [Process(["worker", "--concurrency", "4"], env, logs) for _ in range(2)]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base, api in zip(bases, apis, strict=True):
            wait_ready(base, api)
        for worker in workers:
            wait_running(cluster.url, worker)
        yield Topology(cluster.url, crm_log, apis, bases, workers, random.randrange(1, 0xFFFF))
    finally:
        for process in apis + workers:
            if process.alive():
                process.stop()


def _post(base: str, email: str, ip: str) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/forms/contact/submissions",
        json={"email": email},
        headers={"X-Forwarded-For": ip},
        timeout=10,
    )


@pytest.mark.slow
@pytest.mark.redis
def test_two_replicas_and_two_workers_share_limits_lose_nothing_and_double_nothing(
    topology: Topology,
) -> None:
    a, b = topology.bases
    url = topology.url

    # (a) The rate limit is one budget in Redis: a client that spent it on replica A and B
    # together is refused by both, and the refused submissions store nothing.
    client = f"2001:db8:{topology.run:x}:ffff::1"
    spent = [_post((a, b)[n % 2], f"limited{n}@acme.de", client) for n in range(PER_IP)]
    over_a = _post(a, "limited-a@acme.de", client)
    over_b = _post(b, "limited-b@acme.de", client)
    assert [r.status_code for r in spent] == [202] * PER_IP
    for refused in (over_a, over_b):
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert "Too many submissions from this address" in refused.json()["detail"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
    limited = "SELECT count(*) FROM leads WHERE email LIKE 'limited%'"
    assert scalar(url, limited) == PER_IP

    # (b) A stream to both replicas, taken by both workers: each lead processed once.
    acknowledged: dict[str, str] = {}
    for thread in topology.stream("b", 100, acknowledged):
        thread.join(timeout=60)
    expected = len(acknowledged) + PER_IP
    assert expected == 100 + PER_IP
    wait_final(url, {"synced": expected}, timeout=60)
    worked = scalar(
        url,
        "SELECT count(DISTINCT worker_id) FROM procrastinate_jobs WHERE status = 'succeeded' "
        "AND task_name IN ('lead.process', 'lead.process_batch', 'crm.sync')",
    )
    assert worked == 2

    # (c) Mid-stream, replica A and a worker are killed (SIGKILL): every submission that
    # was acknowledged still ends synced, once; the client's retries reach replica B.
    second = topology.stream("c", 200, acknowledged)
    deadline = time.monotonic() + 30
    while len(acknowledged) < 100 + 40:
        assert time.monotonic() < deadline, "the stream did not start"
        time.sleep(0.05)
    synced = scalar(url, "SELECT count(*) FROM leads WHERE status = 'synced'")
    assert synced < len(acknowledged) + PER_IP  # leads in flight when the kill comes
    for victim in (topology.apis[0], topology.workers[0]):
        os.kill(victim.pid, signal.SIGKILL)
        victim.kill()
    for thread in second:
        thread.join(timeout=60)
    assert len(acknowledged) == 300
    wait_final(url, {"synced": 300 + PER_IP}, timeout=60)
    assert topology.apis[1].alive()
    assert topology.workers[1].alive()

    limited_ids = {f"limited{n}": r.json()["lead_id"] for n, r in enumerate(spent)}
    assert_each_lead_once(url, topology.crm_log, acknowledged | limited_ids)
