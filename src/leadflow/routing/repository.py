"""All SQL of routing: owners' counts, round-robin turns, absences, accounts, assignments."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta

from rapidfuzz import fuzz
from sqlalchemy import Integer, bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP, VARCHAR
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config.routing import Absence, Owner
from leadflow.db import advisory_lock
from leadflow.dedup.matching import Kind, normalise
from leadflow.models import Account, Assignment, Lead, LeadStatus, OwnerAbsence, RoutingTurn
from leadflow.models.base import utcnow
from leadflow.routing.views import Load

# Leads an owner is still working on: they count against max_open.
OPEN = (
    LeadStatus.ROUTED.value,
    LeadStatus.SYNCED.value,
    LeadStatus.CONTACTED.value,
    LeadStatus.MEETING_BOOKED.value,
)

_TODAY = text(
    "SELECT o.owner, (SELECT count(*) FROM assignments a "
    "WHERE a.owner = o.owner AND a.at >= o.since) AS n "
    "FROM unnest(:owners, :since) AS o(owner, since)"
).bindparams(
    bindparam("owners", type_=ARRAY(VARCHAR)),
    bindparam("since", type_=ARRAY(TIMESTAMP(timezone=True))),
)

_WRITE_TURNS = text(
    "INSERT INTO routing_turns (pool, position) SELECT * FROM unnest(:pools, :positions) "
    "ON CONFLICT (pool) DO UPDATE SET position = excluded.position"
).bindparams(bindparam("pools", type_=ARRAY(VARCHAR)), bindparam("positions", type_=ARRAY(Integer)))


async def lock(session: AsyncSession) -> None:
    """The routing lock: one routing decision at a time until the transaction ends, so
    two workers never hand out the same turn or the last slot of an owner twice."""
    await advisory_lock(session, "routing")


async def loads(
    session: AsyncSession, owners: Sequence[Owner], now: datetime, *, today: bool, open_: bool
) -> dict[str, Load]:
    """Per owner email (lower case): leads assigned since the start of their day, leads
    open; a count not asked for is 0."""
    counted_today: dict[str, int] = {}
    counted_open: dict[str, int] = {}
    if owners and today:
        emails, since = [], []
        for owner in owners:
            local = now.astimezone(owner.zone)
            emails.append(owner.email.lower())
            since.append(datetime.combine(local.date(), time.min, tzinfo=owner.zone))
        rows = await session.execute(_TODAY, {"owners": emails, "since": since})
        counted_today = {row.owner: int(row.n) for row in rows}
    if owners and open_:
        # lead.owner holds the config's spelling of the email: the index serves it.
        rows = await session.execute(
            select(Lead.owner, func.count())
            .where(Lead.owner.in_([o.email for o in owners]), Lead.status.in_(OPEN))
            .group_by(Lead.owner)
        )
        for email, n in rows:
            key = str(email).lower()
            counted_open[key] = counted_open.get(key, 0) + int(n)
    return {
        key: Load(counted_today.get(key, 0), counted_open.get(key, 0))
        for key in (o.email.lower() for o in owners)
    }


async def turns(session: AsyncSession, pools: Collection[str] | None = None) -> dict[str, int]:
    """The pools' round-robin positions (all of them, or those of ``pools``)."""
    query = select(RoutingTurn.pool, RoutingTurn.position)
    if pools is not None:
        query = query.where(RoutingTurn.pool.in_(list(pools)))
    return {pool: position for pool, position in await session.execute(query)}


async def write_turns(session: AsyncSession, positions: Mapping[str, int]) -> None:
    """The pools' new positions, in one statement."""
    if positions:
        pools = sorted(positions)
        params = {"pools": pools, "positions": [positions[pool] for pool in pools]}
        await session.execute(_WRITE_TURNS, params)


async def absences(session: AsyncSession) -> dict[str, tuple[Absence, ...]]:
    """Out-of-office periods set through the API, not over, per owner email (lower case)."""
    yesterday = (utcnow() - timedelta(days=1)).date()
    rows = await session.scalars(select(OwnerAbsence).where(OwnerAbsence.end >= yesterday))
    found: dict[str, tuple[Absence, ...]] = {}
    for row in rows:
        absence = Absence(start=row.start, end=row.end, note=row.note)
        found[row.owner] = (*found.get(row.owner, ()), absence)
    return found


async def stored_absences(session: AsyncSession) -> Sequence[OwnerAbsence]:
    """Every out-of-office period set through the API, earliest first."""
    return (await session.scalars(select(OwnerAbsence).order_by(OwnerAbsence.start))).all()


async def add_absence(
    session: AsyncSession, owner: str, start: date, end: date, note: str | None
) -> OwnerAbsence:
    row = OwnerAbsence(owner=owner, start=start, end=end, note=note)
    session.add(row)
    await session.flush()
    return row


async def delete_absence(session: AsyncSession, owner: str, absence_id: int) -> bool:
    """Whether there was such a period of the owner's."""
    result = await session.execute(
        delete(OwnerAbsence).where(OwnerAbsence.id == absence_id, OwnerAbsence.owner == owner)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def add_assignment(
    session: AsyncSession,
    lead_id: uuid.UUID,
    owner: str | None,
    queue: str | None,
    rule: str,
    by: str,
) -> None:
    session.add(
        Assignment(
            lead_id=lead_id, owner=owner.lower() if owner else None, queue=queue, rule=rule, by=by
        )
    )


def pending_assignments(session: AsyncSession) -> Iterable[str]:
    """The owners (lower case) of this transaction's assignments not written out yet."""
    for assignment in session.new:
        if isinstance(assignment, Assignment) and assignment.owner:
            yield assignment.owner


# For each company (:domains, maybe NULL; :prefixes, the first word of its name, maybe
# empty; the n-th of each): the account with its domain, else the accounts whose name
# starts with its prefix (at most 50), for a fuzzy look.
_ACCOUNTS_OF = (
    text(
        "SELECT w.n, a.id, 0 AS by_name FROM unnest(:domains) WITH ORDINALITY AS w(domain, n) "
        "JOIN accounts a ON a.domain = w.domain "
        "UNION ALL SELECT w.n, f.id, 1 "
        "FROM unnest(:domains, :prefixes) WITH ORDINALITY AS w(domain, prefix, n) "
        "CROSS JOIN LATERAL (SELECT id FROM accounts WHERE w.prefix <> '' "
        "AND name_key LIKE w.prefix || '%' "
        "AND NOT EXISTS (SELECT 1 FROM accounts d WHERE d.domain = w.domain) LIMIT 50) f"
    )
    .bindparams(
        bindparam("domains", type_=ARRAY(VARCHAR)), bindparam("prefixes", type_=ARRAY(VARCHAR))
    )
    .columns(n=Integer, id=Account.id.type, by_name=Integer)
    .subquery()
)


async def find_account(session: AsyncSession, lead: Lead) -> Account | None:
    """The known account of the lead's company: by domain, else by (fuzzy) name."""
    return (await find_accounts(session, [lead]))[0]


async def find_accounts(session: AsyncSession, batch: Sequence[Lead]) -> list[Account | None]:
    """``find_account`` for each lead, in one statement."""
    keys = [normalise(Kind.COMPANY, lead.company) if lead.company else "" for lead in batch]
    prefixes = [key.split(" ", 1)[0] for key in keys]
    domains = [lead.company_domain for lead in batch]
    found: list[Account | None] = [None] * len(batch)
    if not any(domains) and not any(prefixes):
        return found
    named: dict[int, list[Account]] = {}
    query = select(Account, _ACCOUNTS_OF.c.n, _ACCOUNTS_OF.c.by_name).join(
        _ACCOUNTS_OF, Account.id == _ACCOUNTS_OF.c.id
    )
    for account, n, by_name in await session.execute(
        query, {"domains": domains, "prefixes": prefixes}
    ):
        if by_name:
            named.setdefault(n - 1, []).append(account)
        else:
            found[n - 1] = account
    for i, accounts in named.items():
        best = max(accounts, key=lambda a: fuzz.token_sort_ratio(keys[i], a.name_key))
        if found[i] is None and fuzz.token_sort_ratio(keys[i], best.name_key) >= 90:
            found[i] = best
    return found


# For each company (:domains), its leads with an owner changed since :since, the most
# recent :per_company (the lead asking, and a batch's leads, may be among them).
_COMPANY_OWNERS = text(
    "SELECT d.domain, l.id, l.owner FROM unnest(:domains) AS d(domain) "
    "CROSS JOIN LATERAL (SELECT id, owner FROM leads WHERE company_domain = d.domain "
    "AND owner IS NOT NULL AND updated_at >= :since "
    "ORDER BY updated_at DESC LIMIT :per_company) l"
).bindparams(
    bindparam("domains", type_=ARRAY(VARCHAR)),
    bindparam("since", type_=TIMESTAMP(timezone=True)),
    bindparam("per_company", type_=Integer),
)


async def company_owners(
    session: AsyncSession, domains: Collection[str], since: datetime, per_company: int = 2
) -> dict[str, list[tuple[uuid.UUID, str]]]:
    """The owners of each company's most recent leads changed since ``since`` (lead,
    owner), the most recent first."""
    found: dict[str, list[tuple[uuid.UUID, str]]] = {domain: [] for domain in domains}
    if domains:
        params = {"domains": sorted(domains), "since": since, "per_company": per_company}
        for domain, lead_id, owner in await session.execute(_COMPANY_OWNERS, params):
            found[domain].append((lead_id, owner))
    return found
