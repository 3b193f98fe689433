"""A person in a real browser (Debian's Chromium, headless): the API docs render from this
server alone, and the landing page leads to the demo form, whose thank-you page names the
lead that the admin API then shows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import CHROMIUM_ARGS, DEMO_TOKEN

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route


class OnlyLocal:
    """Lets through requests to 127.0.0.1 and refuses, and remembers, every other one."""

    def __init__(self) -> None:
        self.local: list[str] = []
        self.elsewhere: list[str] = []

    def __call__(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            self.local.append(url)
            route.continue_()
        else:
            self.elsewhere.append(url)
            route.abort()


@dataclass
class Visit:
    """A browser page whose requests to anywhere but 127.0.0.1 are refused and recorded."""

    page: Page
    requests: OnlyLocal = field(default_factory=OnlyLocal)


@pytest.fixture
def visit(chromium: str) -> Iterator[Visit]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            opened = Visit(browser.new_page())
            opened.page.route("**/*", opened.requests)
            yield opened
        finally:
            browser.close()


@pytest.mark.slow
def test_the_api_docs_render_with_nothing_from_elsewhere(
    visit: Visit, demo_server: str, tmp_path: Path
) -> None:
    page, requests = visit.page, visit.requests
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)

    page.goto(f"{demo_server}/docs")
    intake = page.locator(".opblock-post .opblock-summary-path").filter(
        has_text="/v1/forms/{form_key}/submissions"
    )
    intake.wait_for(timeout=20_000)
    page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
    swagger_refused = list(refused)
    page.goto(f"{demo_server}/redoc")
    page.get_by_role("heading", name="Submit a form").wait_for(timeout=20_000)
    page.screenshot(path=str(tmp_path / "redoc.png"), full_page=False)

    assert requests.elsewhere == []
    assert swagger_refused == []  # Swagger UI does not even try to load anything else
    assert f"{demo_server}/static/vendor/swagger-ui/swagger-ui-bundle.js" in requests.local
    assert f"{demo_server}/static/vendor/redoc/redoc.standalone.js" in requests.local
    assert f"{demo_server}/openapi.json" in requests.local


@pytest.mark.slow
def test_from_the_landing_page_to_a_lead_the_admin_api_shows(
    visit: Visit, demo_server: str, tmp_path: Path
) -> None:
    page, requests = visit.page, visit.requests

    page.goto(f"{demo_server}/")
    assert page.locator("#health .ok").first.inner_text() == "ready"
    assert DEMO_TOKEN not in page.content()
    page.screenshot(path=str(tmp_path / "landing.png"), full_page=True)
    page.get_by_role("link", name="Talk to sales").click()
    page.wait_for_url("**/f/demo")
    page.fill("#f-email", "ines.moreau@example.fr")
    page.fill("#f-name", "Ines Moreau")
    page.wait_for_timeout(2500)  # people take longer than the 2 s spam guard
    page.click("button[type=submit]")
    page.wait_for_url("**/f/demo/thanks?ref=*")
    reference = page.locator("#reference").inner_text()
    page.screenshot(path=str(tmp_path / "thanks.png"))

    assert "Your reference" in page.content()
    assert re.fullmatch(r"[0-9a-f-]{36}", reference)
    assert requests.elsewhere == []
    headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
    lead = httpx.get(f"{demo_server}/v1/leads/{reference}", headers=headers)
    assert lead.status_code == 200
    assert lead.json()["email"] == "ines.moreau@example.fr"
    assert (lead.json()["first_name"], lead.json()["last_name"]) == ("Ines", "Moreau")
    assert httpx.get(f"{demo_server}/v1/leads/{reference}").status_code == 401
