"""What a submission's answer tells: the lead's id and where to read it, and the reference
the hosted thank-you page shows the visitor."""

from __future__ import annotations

import re

import httpx

from tests.factories import inputs, submissions_url

HTML = {"Accept": "text/html,application/xhtml+xml"}


async def test_the_answer_links_to_the_lead_in_the_admin_api(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post(
        submissions_url(), json=inputs(email="lina@acme.de"), headers={"Idempotency-Key": "k-1"}
    )
    again = await client.post(
        submissions_url(), json=inputs(email="lina@acme.de"), headers={"Idempotency-Key": "k-1"}
    )

    assert response.status_code == 202
    body = response.json()
    assert body["lead_url"] == f"/v1/leads/{body['lead_id']}"
    assert again.json() == body  # a replay names the same lead, and the same link
    anonymous = await client.get(body["lead_url"])
    lead = await client.get(body["lead_url"], headers=auth)
    assert anonymous.status_code == 401
    assert lead.status_code == 200
    assert lead.json()["id"] == body["lead_id"]
    assert lead.json()["email"] == "lina@acme.de"


async def test_the_openapi_document_describes_the_answer(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    answer = spec["paths"]["/v1/forms/{form_key}/submissions"]["post"]["responses"]["202"]
    ref = answer["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    schema = spec["components"]["schemas"][ref]

    assert set(schema["required"]) == {"lead_id", "submission_id", "status", "lead_url"}
    assert "GET /v1/leads/{lead_id}" in schema["properties"]["lead_url"]["description"]


async def test_the_hosted_thank_you_page_shows_the_lead_id_as_a_reference(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    posted = await client.post(submissions_url("open"), data={"Mail": "vic@acme.de"}, headers=HTML)

    assert posted.status_code == 303
    location = posted.headers["location"]
    assert re.fullmatch(r"/f/open/thanks\?ref=[0-9a-f-]{36}", location), location
    thanks = await client.get(location)
    assert thanks.status_code == 200
    [reference] = re.findall(r'<code id="reference">([^<]+)</code>', thanks.text)
    lead = await client.get(f"/v1/leads/{reference}", headers=auth)
    assert lead.status_code == 200
    assert lead.json()["email"] == "vic@acme.de"


async def test_a_thank_you_page_shows_no_reference_but_a_lead_id(
    client: httpx.AsyncClient,
) -> None:
    for query in ("", "?ref=", "?ref=<script>alert(1)</script>", "?ref=not-a-lead"):
        page = await client.get(f"/f/open/thanks{query}")

        assert page.status_code == 200
        assert "Thank you" in page.text
        assert "Your reference" not in page.text
        assert "<script>alert" not in page.text


async def test_another_sites_thank_you_page_is_sent_nothing_more(
    client: httpx.AsyncClient,
) -> None:
    posted = await client.post(submissions_url(), data={"email": "o@acme.de"}, headers=HTML)

    assert posted.headers["location"] == "https://www.example.com/thanks"
