"""The intake's SQL: the earlier answers a batch may repeat, and a batch's new rows."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Interval, Row, String, Table, and_, any_, bindparam, func, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db import lock_ids
from leadflow.fields import LEAD_FIELDS
from leadflow.models import Lead, Submission

# The batch's advisory locks (in ``lock_ids``' order, as ``db.advisory_lock`` takes
# them), and, in the same statement, fresh plans for the rest of the transaction: a
# plan of the lookup below cached while the table was small would keep scanning it
# whole once it has grown, for as long as no ANALYZE has run (autovacuum turned off, or
# not yet come by). One statement, one round trip, instead of a SET LOCAL of its own.
_LOCK_FRESH_PLANS = text(
    "SELECT pg_advisory_xact_lock(id), "
    "set_config('plan_cache_mode', 'force_custom_plan', true) "
    "FROM unnest(CAST(:ids AS bigint[])) AS id"
)
_EARLIER = select(
    Submission.id,
    Submission.idempotency_key,
    Submission.form_key,
    Submission.fingerprint,
    Submission.response,
    Submission.received_at,
    func.now().label("now"),
).where(
    or_(
        Submission.idempotency_key == any_(bindparam("keys", type_=ARRAY(String))),
        and_(  # served by ix_submissions_form_key_fingerprint
            Submission.form_key == any_(bindparam("forms", type_=ARRAY(String))),
            Submission.fingerprint == any_(bindparam("prints", type_=ARRAY(String))),
            Submission.received_at >= func.now() - bindparam("window", type_=Interval),
        ),
    )
)


async def lock(session: AsyncSession, scopes: Iterable[str]) -> None:
    """Serialise the transactions that could store the same submission (one lock per
    scope, held until this transaction ends), and plan this transaction's lookups
    afresh."""
    await session.execute(_LOCK_FRESH_PLANS, {"ids": lock_ids(scopes)})


async def earlier_submissions(
    session: AsyncSession,
    *,
    keys: list[str],
    forms: list[str],
    prints: list[str],
    window: timedelta,
) -> Sequence[Row[Any]]:
    """Stored submissions with one of ``keys``, or one of ``prints`` to one of ``forms``
    received within ``window``; each with the database's ``now``. Takes ``lock``
    first: its fresh plans keep this lookup on the index."""
    result = await session.execute(
        _EARLIER, {"keys": keys, "forms": forms, "prints": prints, "window": window}
    )
    return result.all()


# The columns each new row names; a row without one of them stores NULL there.
LEAD_COLUMNS = (
    "id",
    "form_key",
    "status",
    "status_changed_at",
    "submitted_at",
    "client_tz_offset_minutes",
    "first_touch",
    "last_touch",
    "created_at",
    "updated_at",
    *(c.name for c in cast(Table, Lead.__table__).columns if c.name in LEAD_FIELDS),
)
SUBMISSION_COLUMNS = tuple(c.name for c in cast(Table, Submission.__table__).columns)
EVENT_COLUMNS = ("lead_id", "type", "at", "detail")
CONSENT_COLUMNS = (
    "id",
    "lead_id",
    "submission_id",
    "purpose",
    "status",
    "policy_version",
    "text",
    "text_hash",
    "method",
    "form_key",
    "ip",
    "user_agent",
    "recorded_at",
)
# Inserted one by one through SQLAlchemy, a touch that was None became JSON null, not
# SQL NULL: the rows stay as they were.
_JSON_NULL = frozenset({"first_touch", "last_touch"})


def _insert(table: str, columns: Sequence[str], rows: str) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    values = ", ".join(
        f"""COALESCE("{c}", 'null')""" if c in _JSON_NULL else f'"{c}"' for c in columns
    )
    # Only names of our own tables and columns go into the text; the rows are a parameter.
    return (
        f"INSERT INTO {table} ({names}) SELECT {values} "  # noqa: S608
        f"FROM json_populate_recordset(NULL::{table}, CAST(:{rows} AS json))"
    )


# A batch's rows, every table in one statement: PostgreSQL runs one INSERT per table
# (the rows arrive as one JSON array each) instead of one per row, and the process
# encodes them in one go. Every foreign key is checked at the end of the statement,
# when the leads it points to are in.
_INSERT_BATCH = text(
    f"WITH new_leads AS ({_insert('leads', LEAD_COLUMNS, 'leads')}), "
    f"new_submissions AS ({_insert('submissions', SUBMISSION_COLUMNS, 'submissions')}), "
    f"new_events AS ({_insert('lead_events', EVENT_COLUMNS, 'events')}) "
    f"{_insert('consent_records', CONSENT_COLUMNS, 'consents')}"
)


def _json_value(value: object) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a value of a new intake row")


def _encoded(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, default=_json_value, separators=(",", ":"))


async def insert_batch(
    session: AsyncSession,
    *,
    leads: list[dict[str, Any]],
    submissions: list[dict[str, Any]],
    events: list[dict[str, Any]],
    consents: list[dict[str, Any]],
) -> None:
    """Insert a batch's new leads, their submissions, events and consent records."""
    if not leads:
        return
    await session.execute(
        _INSERT_BATCH,
        {
            "leads": _encoded(leads),
            "submissions": _encoded(submissions),
            "events": _encoded(events),
            "consents": _encoded(consents),
        },
    )
