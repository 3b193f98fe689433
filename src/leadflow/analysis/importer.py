"""``leadflow import``: existing contacts and accounts, deduplicated on the way in.

Contacts become leads with status ``imported`` (they are known people, not new
submissions: no pipeline, no CRM sync), and go through the same dedup step as
form leads, so a contact already in Leadflow, or twice in the file, is merged
(and can be unmerged) rather than doubled. Their owner is kept, so that a
returning person can go back to the same owner.

Accounts (``--accounts``) are companies with an owner, keyed by their domain
(or, without one, their normalised name): importing the same account again
updates it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadflow.analysis import repository
from leadflow.analysis.columns import HEADER_ALIASES, map_columns
from leadflow.analysis.dedup import Coverage, coverage
from leadflow.config import Config
from leadflow.db import transaction
from leadflow.dedup.matching import (
    LEAD_MATCH_FIELDS,
    Field,
    Kind,
    blocking_keys,
    normalise,
    prepare,
)
from leadflow.dedup.service import dedupe_lead
from leadflow.fields import LEAD_FIELDS
from leadflow.leads import repository as leads
from leadflow.models import Account, Lead, LeadStatus
from leadflow.models.base import new_id, utcnow
from leadflow.models.lead import reason_for
from leadflow.stage import Batch
from leadflow.validation.context import country_code
from leadflow.validation.email import analyse_email
from leadflow.validation.phone import analyse_phone
from leadflow.validation.service import company_domain, website_domain

CONTACT_FIELDS = (*(name for name in LEAD_FIELDS if name != "full_name"), "owner")
ACCOUNT_FIELDS = ("name", "domain", "owner", "country")
ACCOUNT_ALIASES = {
    "company": "name",
    "company_name": "name",
    "account": "name",
    "account_name": "name",
    "organisation": "name",
    "organization": "name",
    "website": "domain",
    "url": "domain",
    "account_owner": "owner",
    "owner_email": "owner",
}
BATCH = 500  # rows per transaction: a crash loses at most one batch, never half a row

Progress = Callable[[int], None]


def plan_import(headers: Sequence[str], maps: Sequence[str], *, accounts: bool) -> dict[str, str]:
    """Target field -> source column, by header name or alias, then ``--map SRC=FIELD``."""
    if accounts:
        return map_columns(headers, maps, ACCOUNT_FIELDS, ACCOUNT_ALIASES)
    return map_columns(headers, maps, CONTACT_FIELDS, {**HEADER_ALIASES, "contact_owner": "owner"})


def unknown_owners(
    rows: Sequence[Mapping[str, str]], columns: Mapping[str, str], config: Config
) -> list[str]:
    """``line N: 'x@y'`` for each row whose owner the config does not know (routing
    could never give that owner a lead)."""
    source = columns.get("owner")
    if source is None:
        return []
    return [
        f"line {n}: {owner!r}"
        for n, row in enumerate(rows, start=2)
        if (owner := row.get(source, "").strip()) and config.owner(owner) is None
    ]


def contact_coverage(rows: Sequence[Mapping[str, str]], columns: Mapping[str, str]) -> Coverage:
    """Which mapped columns give the contacts blocking keys, the keys dedup looks up
    known leads by (the same matcher as the live dedup step)."""
    fields = [Field(name, kind) for name, kind in LEAD_MATCH_FIELDS.items() if name in columns]
    keyed = [
        blocking_keys(fields, prepare(fields, {f.name: row.get(columns[f.name]) for f in fields}))
        for row in rows
    ]
    return coverage(fields, keyed)


@dataclass
class Report:
    rows: int = 0
    created: int = 0
    merged: int = 0
    linked: int = 0
    updated: int = 0
    skipped: list[str] = field(default_factory=list)  # "line N: why"


def _row_values(
    row: Mapping[str, str], columns: Mapping[str, str], line: int
) -> tuple[dict[str, str], str | None]:
    values = {t: row.get(s, "").strip() for t, s in columns.items() if row.get(s, "").strip()}
    for name, value in values.items():
        spec = LEAD_FIELDS.get(name)
        limit = spec.max_length if spec else 320
        if len(value) > limit:
            return values, f"line {line}: {name} is longer than {limit} characters"
    return values, None


def _contact(values: dict[str, str]) -> Lead | None:
    email = analyse_email(values.get("email"))
    country = country_code(values.get("country"))
    phone = analyse_phone(values.get("phone"), [country])
    identified = email.key or phone.e164 or (values.get("last_name") and values.get("company"))
    if not identified:
        return None
    now = utcnow()
    fields = {name: value for name, value in values.items() if name != "owner"}
    lead = Lead(
        id=new_id(),
        form_key="import",
        status=LeadStatus.IMPORTED.value,
        status_changed_at=now,
        submitted_at=now,
        **fields,
    )
    owner = values.get("owner")
    if owner:
        sentence = f"{owner}, the contact's owner in the imported file."
        lead.set_ownership(
            owner=owner, reason=reason_for("import", sentence, owner=owner, by="import")
        )
    lead.quality = {
        "email_valid": email.valid,
        "email_kind": email.kind.value if email.kind else None,
        "email_key": email.key,
        "email_domain": email.domain,
        "phone_e164": phone.e164,
        "phone_valid": phone.valid,
        "country": country,
        "company_domain": company_domain(email, lead.website),
    }
    lead.company_domain = lead.quality["company_domain"]
    return lead


async def _import_contact(
    session: AsyncSession, config: Config, values: dict[str, str], source: str, line: int
) -> str | None:
    lead = _contact(values)
    if lead is None:
        return None
    await repository.add_lead(session, lead)
    result = await dedupe_lead(session, Batch(), lead, config)
    await leads.add_event(
        session, lead.id, "lead.imported", {"file": source, "line": line, **result.detail}
    )
    if result.halt is not None:
        lead.set_status(result.halt)
        return "merged"
    return "linked" if result.detail.get("decision") == "possible" else "created"


async def _import_account(session: AsyncSession, values: dict[str, str]) -> str | None:
    name = values.get("name") or values.get("domain")
    if not name:
        return None
    domain = website_domain(values.get("domain"))
    name_key = normalise(Kind.COMPANY, name)
    account = await repository.account_to_update(session, domain, name_key)
    fields: dict[str, Any] = {
        "name": name,
        "name_key": name_key,
        "owner": values.get("owner"),
        "country": country_code(values.get("country")) or values.get("country"),
    }
    if account is None:
        await repository.add_account(session, Account(domain=domain, **fields))
        return "created"
    for key, value in fields.items():
        if value:  # an empty cell never erases what is known
            setattr(account, key, value)
    return "updated"


async def import_rows(
    sessions: async_sessionmaker[AsyncSession],
    config: Config,
    rows: Sequence[Mapping[str, str]],
    columns: Mapping[str, str],
    *,
    source: str,
    accounts: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Import ``rows`` (line 2 is the first row after the header), in batches."""
    report = Report(rows=len(rows))
    for start in range(0, len(rows), BATCH):
        async with transaction(sessions) as session:
            for offset, row in enumerate(rows[start : start + BATCH]):
                line = start + offset + 2
                values, problem = _row_values(row, columns, line)
                if problem:
                    report.skipped.append(problem)
                    continue
                if accounts:
                    outcome = await _import_account(session, values)
                else:
                    outcome = await _import_contact(session, config, values, source, line)
                if outcome is None:
                    what = (
                        "a name or a domain"
                        if accounts
                        else "an email, a phone, or a last name and a company"
                    )
                    report.skipped.append(f"line {line}: nothing to know it by (needs {what})")
                    continue
                if outcome == "created":
                    report.created += 1
                elif outcome == "updated":
                    report.updated += 1
                elif outcome == "merged":
                    report.merged += 1
                else:
                    report.linked += 1
        if progress:
            progress(min(BATCH, len(rows) - start))
    return report
