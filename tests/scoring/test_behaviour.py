"""Behaviour on PostgreSQL: POST /v1/events, linking anonymous browsing, debounced re-scoring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from leadflow.config import Config, load_config_text
from leadflow.db import transaction
from leadflow.scoring.service import rescore_outdated
from tests.conftest import TEST_CONFIG
from tests.dedup.test_dedup_step import get
from tests.pipeline.conftest import drain

Row = dict[str, Any]
RULES = """
scoring:
  thresholds: {warm: 30, hot: 60}
  rescore_debounce: 0s
  rules:
    - id: business-email
      category: data_quality
      points: 20
      when: {field: quality.email_kind, equals: business}
    - id: pricing
      category: behaviour
      points: 20
      when: {events: {type: page, path: /pricing, within: 7d, at_least: 2}}
      reason: "Visited pricing {value} times"
    - id: case-study
      category: behaviour
      points: 25
      when: {events: {type: track, name: Case Study Downloaded, within: 30d}}
"""


@pytest.fixture
def config() -> Config:
    return load_config_text(TEST_CONFIG + RULES, "test.yaml")


def page(anonymous_id: str, path: str, message_id: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {
        "type": "page",
        "anonymousId": anonymous_id,
        "properties": {"url": f"https://www.example.com{path}?utm_source=x"},
    }
    if message_id:
        call["messageId"] = message_id
    return call


async def post_events(client: httpx.AsyncClient, body: Any, **headers: str) -> httpx.Response:
    return await client.post("/v1/events", json=body, headers=headers)


async def test_browsing_before_the_form_counts_once_the_person_submits(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str], db: psycopg.Connection[Row]
) -> None:
    before = await post_events(
        client, {"batch": [page("anon-1", "/pricing", "m1"), page("anon-1", "/pricing", "m2")]}
    )
    again = await post_events(client, page("anon-1", "/pricing", "m1"))  # a retried beacon
    assert before.status_code == 202, before.text
    assert before.json() == {"accepted": 2, "linked": 0}
    assert again.json() == {"accepted": 0, "linked": 0}

    response = await client.post(
        "/v1/forms/contact/submissions",
        json={"email": "ana@acme.de", "_lf_anonymous_id": "anon-1"},
    )
    await drain(app)

    lead = await get(client, auth, response.json()["lead_id"])
    assert (lead["score"], lead["segment"]) == (40, "warm")
    assert [(b["rule"], b["points"], b["value"]) for b in lead["score_breakdown"]] == [
        ("business-email", 20, "business"),
        ("pricing", 20, 2),
    ]
    assert lead["score_breakdown"][1]["reason"] == "Visited pricing 2 times"
    step = next(e for e in lead["timeline"] if e["type"] == "lead.score")["detail"]
    assert step["linked_activity"] == 2
    assert step["action"] == {"followup": "standard", "notify": ["owner"], "to_person": True}

    later = await post_events(
        client,
        {"type": "track", "event": "Case Study Downloaded", "anonymousId": "anon-1"},
    )
    assert later.json() == {"accepted": 1, "linked": 1}
    await drain(app)

    lead = await get(client, auth, lead["id"])
    assert (lead["score"], lead["segment"]) == (65, "hot")
    rescored = next(e for e in lead["timeline"] if e["type"] == "lead.rescored")["detail"]
    assert (rescored["previous_score"], rescored["score"], rescored["why"]) == (40, 65, "behaviour")
    changed = next(e for e in lead["timeline"] if e["type"] == "lead.segment_changed")["detail"]
    assert (changed["from"], changed["to"]) == ("warm", "hot")
    assert changed["action"]["followup"] == "fast-track"


async def test_only_a_trusted_caller_links_activity_by_email(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str], db: psycopg.Connection[Row]
) -> None:
    response = await client.post("/v1/forms/contact/submissions", json={"email": "ben@acme.de"})
    await drain(app)
    lead_id = response.json()["lead_id"]
    download = {
        "type": "track",
        "event": "Case Study Downloaded",
        "userId": "ben@acme.de",
        "traits": {"email": "ben@acme.de"},
    }

    stranger = await post_events(client, download)
    trusted = await post_events(client, download, Authorization=auth["Authorization"])
    await drain(app)

    assert stranger.json() == {"accepted": 1, "linked": 0}
    assert trusted.json() == {"accepted": 1, "linked": 1}
    lead = await get(client, auth, lead_id)
    assert lead["score"] == 45  # 20 business email + 25 case study, once


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        ({"type": "page"}, "application/json", 422, "give anonymousId or userId"),
        ({"type": "track", "anonymousId": "a"}, "application/json", 422, "needs event"),
        ({"type": "alias", "anonymousId": "a"}, "application/json", 422, "type"),
        (
            {"type": "page", "anonymousId": "a", "properties": {"x": "\u0000"}},
            "text/plain",
            422,
            "NUL",
        ),
        ({"batch": []}, "application/json", 422, "batch"),
        ({"batch": [{"type": "page", "anonymousId": "a"}] * 101}, "application/json", 422, "batch"),
        ({"type": "page", "anonymousId": "a"}, "text/html", 415, "JSON"),
    ],
)
async def test_bad_calls_are_problems_and_store_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: psycopg.Connection[Row],
    body: Any,
    content_type: str,
    status: int,
    field: str,
) -> None:
    import json

    response = await client.post(
        "/v1/events", content=json.dumps(body), headers={"Content-Type": content_type}
    )

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in response.text
    assert db.execute("SELECT count(*) AS n FROM activities").fetchone() == {"n": 0}


async def test_events_from_a_foreign_site_are_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    allowed = await client.post(
        "/v1/events", json=page("a", "/"), headers={"Origin": "https://www.example.com"}
    )
    foreign = await client.post(
        "/v1/events", json=page("a", "/"), headers={"Origin": "https://evil.example"}
    )
    assert allowed.status_code == 202
    assert allowed.headers["access-control-allow-origin"] == "https://www.example.com"
    assert foreign.status_code == 403


async def test_new_rules_rescore_leads_scored_with_the_old_ones(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str], config: Config
) -> None:
    response = await client.post("/v1/forms/contact/submissions", json={"email": "cara@acme.de"})
    await drain(app)
    lead_id = response.json()["lead_id"]
    richer = load_config_text(
        TEST_CONFIG
        + RULES.replace(
            "points: 20\n      when: {field: quality", "points: 35\n      when: {field: quality"
        ),
        "test.yaml",
    )

    async with transaction(app.state.runtime.sessions) as session:
        assert await rescore_outdated(session, richer, limit=100) == 1
    async with transaction(app.state.runtime.sessions) as session:
        assert await rescore_outdated(session, richer, limit=100) == 0  # done: nothing left

    lead = await get(client, auth, lead_id)
    assert (lead["score"], lead["segment"]) == (35, "warm")
    rescored = next(e for e in lead["timeline"] if e["type"] == "lead.rescored")["detail"]
    assert (rescored["previous_score"], rescored["score"], rescored["why"]) == (
        20,
        35,
        "rules changed",
    )
    assert (
        rescored["ruleset_version"]
        != next(e for e in lead["timeline"] if e["type"] == "lead.score")["detail"][
            "ruleset_version"
        ]
    )


async def test_leadflow_rescore_applies_new_rules_now(
    app: FastAPI,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    tmp_path: Path,
    operator_env: None,
) -> None:
    import asyncio

    from typer.testing import CliRunner

    from leadflow.cli import app as cli

    response = await client.post("/v1/forms/contact/submissions", json={"email": "dan@acme.de"})
    await drain(app)
    changed = tmp_path / "leadflow.yaml"
    changed.write_text(TEST_CONFIG + RULES.replace("warm: 30, hot: 60", "warm: 10, hot: 60"))

    result = await asyncio.to_thread(CliRunner().invoke, cli, ["rescore", "--config", str(changed)])

    assert result.exit_code == 0, result.output
    assert "Re-scored 1 lead(s) with rules" in result.output
    lead = await get(client, auth, response.json()["lead_id"])
    assert (lead["score"], lead["segment"]) == (20, "warm")  # was cold under the old thresholds
    assert "lead.segment_changed" in [e["type"] for e in lead["timeline"]]
