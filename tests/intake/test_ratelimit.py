"""Per-IP and per-form limits answer 429 with Retry-After, in memory and in Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import limits
import psycopg
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from limits.aio.strategies import MovingWindowRateLimiter

from leadflow.app import create_app
from leadflow.config import load_config_text
from leadflow.intake import ratelimit
from leadflow.settings import Settings
from tests.conftest import count
from tests.factories import submissions_url

LIMITED = """
intake:
  rate_limits: {per_ip: 3/minute, per_form: 5/minute}
forms:
  contact: {}
"""
URL = submissions_url()


async def _limited_app(settings: Settings, database_url: str) -> FastAPI:
    return create_app(settings, config=load_config_text(LIMITED), database_url=database_url)


def _client(app: FastAPI, ip: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(ip, 1000)), base_url="http://t"
    )


async def _exercise_limits(app: FastAPI, db: psycopg.Connection[dict[str, Any]], tag: str) -> None:
    async with _client(app, "198.51.100.1") as one, _client(app, "198.51.100.2") as two:
        first_ip = [await one.post(URL, json={"email": f"{tag}{n}@acme.de"}) for n in range(4)]
        second_ip = [await two.post(URL, json={"email": f"{tag}x{n}@acme.de"}) for n in range(3)]

    assert [r.status_code for r in first_ip] == [202, 202, 202, 429]
    limited = first_ip[3]
    assert limited.headers["content-type"] == "application/problem+json"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert "this address" in limited.json()["detail"]
    # the other address has its own budget, until the form's budget (5/minute) runs out
    assert [r.status_code for r in second_ip] == [202, 202, 429]
    assert "this form" in second_ip[2].json()["detail"]
    assert count(db, "leads") == 5


@pytest.fixture
async def memory_app(settings: Settings, database_url: str) -> AsyncIterator[FastAPI]:
    app = await _limited_app(settings, database_url)
    async with LifespanManager(app):
        yield app


async def test_limits_in_memory(
    memory_app: FastAPI, db: psycopg.Connection[dict[str, Any]]
) -> None:
    await _exercise_limits(memory_app, db, "mem")


@pytest.mark.redis
async def test_limits_in_redis_are_shared_by_replicas(
    tmp_path: Any, database_url: str, redis_url: str, db: psycopg.Connection[dict[str, Any]]
) -> None:
    # Two app instances (two API replicas) count against the same Redis budget.
    prefix_db = redis_url.rstrip("/")
    settings = Settings(admin_token="t", data_dir=tmp_path, redis_url=prefix_db)
    replica_a = await _limited_app(settings, database_url)
    replica_b = await _limited_app(settings, database_url)
    async with LifespanManager(replica_a), LifespanManager(replica_b):
        await replica_a.state.runtime.rate_limiter.storage.reset()
        ip = f"192.0.2.{uuid.uuid4().int % 200 + 1}"
        async with _client(replica_a, ip) as a, _client(replica_b, ip) as b:
            statuses = [
                (await a.post(URL, json={"email": f"r{n}@acme.de"})).status_code
                if n % 2 == 0
                else (await b.post(URL, json={"email": f"r{n}@acme.de"})).status_code
                for n in range(4)
            ]
        assert statuses == [202, 202, 202, 429]
        assert await replica_a.state.runtime.rate_limiter.healthy()
        await replica_a.state.runtime.rate_limiter.storage.reset()
    assert count(db, "leads") == 3


async def test_an_unreachable_redis_lets_leads_in(
    tmp_path: Any, database_url: str, db: psycopg.Connection[dict[str, Any]]
) -> None:
    # Nothing listens on port 1: every counter update fails.
    settings = Settings(admin_token="t", data_dir=tmp_path, redis_url="redis://127.0.0.1:1/0")
    app = await _limited_app(settings, database_url)
    async with LifespanManager(app), _client(app, "198.51.100.9") as client:
        response = await client.post(URL, json={"email": "redis-down@acme.de"})
    assert response.status_code == 202
    assert count(db, "leads") == 1


async def test_a_moving_window_in_memory_frees_each_hit_when_it_leaves_the_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: clock[0])
    limiter = MovingWindowRateLimiter(ratelimit.MovingWindows())
    rate = limits.parse("3/minute")

    hits = []
    for at in (0, 10, 20, 30, 59.9, 60.1, 70.1, 71):
        clock[0] = 1000.0 + at
        hits.append(await limiter.hit(rate, "form", "a"))

    # 3 in any 60 s: a hit fits again once the oldest one has left the window.
    assert hits == [True, True, True, False, False, True, True, False]
    assert await limiter.hit(rate, "form", "b")  # another key has its own window
    stats = await limiter.get_window_stats(rate, "form", "a")
    assert (stats.reset_time, stats.remaining) == (1000.0 + 20 + 60, 0)


async def test_keys_no_longer_hit_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: clock[0])
    storage = ratelimit.MovingWindows()
    limiter = MovingWindowRateLimiter(storage)
    rate = limits.parse("5/minute")
    for n in range(100):
        await limiter.hit(rate, "ip", f"198.51.100.{n}")

    clock[0] += ratelimit.SWEEP_SECONDS + 61
    await limiter.hit(rate, "ip", "198.51.100.200")

    assert await storage.reset() == 1  # only the address hit since
