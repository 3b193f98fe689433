"""The consent ledger as a person checks it: what each submission agreed to, under which
text and policy version, how, from where and when; never edited, never lost in a merge."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from tests.conftest import CLIENT_IP, count
from tests.consent.conftest import NEWS, TERMS
from tests.factories import lead_view, submissions_url, submit
from tests.pipeline.conftest import drain

Row = dict[str, Any]
TRIAL = submissions_url("trial")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ledger(db: psycopg.Connection[Row], lead_id: str | None = None) -> list[Row]:
    """The ledger's rows (of one lead, or all), oldest first, as an auditor reads them."""
    where, params = ("WHERE lead_id = %s", (lead_id,)) if lead_id else ("", ())
    rows = db.execute(
        "SELECT lead_id::text, submission_id::text, purpose, status, policy_version, text, "
        "text_hash, method, form_key, host(ip) AS ip, user_agent, recorded_at "
        f"FROM consent_records {where} ORDER BY recorded_at, purpose",
        params,
    ).fetchall()
    return rows


def edit(path: Path, *changes: tuple[str, str]) -> None:
    """Change the config file as an operator would in their editor."""
    text = path.read_text(encoding="utf-8")
    for old, new in changes:
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")


async def test_each_ticked_box_is_a_row_with_the_exact_text_shown_and_how_it_was_given(
    client: httpx.AsyncClient, auth: dict[str, str], db: psycopg.Connection[Row]
) -> None:
    response = await client.post(
        TRIAL,
        data={"work_email": "ana@acme.de", "consent_terms": "on", "newsletter": "on"},
        headers={"User-Agent": "Firefox/140"},
    )

    assert response.status_code == 202, response.text
    lead_id, submission_id = response.json()["lead_id"], response.json()["submission_id"]
    received = db.execute(
        "SELECT received_at FROM submissions WHERE id = %s", (submission_id,)
    ).fetchone()
    assert received is not None
    shown = {"ip": CLIENT_IP, "user_agent": "Firefox/140", "recorded_at": received["received_at"]}
    given = {"status": "granted", "method": "web_form_checkbox", "form_key": "trial"}
    mine = {"lead_id": lead_id, "submission_id": submission_id}
    assert ledger(db) == [
        mine
        | given
        | shown
        | {
            "purpose": "marketing_email",
            "policy_version": "2026-01",
            "text": NEWS,
            "text_hash": sha256(NEWS),
        },
        mine
        | given
        | shown
        | {
            "purpose": "terms",
            "policy_version": "tos-2026-02",
            "text": TERMS,
            "text_hash": sha256(TERMS),
        },
    ]

    lead = await lead_view(client, auth, lead_id)
    assert [
        (c["purpose"], c["status"], c["policy_version"], c["text_hash"], c["method"])
        for c in lead["consent"]
    ] == [
        ("marketing_email", "granted", "2026-01", sha256(NEWS), "web_form_checkbox"),
        ("terms", "granted", "tos-2026-02", sha256(TERMS), "web_form_checkbox"),
    ]
    assert {c["form_key"] for c in lead["consent"]} == {"trial"}
    assert {datetime.fromisoformat(c["recorded_at"]) for c in lead["consent"]} == {
        received["received_at"]
    }
    granted = [e["detail"] for e in lead["timeline"] if e["type"] == "consent.granted"]
    assert sorted(granted, key=lambda d: d["purpose"]) == [
        {
            "purpose": "marketing_email",
            "policy_version": "2026-01",
            "text_hash": sha256(NEWS),
            "method": "web_form_checkbox",
        },
        {
            "purpose": "terms",
            "policy_version": "tos-2026-02",
            "text_hash": sha256(TERMS),
            "method": "web_form_checkbox",
        },
    ]


@pytest.mark.parametrize("ticked", ["on", "yes", "true", "1", "checked", True, 1, ["", "on"]])
async def test_what_browsers_and_form_tools_send_for_a_ticked_box_counts(
    client: httpx.AsyncClient, db: psycopg.Connection[Row], ticked: object
) -> None:
    response = await client.post(
        TRIAL, json={"work_email": "ana@acme.de", "consent_terms": "yes", "newsletter": ticked}
    )

    assert response.status_code == 202, response.text
    assert [row["purpose"] for row in ledger(db)] == ["marketing_email", "terms"]


@pytest.mark.parametrize("unticked", [None, "", "no", "off", "false", "0", False, 0, []])
async def test_an_optional_box_left_unticked_records_nothing_for_its_purpose(
    client: httpx.AsyncClient, auth: dict[str, str], db: psycopg.Connection[Row], unticked: object
) -> None:
    payload: Row = {"work_email": "ben@acme.de", "consent_terms": "on"}
    if unticked is not None:
        payload["newsletter"] = unticked
    response = await client.post(TRIAL, json=payload)

    assert response.status_code == 202, response.text
    assert [row["purpose"] for row in ledger(db)] == ["terms"]
    lead = await lead_view(client, auth, response.json()["lead_id"])
    assert [c["purpose"] for c in lead["consent"]] == ["terms"]


@pytest.mark.parametrize("terms", [None, "", "no", False])
async def test_a_required_purpose_not_given_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, db: psycopg.Connection[Row], terms: object
) -> None:
    payload: Row = {"work_email": "cy@acme.de", "newsletter": "on"}
    if terms is not None:
        payload["consent_terms"] = terms
    response = await client.post(TRIAL, json=payload)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {"field": "consent_terms", "reason": "consent to terms is required"}
    ]
    assert count(db, "consent_records") == count(db, "leads") == count(db, "submissions") == 0


async def test_a_form_that_asks_for_no_consent_records_none_and_keeps_the_input(
    client: httpx.AsyncClient, auth: dict[str, str], db: psycopg.Connection[Row]
) -> None:
    response = await client.post(
        submissions_url("plain"),
        json={"work_email": "dee@acme.de", "consent_terms": "on", "newsletter": "yes"},
    )

    assert response.status_code == 202, response.text
    assert count(db, "consent_records") == 0  # a box the form never showed is no consent
    lead = await lead_view(client, auth, response.json()["lead_id"])
    assert lead["consent"] == []
    assert "consent.granted" not in [e["type"] for e in lead["timeline"]]
    extra = db.execute("SELECT extra FROM submissions").fetchone()
    assert extra == {"extra": {"consent_terms": "on", "newsletter": "yes"}}


async def test_a_submission_sent_again_records_its_consent_once(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    payload = {"work_email": "eve@acme.de", "consent_terms": "on"}
    keyed = [
        await client.post(TRIAL, json=payload, headers={"Idempotency-Key": "signup-1"})
        for _ in range(3)
    ]
    unkeyed = [await client.post(TRIAL, json=payload | {"newsletter": "on"}) for _ in range(3)]

    assert {r.status_code for r in keyed + unkeyed} == {202}
    assert [(row["purpose"], row["submission_id"]) for row in ledger(db)] == [
        ("terms", keyed[0].json()["submission_id"]),
        ("marketing_email", unkeyed[0].json()["submission_id"]),
        ("terms", unkeyed[0].json()["submission_id"]),
    ]


async def test_a_new_policy_text_is_recorded_for_new_consent_and_the_old_stays(
    app: FastAPI, client: httpx.AsyncClient, db: psycopg.Connection[Row], config_file: Path
) -> None:
    before = await client.post(TRIAL, json={"work_email": "fay@acme.de", "consent_terms": "on"})
    revised = "I accept the terms of service, including the data processing addendum."
    edit(config_file, (TERMS, revised), ("tos-2026-02", "tos-2026-06"))
    app.state.runtime.reload_config()  # what the running service does when the file changes
    after = await client.post(TRIAL, json={"work_email": "gus@acme.de", "consent_terms": "on"})

    assert [(r["lead_id"], r["policy_version"], r["text"], r["text_hash"]) for r in ledger(db)] == [
        (before.json()["lead_id"], "tos-2026-02", TERMS, sha256(TERMS)),
        (after.json()["lead_id"], "tos-2026-06", revised, sha256(revised)),
    ]


async def test_the_ledger_is_append_only(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    await client.post(TRIAL, json={"work_email": "hal@acme.de", "consent_terms": "on"})
    written = ledger(db)

    for change in (
        "status = 'withdrawn'",
        "text = 'I accept nothing.'",
        "policy_version = 'tos-1999'",
        "recorded_at = recorded_at - interval '1 day'",
        "ip = '198.51.100.1'",
    ):
        with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
            db.execute(f"UPDATE consent_records SET {change}")
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(
            "INSERT INTO consent_records (id, lead_id, purpose, status, policy_version, text, "
            "text_hash, method, recorded_at) SELECT gen_random_uuid(), lead_id, purpose, "
            "'revoked', policy_version, text, text_hash, method, now() FROM consent_records"
        )
    assert ledger(db) == written


async def test_consent_given_on_a_merged_submission_stays_with_the_person(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str], db: psycopg.Connection[Row]
) -> None:
    """Ana signs up without the newsletter, comes back and ticks it (her second lead is
    merged into her first); later a person merges her into the lead of her new address.
    Each time the surviving lead shows every consent she gave, and the rows stay as
    they were written."""
    first = await submit(client, "trial", work_email="ana@acme.de", consent_terms="on")
    await drain(app)
    again = await submit(
        client, "trial", work_email="ana@acme.de", consent_terms="on", newsletter="on"
    )
    await drain(app)
    written = ledger(db)

    assert (await lead_view(client, auth, again))["duplicate_of"] == first
    ana = await lead_view(client, auth, first)
    assert sorted(c["purpose"] for c in ana["consent"]) == ["marketing_email", "terms", "terms"]

    new_address = await submit(client, "trial", work_email="ana@weber.example", consent_terms="1")
    await drain(app)
    merged = await client.post(f"/v1/leads/{first}/merge", json={"into": new_address}, headers=auth)
    assert merged.status_code == 200, merged.text

    survivor = await lead_view(client, auth, new_address)
    assert sorted((c["purpose"], c["policy_version"]) for c in survivor["consent"]) == [
        ("marketing_email", "2026-01"),
        ("terms", "tos-2026-02"),
        ("terms", "tos-2026-02"),
        ("terms", "tos-2026-02"),
    ]
    assert [row for row in ledger(db) if row["lead_id"] != new_address] == written

    undone = await client.post(f"/v1/leads/{first}/unmerge", headers=auth)
    assert undone.status_code == 200, undone.text
    back = await lead_view(client, auth, first)
    assert sorted(c["purpose"] for c in back["consent"]) == ["marketing_email", "terms", "terms"]
    assert [c["purpose"] for c in (await lead_view(client, auth, new_address))["consent"]] == [
        "terms"
    ]
