"""The public intake endpoint, through the ASGI app, on a real PostgreSQL."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import CLIENT_IP, count
from tests.factories import lead_row, submissions_url

URL = submissions_url()
PERSON = {
    "email": "ana.weber@acme.de",
    "name": "Ana van der Berg",
    "org": "Acme GmbH",
    "tel": "030 1234567",
    "msg": "We need 40 seats.",
    "utm_source": "google",
    "utm_campaign": "spring",
    "favourite_colour": "teal",
}
Row = dict[str, Any]


async def test_json_submission_becomes_a_lead_with_its_first_job(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    response = await client.post(URL, json=PERSON, headers={"User-Agent": "Firefox/140"})

    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"lead_id", "submission_id", "status", "lead_url"}
    assert body["status"] == "received"
    assert body["lead_url"] == f"/v1/leads/{body['lead_id']}"
    lead = lead_row(db, body["lead_id"])
    assert (lead["email"], lead["first_name"], lead["last_name"]) == (
        "ana.weber@acme.de",
        "Ana",
        "van der Berg",
    )
    assert (lead["company"], lead["phone"], lead["message"]) == (
        "Acme GmbH",
        "030 1234567",
        "We need 40 seats.",
    )
    assert (lead["utm_source"], lead["utm_campaign"], lead["status"]) == (
        "google",
        "spring",
        "received",
    )
    assert lead["submitted_at"] is not None
    submission = db.execute(
        "SELECT * FROM submissions WHERE id = %s", (body["submission_id"],)
    ).fetchone()
    assert submission is not None
    assert submission["raw_payload"] == PERSON  # kept exactly as it came
    assert submission["extra"] == {"favourite_colour": "teal"}  # unknown fields are not dropped
    assert str(submission["ip"]) == CLIENT_IP
    assert submission["user_agent"] == "Firefox/140"
    jobs = db.execute("SELECT task_name, args, status FROM procrastinate_jobs").fetchall()
    assert jobs == [
        {"task_name": "lead.process", "args": {"lead_id": body["lead_id"]}, "status": "todo"}
    ]


async def test_urlencoded_and_multipart_are_read_like_json(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    form = await client.post(URL, data={"email": "form@acme.de", "name": "Form Person"})
    multipart = await client.post(
        URL,
        data={"email": "multi@acme.de", "org": "Multi AG", "interests": ["a", "b"]},
        files={"cv": ("cv.pdf", b"%PDF-1.4 tiny", "application/pdf")},
    )

    assert form.status_code == multipart.status_code == 202
    assert lead_row(db, form.json()["lead_id"])["first_name"] == "Form"
    lead = lead_row(db, multipart.json()["lead_id"])
    assert lead["company"] == "Multi AG"
    raw = db.execute(
        "SELECT raw_payload FROM submissions WHERE lead_id = %s", (multipart.json()["lead_id"],)
    ).fetchone()
    assert raw is not None
    assert raw["raw_payload"]["interests"] == ["a", "b"]
    assert raw["raw_payload"]["cv"] == {
        "filename": "cv.pdf",
        "content_type": "application/pdf",
        "size": 13,
    }


async def test_source_and_timing_are_captured(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    first = {
        "utm_source": "linkedin",
        "landing_url": "https://www.example.com/?utm_source=linkedin",
        "at": "2026-11-01T10:00:00Z",
    }
    payload = {
        "email": "src@acme.de",
        "landing_url": "https://www.example.com/pricing?utm_source=newsletter&utm_medium=email&gclid=abc",
        "referrer": "https://mail.example.org/",
        "_lf_first_touch": json.dumps(first),
        "_lf_tz_offset": "60",
        "_lf_rendered_at": str(int(time.time() * 1000) - 30_000),
    }
    response = await client.post(URL, json=payload)

    lead = lead_row(db, response.json()["lead_id"])
    assert (lead["utm_source"], lead["utm_medium"], lead["gclid"]) == ("newsletter", "email", "abc")
    assert lead["referrer"] == "https://mail.example.org/"
    assert lead["client_tz_offset_minutes"] == 60
    assert lead["first_touch"]["utm_source"] == "linkedin"
    assert lead["last_touch"]["utm_source"] == "newsletter"
    assert lead["status"] == "received"


async def test_html_form_post_is_redirected_to_the_thank_you_page(
    client: httpx.AsyncClient,
) -> None:
    html = {"Accept": "text/html,application/xhtml+xml"}
    plain = await client.post(URL, data={"email": "a@acme.de"}, headers=html)
    allowed = await client.post(
        URL, data={"email": "b@acme.de", "_next": "https://www.example.com/welcome"}, headers=html
    )
    foreign = await client.post(
        URL, data={"email": "c@acme.de", "_next": "https://evil.example.net/phish"}, headers=html
    )

    assert plain.status_code == 303
    assert plain.headers["location"] == "https://www.example.com/thanks"
    assert allowed.headers["location"] == "https://www.example.com/welcome"
    assert foreign.headers["location"] == "https://www.example.com/thanks"  # no open redirect


async def test_cors_follows_the_forms_allowed_origins(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    preflight = await client.options(
        URL,
        headers={"Origin": "https://www.example.com", "Access-Control-Request-Method": "POST"},
    )
    allowed = await client.post(
        URL, json={"email": "cors@acme.de"}, headers={"Origin": "https://www.example.com"}
    )
    refused = await client.post(
        URL, json={"email": "x@acme.de"}, headers={"Origin": "https://other.example.net"}
    )

    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://www.example.com"
    assert "Idempotency-Key" in preflight.headers["access-control-allow-headers"]
    assert allowed.status_code == 202
    assert allowed.headers["access-control-allow-origin"] == "https://www.example.com"
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert count(db, "leads") == 1


async def test_consent_ticked_on_the_form_is_recorded_in_the_ledger(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    response = await client.post(
        URL,
        data={"email": "consent@acme.de", "consent_marketing_email": "on"},
        headers={"User-Agent": "Safari/18"},
    )

    records = db.execute(
        "SELECT purpose, status, policy_version, text, text_hash, method, "
        "host(ip) AS ip, user_agent FROM consent_records WHERE lead_id = %s",
        (response.json()["lead_id"],),
    ).fetchall()
    import hashlib

    text = "Send me product news. I can unsubscribe at any time."
    assert records == [
        {
            "purpose": "marketing_email",
            "status": "granted",
            "policy_version": "2026-01",
            "text": text,
            "text_hash": hashlib.sha256(text.encode()).hexdigest(),
            "method": "web_form_checkbox",
            "ip": CLIENT_IP,
            "user_agent": "Safari/18",
        }
    ]  # the unticked "terms" box records nothing


@pytest.mark.parametrize(
    "honeypot_or_timing",
    [{"_gotcha": "http://spam.example"}, {"_lf_rendered_at": "now"}],
    ids=["honeypot", "filled-too-fast"],
)
async def test_bots_are_answered_like_people_and_quarantined(
    client: httpx.AsyncClient, db: psycopg.Connection[Row], honeypot_or_timing: dict[str, str]
) -> None:
    if honeypot_or_timing.get("_lf_rendered_at") == "now":
        honeypot_or_timing = {"_lf_rendered_at": str(int(time.time() * 1000))}
    human = await client.post(URL, json={"email": "human@acme.de"})
    bot = await client.post(URL, json={"email": "bot@acme.de", **honeypot_or_timing})

    assert bot.status_code == human.status_code == 202
    assert set(bot.json()) == set(human.json())
    assert bot.json()["status"] == human.json()["status"]
    lead = lead_row(db, bot.json()["lead_id"])
    assert lead["status"] == "quarantined"
    events = db.execute(
        "SELECT type, detail FROM lead_events WHERE lead_id = %s ORDER BY id", (lead["id"],)
    ).fetchall()
    assert [e["type"] for e in events] == ["received", "quarantined"]
    assert events[1]["detail"]["reasons"]
    # never routed: only the human's lead has a job
    jobs = db.execute("SELECT args FROM procrastinate_jobs").fetchall()
    assert jobs == [{"args": {"lead_id": human.json()["lead_id"]}}]


def assert_problem(response: httpx.Response, status: int, *, mentions: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert mentions.lower() in (body["detail"] + json.dumps(body.get("errors", []))).lower()


async def test_bad_input_gets_a_problem_and_stores_nothing(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    json_type = {"Content-Type": "application/json"}
    cases = [
        (await client.post(URL, content=b"{not json", headers=json_type), 400, "not valid JSON"),
        (await client.post(URL, content=b"[1, 2]", headers=json_type), 400, "must be an object"),
        (
            await client.post(URL, content=b"email=a@b.de", headers={"Content-Type": "text/plain"}),
            415,
            "text/plain",
        ),
        (await client.post(URL, content=b"email=a@b.de"), 415, "Content-Type"),
        (await client.post(submissions_url("nope"), json=PERSON), 404, "nope"),
        (await client.post(URL, json={"name": "No Contact"}), 422, "email"),
        (await client.post(URL, json={"email": "not-an-address", "tel": "call me"}), 422, "phone"),
        (await client.post(URL, json={"email": "a@acme.de", "org": "x" * 256}), 422, "org"),
        (
            await client.post(URL, json={"email": "a@acme.de", "org": {"nested": 1}}),
            422,
            "single value",
        ),
        (await client.post(URL, json={"email": "a@acme.de", "note": "nul\x00byte"}), 422, "NUL"),
        (
            await client.post(
                URL, content=b'{"email": "a@acme.de", "x": "\\ud800"}', headers=json_type
            ),
            422,
            "unicode",
        ),
        (
            await client.post(
                URL, json={"email": "a@acme.de"}, headers={"Idempotency-Key": "x" * 256}
            ),
            422,
            "Idempotency-Key",
        ),
        (
            await client.post(
                URL, content=b"{" + b'"a":"' + b"x" * 300_000 + b'"}', headers=json_type
            ),
            413,
            "bytes",
        ),
    ]
    for response, status, mentions in cases:
        assert_problem(response, status, mentions=mentions)
    assert count(db, "leads") == count(db, "submissions") == count(db, "procrastinate_jobs") == 0


async def test_odd_control_and_source_values_are_ignored_not_fatal(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    response = await client.post(
        URL,
        json={
            "email": "odd@acme.de",
            "_lf_rendered_at": "1e999",
            "_lf_tz_offset": 10**40,
            "_lf_last_touch": json.dumps({"utm_source": "x\u0000y"}),
            "_lf_first_touch": "[" * 5000,
            "landing_url": "https://www.example.com/?utm_source=%00evil&utm_medium=email"
            + "&x="
            + "y" * 3000,
        },
    )

    assert response.status_code == 202, response.text
    lead = lead_row(db, response.json()["lead_id"])
    assert lead["utm_source"] is None  # the NUL value was dropped
    assert lead["utm_medium"] == "email"
    assert len(lead["landing_url"]) == 2048  # attribution is cut, never a reason to refuse
    assert lead["client_tz_offset_minutes"] is None
    assert lead["status"] == "received"


async def test_a_fast_clock_on_the_visitors_computer_is_not_spam(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    three_minutes_ahead = str(int(time.time() * 1000) + 180_000)
    measured = await client.post(
        URL,
        json={
            "email": "clock@acme.de",
            "_lf_rendered_at": three_minutes_ahead,
            "_lf_fill_ms": "40000",
        },
    )
    unmeasured = await client.post(
        URL, json={"email": "clock2@acme.de", "_lf_rendered_at": three_minutes_ahead}
    )

    assert lead_row(db, measured.json()["lead_id"])["status"] == "received"
    assert lead_row(db, unmeasured.json()["lead_id"])["status"] == "received"


async def test_a_good_email_carries_a_mistyped_phone(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    response = await client.post(URL, json={"email": "ok@acme.de", "tel": "call me"})

    assert response.status_code == 202
    assert lead_row(db, response.json()["lead_id"])["phone"] == "call me"


async def test_a_phone_alone_is_enough(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    response = await client.post(submissions_url("open"), json={"phone": "+49 30 1234567"})

    assert response.status_code == 202
    assert lead_row(db, response.json()["lead_id"])["phone"] == "+49 30 1234567"


async def test_form_field_names_are_matched_without_regard_to_case(
    client: httpx.AsyncClient, db: psycopg.Connection[Row]
) -> None:
    response = await client.post(
        submissions_url("open"), json={"MAIL": "case@acme.de", "Company": "Case Inc"}
    )

    lead = lead_row(db, response.json()["lead_id"])
    assert (lead["email"], lead["company"]) == ("case@acme.de", "Case Inc")
