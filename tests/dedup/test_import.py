"""leadflow import: existing contacts and accounts, deduplicated on the way in."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner, Result

from leadflow.cli import app as cli
from tests.dedup.test_dedup_step import get, submit
from tests.pipeline.conftest import drain

runner = CliRunner()
Row = dict[str, Any]


async def leadflow(*args: str) -> Result:
    return await asyncio.to_thread(runner.invoke, cli, list(args))


def write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


async def test_contacts_are_imported_once_and_known_people_merged(
    app: FastAPI,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    db: psycopg.Connection[Row],
    tmp_path: Path,
    operator_env: None,
) -> None:
    known = await submit(client, email="ana.weber@acme.de", name="Ana Weber")
    await drain(app)
    contacts = write(
        tmp_path / "contacts.csv",
        [
            ["Email", "First Name", "Surname", "Account", "Contact Owner", "Notes"],
            ["ana.weber@acme.de", "Ana", "Weber", "Acme", "rep@example.com", ""],
            ["bob@globex.com", "Bob", "Stone", "Globex", "rep2@example.com", "x"],
            ["BOB@globex.com", "Bob", "Stone", "Globex Inc", "", ""],
            ["", "", "", "", "", "nobody"],
            ["carla@initech.com", "C" * 300, "Diaz", "Initech", "", ""],
        ],
    )

    result = await leadflow("import", str(contacts))

    assert result.exit_code == 0, result.output
    assert "5 rows: 1 new contacts, 2 merged into known leads, 0 linked for review, 2 skipped" in (
        result.output
    )
    assert f"{contacts}: line 5: nothing to know it by (needs an email, a phone" in result.output
    assert f"{contacts}: line 6: first_name is longer than 255 characters" in result.output
    assert "Notes" not in result.output.split("Columns:")[1].splitlines()[0]

    ana = await get(client, auth, known)
    assert ana["owner"] == "ana@example.com"  # routed before the import: the survivor keeps it
    assert ana["company"] == "Acme"
    bob = db.execute(
        "SELECT id, status, owner, company FROM leads WHERE email_key = 'bob@globex.com' "
        "AND duplicate_of IS NULL"
    ).fetchall()
    assert [(r["status"], r["owner"], r["company"]) for r in bob] == [
        ("imported", "rep2@example.com", "Globex Inc")
    ]
    events = db.execute(
        "SELECT detail FROM lead_events WHERE type = 'lead.imported' ORDER BY id"
    ).fetchall()
    assert [(e["detail"]["line"], e["detail"]["decision"]) for e in events] == [
        (2, "same"),
        (3, "new"),
        (4, "same"),
    ]

    again = await leadflow("import", str(contacts))  # importing twice doubles nobody
    assert "0 new contacts, 3 merged into known leads" in again.output
    live = db.execute(
        "SELECT count(*) AS n FROM leads WHERE duplicate_of IS NULL AND status <> 'merged'"
    ).fetchone()
    assert live == {"n": 2}


async def test_a_known_contact_who_fills_a_form_becomes_a_lead_to_process(
    app: FastAPI,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    db: psycopg.Connection[Row],
    tmp_path: Path,
    operator_env: None,
) -> None:
    contacts = write(tmp_path / "c.csv", [["email", "owner"], ["dora@acme.de", "ana@example.com"]])
    assert (await leadflow("import", str(contacts))).exit_code == 0
    imported = db.execute("SELECT id FROM leads WHERE status = 'imported'").fetchone()
    assert imported is not None

    returning = await submit(client, email="dora@acme.de", msg="Now we want a demo")
    await drain(app)

    merged = await get(client, auth, returning)
    assert merged["duplicate_of"] == str(imported["id"])
    lead = await get(client, auth, str(imported["id"]))
    assert lead["status"] == "synced"  # validated, scored, routed and synced like any lead
    assert lead["owner"] == "ana@example.com"
    assert lead["routing_reason"]["rule"] == "sticky"  # the CRM's owner keeps the person
    assert "imported contact" in lead["routing_reason"]["sentence"]
    assert lead["message"] == "Now we want a demo"


async def test_accounts_are_upserted_by_domain(
    db: psycopg.Connection[Row], tmp_path: Path, operator_env: None
) -> None:
    accounts = write(
        tmp_path / "accounts.csv",
        [
            ["Account Name", "Website", "Account Owner", "Country"],
            ["Acme GmbH", "https://www.acme.de/", "ana@example.com", "Germany"],
            ["Globex", "", "luca@example.com", ""],
            ["ACME", "acme.de", "", ""],
            ["", "", "", ""],
        ],
    )

    result = await leadflow("import", str(accounts), "--accounts")

    assert result.exit_code == 0, result.output
    assert f"{accounts}: line 5: nothing to know it by (needs a name or a domain)" in result.output
    assert "4 rows: 2 new accounts, 1 updated, 1 skipped" in result.output
    rows = db.execute("SELECT name, domain, owner, country FROM accounts ORDER BY name").fetchall()
    assert [tuple(r.values()) for r in rows] == [
        ("ACME", "acme.de", "ana@example.com", "DE"),  # an empty cell erases nothing
        ("Globex", None, "luca@example.com", None),
    ]


async def test_a_bad_mapping_is_refused(tmp_path: Path, operator_env: None) -> None:
    contacts = write(tmp_path / "c.csv", [["mail"], ["a@b.de"]])

    result = await leadflow("import", str(contacts), "--map", "mail=e-mail")

    assert result.exit_code == 2
    assert "'e-mail' is not one of" in result.output


async def test_an_account_owner_not_in_the_config_is_refused_and_nothing_imported(
    db: psycopg.Connection[Row], tmp_path: Path, operator_env: None
) -> None:
    accounts = write(
        tmp_path / "accounts.csv",
        [
            ["Account Name", "Account Owner"],
            ["Acme", "ana@example.com"],
            ["Globex", "anna@example.com"],
        ],
    )

    result = await leadflow("import", str(accounts), "--accounts")

    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"error: {accounts}: line 3: 'anna@example.com': not an owner of the config; owners: "
        "ana@example.com, luca@example.com, ben@example.com, maya@example.com "
        "(nothing was imported)"
    ]
    assert db.execute("SELECT count(*) AS n FROM accounts").fetchone() == {"n": 0}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"email,name\n\xff@acme.io,Ana\n", "not UTF-8 text (byte 11); save it as UTF-8"),
        (b"", "empty file (a header row is needed)"),
        (  # a quote left open swallows the rest of the file
            b'email,name\n"ana@acme.de,Ana\n' + b"bob@acme.de,Bob\n" * 10_000,
            "line 2: cannot be read as CSV: field larger than field limit (131072)",
        ),
    ],
    ids=["latin-1", "empty", "open-quote"],
)
async def test_a_file_that_is_not_csv_is_named_in_one_line(
    db: psycopg.Connection[Row],
    tmp_path: Path,
    operator_env: None,
    content: bytes,
    message: str,
) -> None:
    file = tmp_path / "contacts.csv"
    file.write_bytes(content)

    result = await leadflow("import", str(file))

    assert result.exit_code == 2
    assert result.output.splitlines() == [f"error: {file}: {message}"]
    assert db.execute("SELECT count(*) AS n FROM leads").fetchone() == {"n": 0}


async def test_a_mapping_to_a_missing_column_lists_the_columns(
    tmp_path: Path, operator_env: None
) -> None:
    contacts = write(tmp_path / "c.csv", [["Mail", "Surname"], ["a@b.de", "Weber"]])

    result = await leadflow("import", str(contacts), "--map", "E-Mail=email")

    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"error: {contacts}: --map 'E-Mail=email': the file has no column 'E-Mail' "
        "(its columns: Mail, Surname)"
    ]


async def test_columns_that_give_no_blocking_key_are_named_not_silent(
    db: psycopg.Connection[Row], tmp_path: Path, operator_env: None
) -> None:
    contacts = write(
        tmp_path / "contacts.csv",
        [
            ["Company", "Street", "Postcode", "Phone", "Email Address"],
            ["Acme", "1 Main St", "10115", "+49 30 1234567", "2024-01-03"],
            ["Acme GmbH", "1 Main Street", "10115", "+49 30 7654321", "2024-01-04"],
        ],
    )

    result = await leadflow("import", str(contacts))

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "warning: column 'Email Address' feeds email by its name, but 2 of the 2 values looked "
        "at do not look like one (e.g. '2024-01-03'); if that is not the column, give the "
        "right one with --map SRC=email",
        "Columns: Company->company, Street->street, Postcode->postcode, Phone->phone, "
        "Email Address->email",
        "2 rows: 2 new contacts, 0 merged into known leads, 0 linked for review, 0 skipped",
        "Blocking keys: email 2 rows, phone 2 rows",
        "warning: company, street, postcode gave no row a blocking key: an email, a phone, or a "
        "first and a last name make keys; company, city, postcode, domain and text fields only "
        "together with a name; street and country never. Map such columns with --map SRC=FIELD",
    ]
