"""What tests build again and again: form inputs, submissions, leads at a stage, accounts,
activities, CRM records and configs.

Leads are built in the state the pipeline leaves them in: ``lead(LeadStatus.VALIDATED)``
carries the quality the validation step's own analysers give its email and phone, a
routed lead has exactly one of owner or queue and a reason. Inputs are named the way
the test config's forms name them (``contact`` posts a company as ``org``), so a test
speaks in lead fields and posts what a browser would.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadflow.config import Config, load_config_text
from leadflow.connectors.base import CrmLead
from leadflow.db import transaction
from leadflow.dedup.matching import Kind, normalise
from leadflow.models import Account, Activity, Lead, LeadStatus
from leadflow.models.base import Base, utcnow
from leadflow.models.lead import PAST_ROUTING
from leadflow.validation.email import analyse_email
from leadflow.validation.phone import analyse_phone
from leadflow.validation.service import company_domain, contact_flags
from tests.conftest import TEST_CONFIG

Row = dict[str, Any]

_FORMS = load_config_text(TEST_CONFIG, "test.yaml").forms
_numbers = itertools.count(1)


# --- the test config ---------------------------------------------------------------------


def config_yaml(*more_yaml: str, forms: str | None = None) -> str:
    """The test config's text (tests/conftest.py) with ``more_yaml`` appended; ``forms``
    (a whole top-level ``forms:`` block) in place of its own forms."""
    text = TEST_CONFIG
    if forms is not None:
        text = re.sub(r"^forms:\n(?:[ \t].*\n|\n)*", forms.strip("\n") + "\n", text, flags=re.M)
    return text + "".join(more_yaml)


def config(*more_yaml: str, forms: str | None = None) -> Config:
    """The test config, with ``more_yaml`` appended and ``forms`` in place of its forms."""
    return load_config_text(config_yaml(*more_yaml, forms=forms), "test.yaml")


def crm_yaml(crm_log: Path, *, retry: Sequence[str] = ("10s", "1m", "1h")) -> str:
    """A recording CRM writing to ``crm_log``, and a short retry schedule for its calls."""
    return (
        f"\npipeline:\n  retry: {{crm.sync: [{', '.join(retry)}]}}\n"
        f"connectors:\n  crm: {{kind: recording, path: {crm_log}}}\n"
    )


def config_with_crm(crm_log: Path, *more_yaml: str) -> Config:
    """The test config with a recording CRM: leads go on to ``synced``."""
    return config(crm_yaml(crm_log), *more_yaml)


# --- form inputs and submissions ---------------------------------------------------------


def submissions_url(form_key: str = "contact") -> str:
    return f"/v1/forms/{form_key}/submissions"


def inputs(form_key: str = "contact", /, *, consent: Iterable[str] = (), **fields: Any) -> Row:
    """What the test form ``form_key`` posts for these lead fields: each under the form's
    own input name where it maps one (``contact``: name, org, tel, msg; ``open``: Mail),
    anything else under the name given, and a ticked box per consent purpose."""
    form = _FORMS.get(form_key)  # a form of a test's own config: its names as given
    mapping = form.fields if form else {}
    own_name = {target: name for name, target in reversed(mapping.items())}
    boxes = {item.purpose: item.input_name for item in form.consent} if form else {}
    posted = {own_name.get(name, name): value for name, value in fields.items()}
    for purpose in consent:
        posted[boxes[purpose]] = "yes"
    return posted


async def submit(
    client: httpx.AsyncClient,
    form_key: str = "contact",
    /,
    *,
    headers: dict[str, str] | None = None,
    consent: Iterable[str] = (),
    **fields: Any,
) -> str:
    """Post a JSON submission of these lead fields to the form; the accepted lead's id."""
    response = await client.post(
        submissions_url(form_key), json=inputs(form_key, consent=consent, **fields), headers=headers
    )
    assert response.status_code == 202, response.text
    return str(response.json()["lead_id"])


async def lead_view(client: httpx.AsyncClient, auth: dict[str, str], lead_id: str) -> Row:
    """The lead as ``GET /v1/leads/{id}`` shows it."""
    response = await client.get(f"/v1/leads/{lead_id}", headers=auth)
    assert response.status_code == 200, response.text
    body: Row = response.json()
    return body


def lead_row(db: psycopg.Connection[Row], lead_id: str) -> Row:
    """The lead's row in the database."""
    row = db.execute("SELECT * FROM leads WHERE id = %s", (lead_id,)).fetchone()
    assert row is not None, f"lead {lead_id} was not stored"
    return row


def dedup_step(lead: Row) -> Row:
    """The detail of the lead's ``lead.dedup`` timeline event: what dedup decided, and why."""
    detail: Row = next(e for e in lead["timeline"] if e["type"] == "lead.dedup")["detail"]
    return detail


# --- leads at a stage, accounts, activities ----------------------------------------------

_PIPELINE = (
    LeadStatus.RECEIVED,
    LeadStatus.VALIDATED,
    LeadStatus.DEDUPLICATED,
    LeadStatus.SCORED,
    LeadStatus.ROUTED,
    LeadStatus.SYNCED,
)


def _past(status: LeadStatus, stage: LeadStatus) -> bool:
    """Whether a lead at ``status`` has been through ``stage``: an outcome (contacted ...)
    has been through them all; a side exit (quarantined, failed, merged) through none."""
    if status in PAST_ROUTING and status not in _PIPELINE:
        return True
    return status in _PIPELINE and _PIPELINE.index(status) >= _PIPELINE.index(stage)


def lead(
    status: LeadStatus = LeadStatus.RECEIVED,
    *,
    form_key: str = "contact",
    region: str | None = "DE",
    **columns: Any,
) -> Lead:
    """A lead as the pipeline leaves it at ``status``, not yet stored.

    Past validation it has its email and phone normalised and the quality the validation
    step's analysers give them (phone numbers read with ``region``, the form's default);
    past scoring a score and segment; past routing an owner (or the ``queue`` given,
    never both) and a reason. ``columns`` set any column and win over all of these, but
    for ``email`` and ``phone``: those are what the person posted."""
    now = utcnow()
    values: Row = {"form_key": form_key, "submitted_at": now, "status_changed_at": now}
    values |= columns
    if "email" not in columns and "phone" not in columns:
        values["email"] = f"person{next(_numbers)}@acme.de"
    if _past(status, LeadStatus.VALIDATED):  # the email and phone given are what was posted
        derived = _validated(values, region)
        values |= {k: v for k, v in derived.items() if k in ("email", "phone") or k not in columns}
    if _past(status, LeadStatus.SCORED):
        scored = {"score": 50, "segment": "warm", "score_breakdown": [], "ruleset_version": "test"}
        values = scored | values
    if _past(status, LeadStatus.ROUTED):
        owner = values.setdefault("owner", None if values.get("queue") else "ana@example.com")
        queue = values.setdefault("queue", None)
        values.setdefault("routing_reason", _reason(owner, queue))
    return Lead(status=status.value, **values)


def _validated(values: Row, region: str | None) -> Row:
    email = analyse_email(values.get("email"))
    phone = analyse_phone(values.get("phone"), [region])
    domain = company_domain(email, values.get("website"))
    quality = {
        "email_valid": email.valid,
        "email_kind": email.kind.value if email.kind else None,
        "email_normalized": email.normalized,
        "email_key": email.key,
        "email_domain": email.domain,
        "phone_e164": phone.e164,
        "phone_valid": phone.valid,
        "phone_region": phone.region,
        "company_domain": domain,
        "flags": contact_flags(
            email, phone, given_email=values.get("email"), given_phone=values.get("phone")
        ),
        "spam_score": 0,
        "spam_reasons": [],
    }
    return values | {
        "email": email.normalized if email.valid else values.get("email"),
        "phone": phone.e164 if phone.valid else values.get("phone"),
        "company_domain": domain,
        "quality": quality,
    }


def _reason(owner: str | None, queue: str | None) -> Row:
    """A routing reason of the shape routing stores, for the rule that gives everyone to Ana."""
    return {
        "rule": "everyone",
        "strategy": None,
        "owner": owner,
        "queue": queue,
        "candidates": [],
        "steps": [],
        "alert": None,
        "sentence": f"To {owner}." if owner else f"To the queue {queue}.",
    }


def account(name: str, *, domain: str | None = None, owner: str | None = None) -> Account:
    """A company the team already knows, keyed by its name the way an import keys it."""
    return Account(name=name, name_key=normalise(Kind.COMPANY, name), domain=domain, owner=owner)


def activity(
    type: str = "page",
    *,
    lead_id: Any = None,
    email_key: str | None = None,
    path: str | None = "/pricing",
    ago: timedelta = timedelta(0),
    **columns: Any,
) -> Activity:
    """A tracked page view (or ``track`` / ``identify`` call), ``ago`` before now."""
    at: datetime = utcnow() - ago
    return Activity(
        message_id=columns.pop("message_id", f"msg-{next(_numbers)}"),
        type=type,
        lead_id=lead_id,
        email_key=email_key,
        path=path,
        occurred_at=at,
        received_at=columns.pop("received_at", at),
        **columns,
    )


async def insert(sessions: async_sessionmaker[AsyncSession], *rows: Base) -> None:
    """Store ``rows`` in one transaction (their ids are set on them afterwards)."""
    async with transaction(sessions) as session:
        session.add_all(rows)


# --- what a CRM is told ------------------------------------------------------------------


def crm_lead(n: int = 1, **fields: Any) -> CrmLead:
    """A lead as the CRM sync sends it; ``n`` tells one person from another."""
    values: Row = {
        "lead_id": f"00000000-0000-4000-8000-{n:012d}",
        "email": f"person{n}@acme.de",
        "phone": None,
        "first_name": "Ana",
        "last_name": f"Weber {n}",
        "company": "Acme GmbH",
        "title": None,
        "owner": "ana@example.com",
        "score": 50,
        "segment": "warm",
        "utm_source": None,
        "utm_campaign": None,
    }
    return CrmLead(**(values | fields))
