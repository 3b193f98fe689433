"""leadflow dedup FILE.csv, as a person runs it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadflow.analysis.columns import MappingError
from leadflow.analysis.dedup import plan_columns
from leadflow.cli import app

runner = CliRunner()

ROWS = [
    ("id", "given_name", "Surname", "dob", "Town", "e-mail", "notes"),
    ("a1", "Robert", "Allen", "1971-06-24", "Leeds", "robert255@smith.net", "first visit"),
    ("a2", "Robert", "Alen", "1971-06-24", "Leeds", "", "webinar"),
    ("a3", "Rbert", "Allen", "24/06/1971", "", "robert255@smith.net", ""),
    ("b1", "Maria", "Garcia", "1985-02-11", "York", "maria.g@example.org", ""),
    ("b2", "Maria", "Garcia", "1985-11-02", "York", "maria.g@example.org", "day/month"),
    ("c1", "Maria", "Garcia", "1990-07-30", "Bath", "mg90@example.com", "namesake"),
    ("d1", "Olivia", "Brown", "2001-03-03", "Hull", "", ""),
    ("e1", "Jack", "Smith", "1960-01-01", "Ely", "jack@smith.co.uk", ""),
]


def write(path: Path, rows: list[tuple[str, ...]]) -> None:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def test_dedup_writes_every_row_with_its_cluster(tmp_path: Path) -> None:
    source, out = tmp_path / "contacts.csv", tmp_path / "clusters.csv"
    write(source, ROWS)

    result = runner.invoke(
        app, ["dedup", str(source), "--out", str(out), "--id", "id", "--field", "dob:date"]
    )

    assert result.exit_code == 0, result.output
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == [r[0] for r in ROWS[1:]]  # every row, in order
    assert rows[0]["notes"] == "first visit"  # columns not compared are carried through
    clusters = {r["id"]: r["cluster_id"] for r in rows}
    assert clusters["a1"] == clusters["a2"] == clusters["a3"] == "a1"
    assert clusters["b1"] == clusters["b2"] == "b1"
    assert len({clusters["b1"], clusters["c1"], clusters["d1"], clusters["e1"]}) == 4
    assert "8 rows -> 5 clusters (3 duplicates)" in result.output
    assert "first_name (name), last_name (name), email (email), city (text), dob (date)" in (
        result.output
    )


def test_explicit_mapping_wins_over_headers(tmp_path: Path) -> None:
    plan = plan_columns(["name", "Surname", "mail2"], ["name=first_name", "mail2=email"])
    assert plan.columns == {"last_name": "Surname", "first_name": "name", "email": "mail2"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--map", "nope=email"], "the file has no column 'nope' (its columns: id, given_name,"),
        (["--map", "Town=town"], "'town' is not one of first_name, last_name, email"),
        (["--map", "Town"], "expected SRC=FIELD"),
        (["--field", "dob:birthday"], "'birthday' is not a kind"),
        (["--id", "missing"], "has no column 'missing'"),
    ],
)
def test_bad_options_are_named_and_write_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    source, out = tmp_path / "contacts.csv", tmp_path / "clusters.csv"
    write(source, ROWS)

    result = runner.invoke(app, ["dedup", str(source), "--out", str(out), *args])

    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()


def test_a_file_with_nothing_to_compare_is_refused() -> None:
    with pytest.raises(MappingError, match="no column to compare"):
        plan_columns(["colour", "size"])


def test_no_blocking_key_is_said_with_its_reason(tmp_path: Path) -> None:
    source, out = tmp_path / "firms.csv", tmp_path / "clusters.csv"
    write(
        source,
        [
            ("Company", "Street", "Postcode"),
            ("Acme", "1 Main St", "10115"),
            ("Acme GmbH", "1 Main Street", "10115"),
            ("Globex", "2 High St", "SW1A 1AA"),
        ],
    )

    result = runner.invoke(app, ["dedup", str(source), "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == [
        "Blocking keys: none",
        "warning: 3 of 3 rows had no blocking key, so they were compared with no other row",
        "warning: company, street, postcode gave no row a blocking key: an email, a phone, or a "
        "first and a last name make keys; company, city, postcode, domain and text fields only "
        "together with a name; street and country never. Map such columns with --map SRC=FIELD",
    ]
    assert result.output.startswith("3 rows -> 3 clusters (0 duplicates); 0 pairs compared")


def test_a_column_named_for_a_field_but_holding_other_values_is_warned_of(
    tmp_path: Path,
) -> None:
    source, out = tmp_path / "contacts.csv", tmp_path / "clusters.csv"
    dates_as_emails = [(*row[:5], row[3]) for row in ROWS[1:]]
    write(source, [(*ROWS[0][:5], "e-mail"), *dates_as_emails])

    result = runner.invoke(app, ["dedup", str(source), "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        "warning: column 'e-mail' feeds email by its name, but 8 of the 8 values looked at do "
        "not look like one (e.g. '1971-06-24'); if that is not the column, give the right one "
        "with --map SRC=email"
    )
