"""Whatever people and the pipeline do to leads, each has one owner or one queue, and its reason."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from leadflow.analysis.importer import import_rows, plan_import
from leadflow.config import Config, load_config_text
from leadflow.models.lead import PAST_ROUTING
from tests.conftest import TEST_CONFIG
from tests.pipeline.conftest import drain

Row = dict[str, Any]
PEOPLE = 3
CONFIG = TEST_CONFIG.replace(
    "  - {email: ana@example.com, timezone: Europe/Berlin, regions: [EMEA]}\n",
    "  - {email: ana@example.com, timezone: Europe/Berlin, regions: [EMEA]}\n"
    "  - {email: luca@example.com, max_per_day: 2}\n"
    "teams: {sales: {members: [ana@example.com, luca@example.com]}}\n",
).replace(
    "    - {id: everyone, to: {owner: ana@example.com}}",
    "    - {id: later, when: {field: company, equals: Later}, to: {queue: nurture}}\n"
    "    - {id: capped, when: {field: company, equals: Capped}, to: {owner: luca@example.com}}\n"
    "    - {id: sales, to: {team: sales}}",
)

person = st.integers(0, PEOPLE - 1)
lead_index = st.integers(0, 20)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), person, st.sampled_from(["Later", "Capped", "Acme"])),
        st.tuples(
            st.just("import"),
            person,
            st.sampled_from(["", "luca@example.com", "ana@example.com", "rep@example.com"]),
        ),
        st.tuples(st.just("route")),
        st.tuples(st.just("merge"), lead_index, lead_index),
        st.tuples(st.just("unmerge"), lead_index),
        st.tuples(st.just("assign"), lead_index, st.sampled_from(["luca@example.com", "triage"])),
    ),
    min_size=1,
    max_size=8,
)


@pytest.fixture
def config() -> Config:
    return load_config_text(CONFIG, "test.yaml")


def broken(db: psycopg.Connection[Row]) -> list[Row]:
    """The leads with both an owner and a queue, with neither once routed, or whose
    reason names another owner or queue than theirs."""
    rows = db.execute("SELECT id, status, owner, queue, routing_reason FROM leads").fetchall()
    wrong = []
    for row in rows:
        both = row["owner"] is not None and row["queue"] is not None
        neither = row["owner"] is None and row["queue"] is None
        reason = row["routing_reason"] or {}
        disagrees = not neither and (reason.get("owner"), reason.get("queue")) != (
            row["owner"],
            row["queue"],
        )
        if both or disagrees or (neither and row["status"] in PAST_ROUTING):
            wrong.append(row)
    return wrong


async def run(
    step: tuple[Any, ...],
    app: FastAPI,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    db: psycopg.Connection[Row],
    config: Config,
    n: int,
) -> None:
    kind = step[0]
    ids = [r["id"] for r in db.execute("SELECT id FROM leads ORDER BY created_at, id")]
    if kind == "submit":
        # A new message each time: a new submission, merged into the person's lead.
        body = {"email": f"p{step[1]}@acme.de", "org": step[2], "msg": f"visit {n}"}
        response = await client.post("/v1/forms/contact/submissions", json=body)
        assert response.status_code == 202, response.text
    elif kind == "import":
        row = {"email": f"p{step[1]}@acme.de", "owner": step[2]}
        columns = plan_import(list(row), [], accounts=False)
        await import_rows(app.state.runtime.sessions, config, [row], columns, source="c.csv")
    elif kind == "route":
        await drain(app)
    elif ids and kind == "merge":
        lead, into = ids[step[1] % len(ids)], ids[step[2] % len(ids)]
        response = await client.post(
            f"/v1/leads/{lead}/merge", json={"into": str(into)}, headers=auth
        )
        assert response.status_code in (200, 409, 422), response.text
    elif ids and kind == "unmerge":
        lead = ids[step[1] % len(ids)]
        response = await client.post(f"/v1/leads/{lead}/unmerge", headers=auth)
        assert response.status_code in (200, 409), response.text
    elif ids and kind == "assign":
        target = {"queue": step[2]} if step[2] == "triage" else {"owner": step[2]}
        response = await client.post(
            f"/v1/leads/{ids[step[1] % len(ids)]}/assign",
            json={**target, "reason": "a person knows better"},
            headers=auth,
        )
        assert response.status_code == 200, response.text


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps)
@example([("submit", 0, "Later"), ("route",), ("import", 0, "luca@example.com")])  # the bug
async def test_single_ownership_holds_through_any_sequence(
    app: FastAPI,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    db: psycopg.Connection[Row],
    config: Config,
    sequence: list[tuple[Any, ...]],
) -> None:
    db.execute(
        "TRUNCATE leads, submissions, lead_events, consent_records, lead_match_keys, "
        "lead_matches, assignments, routing_turns, procrastinate_jobs CASCADE"
    )
    for n, step in enumerate(sequence):
        await run(step, app, client, auth, db, config, n)
        assert broken(db) == [], f"after {step}"
    await drain(app)
    assert broken(db) == []
