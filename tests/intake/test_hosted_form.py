"""The hosted form at /f/{form_key} works without any other website, and so does its snippet."""

from __future__ import annotations

import time
from html.parser import HTMLParser
from typing import Any

import httpx
import psycopg


class FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.inputs: dict[str, dict[str, str | None]] = {}
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.action = attributes.get("action") or ""
        elif tag in ("input", "textarea") and attributes.get("name"):
            self.inputs[str(attributes["name"])] = attributes
        elif tag == "script" and attributes.get("src"):
            self.scripts.append(str(attributes["src"]))


async def test_hosted_form_renders_the_configured_inputs_and_posts_back(
    client: httpx.AsyncClient, db: psycopg.Connection[dict[str, Any]]
) -> None:
    page = await client.get("/f/contact")
    assert page.status_code == 200
    assert "Contact sales" in page.text
    assert "Send me product news. I can unsubscribe at any time." in page.text
    reader = FormReader()
    reader.feed(page.text)

    assert reader.action == "/v1/forms/contact/submissions"
    assert {
        "email",
        "name",
        "org",
        "tel",
        "msg",
        "consent_marketing_email",
        "_gotcha",
        "_lf_rendered_at",
    } <= set(reader.inputs)
    assert reader.inputs["email"]["type"] == "email"
    assert "required" in reader.inputs["email"]
    assert reader.inputs["tel"]["type"] == "tel"
    assert reader.scripts == ["/static/leadflow.js"]

    # A person takes a while to fill it in; the render time comes from the page.
    rendered_at = int(str(reader.inputs["_lf_rendered_at"]["value"])) - 15_000
    response = await client.post(
        reader.action,
        data={
            "email": "visitor@acme.de",
            "name": "Vera Visitor",
            "org": "Acme",
            "consent_marketing_email": "yes",
            "_gotcha": "",
            "_lf_rendered_at": str(rendered_at),
        },
        headers={"Accept": "text/html"},
    )

    assert response.status_code == 303
    assert response.headers["location"] == "https://www.example.com/thanks"
    lead = db.execute("SELECT status, first_name, company FROM leads").fetchone()
    assert lead == {"status": "received", "first_name": "Vera", "company": "Acme"}
    assert abs(rendered_at / 1000 - time.time()) < 60


async def test_default_inputs_and_thanks_page(client: httpx.AsyncClient) -> None:
    page = await client.get("/f/open")
    reader = FormReader()
    reader.feed(page.text)
    thanks = await client.get("/f/open/thanks")
    missing = await client.get("/f/nope")

    assert {"Mail"} <= set(reader.inputs)  # the form's own name for email
    assert thanks.status_code == 200
    assert "Thank you" in thanks.text
    assert missing.status_code == 404


async def test_snippet_is_served_as_javascript(client: httpx.AsyncClient) -> None:
    response = await client.get("/static/leadflow.js")

    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    for name in (
        "_lf_fill_ms",
        "_lf_tz_offset",
        "_lf_first_touch",
        "_lf_last_touch",
        "utm_source",
    ):
        assert name in response.text
