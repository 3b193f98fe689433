"""Shared fixtures: a real PostgreSQL for the whole run, an app and a client per test.

The database is the machine's server when LEADFLOW_TEST_DATABASE_URL is set (a
fresh database is created in it and dropped at the end), else a throwaway
embedded PostgreSQL (pgserver) in a temporary folder. Never a substitute.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from psycopg.rows import dict_row
from sqlalchemy.engine import make_url

from leadflow import migrate
from leadflow.app import create_app
from leadflow.config import Config, load_config_text
from leadflow.settings import Settings, get_settings
from tests.receivers import Receiver, running_receiver

ADMIN_TOKEN = "test-admin-token"
CLIENT_IP = "203.0.113.7"

TEST_CONFIG = """
intake:
  rate_limits: {per_ip: 10000/minute, per_form: 10000/minute}
forms:
  contact:
    title: Contact sales
    fields: {name: full_name, org: company, tel: phone, msg: message}
    required: [email]
    default_region: DE
    allowed_origins: [https://www.example.com]
    thank_you_url: https://www.example.com/thanks
    min_fill_seconds: 2
    consent:
      - purpose: marketing_email
        text: Send me product news. I can unsubscribe at any time.
        policy_version: "2026-01"
      - purpose: terms
        text: I accept the terms.
        policy_version: "v3"
        required: false
  open:
    fields: {Mail: email}
owners:
  - {email: ana@example.com, timezone: Europe/Berlin, regions: [EMEA]}
routing:
  rules:
    - {id: everyone, to: {owner: ana@example.com}}
"""


def _create_database(base_url: str) -> str:
    name = f"leadflow_test_{uuid.uuid4().hex[:10]}"
    admin = make_url(base_url)
    with psycopg.connect(
        admin.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.set(database=name).render_as_string(hide_password=False)


def _drop_database(base_url: str, url: str) -> None:
    name = make_url(url).database
    admin = make_url(base_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A PostgreSQL server URL that tests may create databases in."""
    configured = os.environ.get("LEADFLOW_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    import pgserver

    # Outside pytest's own temporary tree: another pytest session re-locks that
    # tree to its owner, and the server runs as its own system user when root.
    folder = Path(tempfile.mkdtemp(prefix="leadflow-test-pg-"))
    server = pgserver.get_server(folder, cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A migrated database of our own for the whole run."""
    url = _create_database(server_url)
    migrate.upgrade(url)
    yield url
    _drop_database(server_url, url)


@pytest.fixture
def fresh_database(server_url: str) -> Iterator[str]:
    """A migrated database of its own, for tests that run real server processes."""
    url = _create_database(server_url)
    migrate.upgrade(url)
    yield url
    _drop_database(server_url, url)


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A plain connection for looking at what the service stored."""
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "database_url" in request.fixturenames:
        url = request.getfixturevalue("database_url")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "TRUNCATE leads, submissions, lead_events, consent_records, job_attempts, "
                "lead_match_keys, lead_matches, accounts, activities, assignments, routing_turns, "
                "owner_absences, worker_heartbeats, "
                "procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers CASCADE"
            )


@pytest.fixture
def redis_url() -> str:
    """The machine's Redis (LEADFLOW_TEST_REDIS_URL); without one the test is skipped, or
    fails where LEADFLOW_TEST_REQUIRE_REDIS says Redis tests must run (CI)."""
    url = os.environ.get("LEADFLOW_TEST_REDIS_URL")
    if not url:
        if os.environ.get("LEADFLOW_TEST_REQUIRE_REDIS"):
            pytest.fail("LEADFLOW_TEST_REQUIRE_REDIS is set but LEADFLOW_TEST_REDIS_URL is not")
        pytest.skip("no Redis configured (LEADFLOW_TEST_REDIS_URL)")
    return url


@pytest.fixture
def config() -> Config:
    return load_config_text(TEST_CONFIG, "test.yaml")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(admin_token=ADMIN_TOKEN, data_dir=tmp_path, config=None)


@pytest.fixture
async def app(settings: Settings, config: Config, database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(settings, config=config, database_url=database_url)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 51234))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def operator_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    """Commands run by an operator (leadflow dlq, import, rescore) reach the test database."""
    monkeypatch.setenv("LEADFLOW_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


# --- a person in a browser ---------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DEMO_TOKEN = "browser-token"  # the admin token of ``demo_server``
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium, for Playwright (executable_path): it downloads no browser."""
    if CHROMIUM is None:
        if os.environ.get("LEADFLOW_TEST_REQUIRE_BROWSER"):
            pytest.fail("LEADFLOW_TEST_REQUIRE_BROWSER is set but chromium is not installed")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
def demo_server(fresh_database: str, tmp_path: Path) -> Iterator[str]:
    """`leadflow serve` with the built-in demo config, as `make serve` has it; its base URL."""
    from tests.processes import Process, free_port, wait_ready

    port = free_port()
    env = {
        **os.environ,
        "LEADFLOW_DATABASE_URL": fresh_database,
        "LEADFLOW_ADMIN_TOKEN": DEMO_TOKEN,
        "LEADFLOW_DATA_DIR": str(tmp_path),
    }
    env.pop("LEADFLOW_CONFIG", None)
    process = Process(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        yield base
    finally:
        process.stop()


def count(db: psycopg.Connection[dict[str, Any]], table: str) -> int:
    row = db.execute(f"SELECT count(*) AS n FROM {table}").fetchone()
    assert row is not None
    return int(row["n"])


def queued_leads(db: psycopg.Connection[dict[str, Any]]) -> list[str]:
    """The leads whose processing is queued, sorted: one per ``lead.process`` job, and
    every lead of a ``lead.process_batch`` job (one lead queued twice shows twice)."""
    rows = db.execute(
        "SELECT coalesce(args->'lead_ids', jsonb_build_array(args->'lead_id')) AS ids "
        "FROM procrastinate_jobs WHERE task_name IN ('lead.process', 'lead.process_batch')"
    ).fetchall()
    return sorted(lead_id for row in rows for lead_id in row["ids"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local HTTP endpoint (tests/receivers.py) that keeps each JSON body it is sent."""
    with running_receiver() as receiver:
        yield receiver
