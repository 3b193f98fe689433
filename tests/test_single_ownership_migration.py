"""Migration 0009 repairs the leads that break single ownership, then the table refuses them."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.rows import dict_row

from leadflow import migrate
from tests.conftest import _create_database, _drop_database

INSERT = (
    "INSERT INTO leads (id, form_key, status, status_changed_at, submitted_at, owner, queue, "
    "routing_reason, external_ids) VALUES (gen_random_uuid(), 'contact', %s, now(), now(), "
    "%s, %s, %s, '{}') RETURNING id"
)


def test_rows_with_both_or_neither_are_repaired_and_then_refused(server_url: str) -> None:
    url = _create_database(server_url)
    try:
        migrate.upgrade(url, "0008")
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            earlier = psycopg.types.json.Jsonb({"rule": "later", "sentence": "Queue 'nurture'."})
            rows = {
                "both": ("routed", "luca@example.com", "nurture", earlier),
                "neither": ("synced", None, None, None),
                "imported": ("imported", "rep@example.com", None, None),
                "new": ("received", None, None, None),
            }
            ids = {
                name: conn.execute(INSERT, row).fetchone()["id"]  # type: ignore[index]
                for name, row in rows.items()
            }

            migrate.upgrade(url)

            found = {
                row["id"]: row
                for row in conn.execute("SELECT id, owner, queue, routing_reason FROM leads")
            }
            found = {name: found[lead_id] for name, lead_id in ids.items()}
            assert (found["both"]["owner"], found["both"]["queue"]) == ("luca@example.com", None)
            assert found["both"]["routing_reason"]["sentence"] == (
                "Kept luca@example.com; queue nurture cleared: a lead has one owner or one queue."
            )
            assert found["both"]["routing_reason"]["before"]["rule"] == "later"
            assert (found["neither"]["owner"], found["neither"]["queue"]) == (None, "triage")
            assert (found["imported"]["owner"], found["imported"]["queue"]) == (
                "rep@example.com",
                None,
            )
            assert (found["new"]["owner"], found["new"]["queue"]) == (None, None)
            for status, owner, queue in (
                ("routed", "a@x.com", "triage"),
                ("received", "a@x.com", "triage"),
                ("routed", None, None),
            ):
                with pytest.raises(psycopg.errors.CheckViolation, match="single_ownership"):
                    conn.execute(INSERT, (status, owner, queue, None))
    finally:
        _drop_database(server_url, url)
