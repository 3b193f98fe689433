"""The pages for people: the landing page, the API docs and the HTML 404, as a browser sees them."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from leadflow import __version__
from leadflow.app import create_app
from leadflow.config import Config
from leadflow.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.factories import submit

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
async def own_token_client(
    tmp_path: Path, config: Config, database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """An instance as `leadflow serve` runs with no LEADFLOW_ADMIN_TOKEN: its token is
    generated and kept in data_dir/admin-token."""
    application: FastAPI = create_app(
        Settings(data_dir=tmp_path, config=None), config=config, database_url=database_url
    )
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def _links(page: str) -> set[str]:
    return set(re.findall(r'<a href="([^"]+)"', page))


async def test_the_landing_page_says_what_this_is_and_where_to_go(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/", headers=BROWSER)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert f"Leadflow {__version__}" in page
    assert 'Health: <span class="ok">ready</span>' in page
    assert 'database <span class="ok">ok</span>' in page
    assert {"/f/contact", "/f/open", "/docs", "/redoc", "/v1/status", "/readyz"} <= _links(page)
    assert "Contact sales" in page  # the form's title
    assert "given in <code>LEADFLOW_ADMIN_TOKEN</code>" in page
    assert 'curl -H "Authorization: Bearer $TOKEN" http://testserver/v1/leads/LEAD_ID' in page
    assert "leadflow leads show LEAD_ID" in page
    assert "leadflow leads list" in page
    assert ADMIN_TOKEN not in page
    assert "https://" not in page.replace("https://leadflow", "")  # nothing from elsewhere


async def test_the_landing_page_names_the_token_file_but_shows_no_token_nor_lead(
    own_token_client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await submit(own_token_client, email="secret.person@acme.de", full_name="Sina Secret")

    page = (await own_token_client.get("/", headers=BROWSER)).text

    token_file = tmp_path / "admin-token"
    token = token_file.read_text().strip()
    assert f"keeps it in\n<code>{token_file.resolve()}</code>" in page
    assert f"TOKEN=$(cat {token_file.resolve()})" in page
    assert token not in page
    assert "secret.person" not in page
    assert "Sina" not in page


async def test_a_browser_gets_an_html_404_that_leads_back_home(client: httpx.AsyncClient) -> None:
    dashboard = await client.get("/dashboard", headers=BROWSER)
    no_form = await client.get("/f/nope", headers=BROWSER)

    assert dashboard.status_code == 404
    assert dashboard.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in dashboard.text
    assert "<code>/dashboard</code>" in dashboard.text
    assert "/" in _links(dashboard.text)
    assert no_form.status_code == 404
    assert no_form.headers["content-type"].startswith("text/html")
    assert "There is no form &#39;nope&#39;." in no_form.text


@pytest.mark.parametrize(
    "accept",
    [None, "*/*", "application/json", "application/problem+json", "application/json, text/html"],
)
async def test_an_api_client_keeps_getting_problem_json_404s(
    client: httpx.AsyncClient, accept: str | None
) -> None:
    headers = {"Accept": accept} if accept else {}
    if accept is None:
        client.headers.pop("Accept", None)
    for path in ("/dashboard", "/v1/nope", "/f/nope"):
        response = await client.get(path, headers=headers)

        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == 404
        assert problem["instance"] == path


async def test_the_api_docs_load_only_files_of_this_server(client: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc"):
        response = await client.get(path, headers=BROWSER)

        assert response.status_code == 200
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        assert assets
        assert all(asset.startswith("/static/vendor/") for asset in assets), assets
        for asset in assets:
            assert (await client.get(asset)).status_code == 200, asset
    swagger = (await client.get("/docs")).text
    assert '"validatorUrl": null' in swagger
    assert "url: '/openapi.json'" in swagger


async def test_the_pages_for_people_stay_out_of_the_openapi_document(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    assert not {"/", "/docs", "/redoc", "/docs/oauth2-redirect"} & set(paths)


async def test_every_reference_of_the_openapi_document_resolves(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    refs = re.findall(r'"\$ref": "([^"]+)"', json.dumps(spec))

    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[-1] in spec["components"]["schemas"], ref
