"""A person fills in the demo form in a real browser (Debian's Chromium, headless).

This exercises the hosted form and the leadflow.js snippet together: the
snippet must carry the campaign of the landing URL, the first and last touch,
the render time and the UTC offset into the lead.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import CHROMIUM_ARGS, DEMO_TOKEN


@pytest.mark.slow
def test_a_person_submits_the_demo_form_in_a_browser(
    chromium: str, demo_server: str, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(timezone_id="Europe/Berlin", locale="de-DE")
        page.goto(f"{demo_server}/f/demo?utm_source=newsletter&utm_campaign=launch")
        page.fill("#f-email", "petra.klein@example.de")
        page.fill("#f-name", "Petra Klein")
        page.fill("#f-org", "Klein & Partner")
        page.fill("#f-tel", "+49 30 901820")
        page.fill("#f-msg", "Please call me about pricing.")
        page.check("input[name=consent_marketing_email]")
        page.wait_for_timeout(2500)  # people take longer than the 2 s spam guard
        page.screenshot(path=str(tmp_path / "form.png"))
        page.click("button[type=submit]")
        page.wait_for_url("**/f/demo/thanks?ref=*")
        assert "Thank you" in page.content()
        browser.close()

    headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
    items = httpx.get(f"{demo_server}/v1/leads", headers=headers).json()["items"]
    assert len(items) == 1
    lead = httpx.get(f"{demo_server}/v1/leads/{items[0]['id']}", headers=headers).json()
    assert (lead["email"], lead["first_name"], lead["last_name"]) == (
        "petra.klein@example.de",
        "Petra",
        "Klein",
    )
    assert lead["company"] == "Klein & Partner"
    assert lead["status"] != "quarantined"
    assert lead["source"]["utm_source"] == "newsletter"
    assert lead["source"]["utm_campaign"] == "launch"
    assert lead["source"]["landing_url"].endswith(
        "/f/demo?utm_source=newsletter&utm_campaign=launch"
    )
    assert lead["source"]["first_touch"]["utm_source"] == "newsletter"
    assert lead["client_tz_offset_minutes"] in (60, 120)  # Berlin, winter or summer
    assert [c["purpose"] for c in lead["consent"]] == ["marketing_email"]
