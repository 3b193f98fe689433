"""The ``lead.route`` stage, people's reassignments, and the state routing keeps in PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import Integer, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP, VARCHAR, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from leadflow.config import Config
from leadflow.config.routing import Absence, Owner
from leadflow.db import advisory_lock
from leadflow.dedup.matching import Kind, normalise
from leadflow.errors import NotFound, ValidationFailed
from leadflow.leads import repository as leads
from leadflow.models import Account, Assignment, Lead, LeadStatus, OwnerAbsence, RoutingTurn
from leadflow.models.base import utcnow
from leadflow.routing.router import Context, Decision, Load, Router
from leadflow.scoring.service import view_of
from leadflow.stage import Batch, StageResult

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


@dataclass
class _Counters:
    """The counts routing reads, from the table: per owner email (lower case), leads
    assigned since the start of their day and leads open; and the pools' turns."""

    today: dict[str, int] = field(default_factory=dict)
    open: dict[str, int] = field(default_factory=dict)
    turns: dict[str, int] = field(default_factory=dict)
    moved: set[str] = field(default_factory=set)  # turns changed, to write back

    def assigned(self, owner: str) -> None:
        """A lead given to ``owner`` (lower case) since the counts were read."""
        self.today[owner] = self.today.get(owner, 0) + 1
        self.open[owner] = self.open.get(owner, 0) + 1


class DatabaseState:
    """Routing's counters in PostgreSQL, read and updated inside the lead's transaction.

    For a batch (``prepare_batch``) they are read once, under the routing lock, and the
    turns written back once after it (``finish_batch``); ``assign`` counts the batch's
    own assignments in as it makes them, written out or not."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _batch(self) -> _Counters | None:
        counters: _Counters | None = self.session.info.get("routing.counters")
        return counters

    async def lock(self, *, flush: bool = True) -> None:
        if self.session.info.get("routing.locked"):
            return  # held since an earlier lead of the batch
        if flush:  # what is pending first: the lock is held until commit, so keep it short
            await self.session.flush()
        await advisory_lock(self.session, "routing")
        self.session.info["routing.locked"] = True

    async def loads(
        self, owners: Sequence[Owner], now: datetime, *, today: bool = True, open_: bool = True
    ) -> dict[str, Load]:
        if not owners:
            return {}
        counted = self._batch  # a batch's: its assignments counted in as they are made
        if counted is None:
            counted = await self._count(owners, now, today=today, open_=open_)
            for assignment in self.session.new:  # this transaction's, not written out yet
                if isinstance(assignment, Assignment) and assignment.owner:
                    counted.assigned(assignment.owner)
        return {
            e: Load(
                counted.today.get(e, 0) if today else 0,
                counted.open.get(e, 0) if open_ else 0,
            )
            for e in (o.email.lower() for o in owners)
        }

    async def _count(
        self, owners: Sequence[Owner], now: datetime, *, today: bool, open_: bool
    ) -> _Counters:
        counted = _Counters()
        if today:
            emails, since = [], []
            for owner in owners:
                local = now.astimezone(owner.zone)
                emails.append(owner.email.lower())
                since.append(datetime.combine(local.date(), time.min, tzinfo=owner.zone))
            params = {"owners": emails, "since": since}
            counted.today = {
                row.owner: int(row.n) for row in await self.session.execute(_TODAY, params)
            }
        if open_:
            # lead.owner holds the config's spelling of the email: the index serves it.
            rows = await self.session.execute(
                select(Lead.owner, func.count())
                .where(Lead.owner.in_([o.email for o in owners]), Lead.status.in_(OPEN))
                .group_by(Lead.owner)
            )
            for email, n in rows:
                key = str(email).lower()
                counted.open[key] = counted.open.get(key, 0) + int(n)
        return counted

    async def turn(self, pool: str) -> int:
        counted = self._batch
        if counted is not None:
            return counted.turns.get(pool, -1)
        statement = (
            insert(RoutingTurn)
            .values(pool=pool, position=-1)
            .on_conflict_do_update(
                index_elements=[RoutingTurn.pool], set_={"position": RoutingTurn.position}
            )
            .returning(RoutingTurn.position)
        )
        return int((await self.session.execute(statement)).scalar_one())

    async def set_turn(self, pool: str, position: int) -> None:
        counted = self._batch
        if counted is not None:
            counted.turns[pool] = position
            counted.moved.add(pool)
            return
        await self.session.execute(
            update(RoutingTurn).where(RoutingTurn.pool == pool).values(position=position)
        )

    async def count_batch(self, owners: Sequence[Owner], now: datetime) -> None:
        """Take the routing lock (nothing written first: the commit writes the batch
        at once) and read every owner's counts and every pool's turn for the batch."""
        await self.lock(flush=False)
        counted = await self._count(owners, now, today=True, open_=True)
        counted.turns = {
            pool: position
            for pool, position in await self.session.execute(
                select(RoutingTurn.pool, RoutingTurn.position)
            )
        }
        self.session.info["routing.counters"] = counted

    async def write_turns(self) -> None:
        """After a batch: the pools' turns it moved, in one statement."""
        counted: _Counters | None = self.session.info.pop("routing.counters", None)
        if counted is None or not counted.moved:
            return
        pools = sorted(counted.moved)
        positions = [counted.turns[pool] for pool in pools]
        await self.session.execute(_WRITE_TURNS, {"pools": pools, "positions": positions})

    async def absences(self) -> Mapping[str, Sequence[Absence]]:
        """Read once per transaction (a batch's leads all see the same)."""
        cached: Mapping[str, Sequence[Absence]] | None = self.session.info.get("routing.absences")
        if cached is None:
            cached = self.session.info["routing.absences"] = await self._absences()
        return cached

    async def _absences(self) -> Mapping[str, Sequence[Absence]]:
        yesterday = (utcnow() - timedelta(days=1)).date()
        rows = await self.session.scalars(select(OwnerAbsence).where(OwnerAbsence.end >= yesterday))
        found: dict[str, list[Absence]] = {}
        for row in rows:
            found.setdefault(row.owner, []).append(
                Absence(start=row.start, end=row.end, note=row.note)
            )
        return found


def _assigned_here(session: AsyncSession, lead: Lead) -> str | None:
    """The owner of the lead this transaction routed last among the lead's colleagues
    (a batch's earlier leads; written out or not)."""
    colleagues = session.info.get("routing.assigned", {}).get(lead.company_domain, [])
    for lead_id in reversed(colleagues):
        other = session.identity_map.get(identity_key(Lead, lead_id))
        if lead_id != lead.id and isinstance(other, Lead) and other.owner:  # not a queue's
            return other.owner
    return None


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


async def prepare_batch(
    session: AsyncSession, held: Batch, batch: Sequence[Lead], config: Config
) -> None:
    """Before routing a batch: every lead's account; then under the routing lock the
    owners' counts and the pools' turns (``DatabaseState``), and the owners of the
    companies' recent leads (the leads' ``context_of`` reads them from the transaction).
    A statement each."""
    for lead, account in zip(batch, await find_accounts(session, batch), strict=True):
        session.info[("account", lead.id)] = account
    now = utcnow()
    await DatabaseState(session).count_batch(config.owners, now)
    domains = {lead.company_domain for lead in batch if lead.company_domain and not lead.owner}
    since = now - config.routing.sticky_within
    # Enough per company that the batch's own leads (read as the session has them)
    # cannot hide an older colleague.
    owners = await company_owners(session, domains, since, per_company=len(batch) + 1)
    for domain, found in owners.items():
        session.info[("company owners", domain)] = found


async def finish_batch(
    session: AsyncSession, held: Batch, batch: Sequence[Lead], config: Config
) -> None:
    """After routing a batch: write back the pools' turns it moved."""
    await DatabaseState(session).write_turns()


async def _company_owner(
    session: AsyncSession, held: Batch, lead: Lead, domain: str, since: datetime
) -> str | None:
    """The owner of the company's most recent other lead: routed in this transaction
    (a batch's earlier lead), else changed since ``since``."""
    assigned = _assigned_here(session, lead)
    if assigned is not None:
        return assigned
    owners = session.info.get(("company owners", domain))
    if owners is None:
        owners = (await company_owners(session, [domain], since))[domain]
    batch = held.leads
    for lead_id, owner in owners:
        if lead_id == lead.id:
            continue
        if lead_id in batch:  # as the batch has it now (maybe routed elsewhere)
            other = batch[lead_id]
            if other.company_domain != domain or not other.owner:
                continue
            return other.owner
        return owner
    return None


async def context_of(
    session: AsyncSession, held: Batch, lead: Lead, config: Config, now: datetime
) -> Context:
    key = ("account", lead.id)
    account = session.info.pop(key) if key in session.info else await find_account(session, lead)
    account_view = (
        {
            "name": account.name,
            "domain": account.domain,
            "owner": account.owner,
            "country": account.country,
        }
        if account is not None
        else None
    )
    if lead.owner:
        why = "imported contact" if lead.form_key == "import" else "returning lead"
        return Context(lead.owner, why, account_view)
    if lead.company_domain:
        since = now - config.routing.sticky_within
        recent = await _company_owner(session, held, lead, lead.company_domain, since)
        if recent:
            return Context(recent, f"same company ({lead.company_domain})", account_view)
    return Context(None, None, account_view)


async def assign(
    session: AsyncSession, lead: Lead, decision: Decision, *, by: str = "routing"
) -> None:
    lead.owner = decision.owner
    lead.queue = decision.queue
    assigned = session.info.setdefault("routing.assigned", {})  # by company
    assigned.setdefault(lead.company_domain, []).append(lead.id)
    counted: _Counters | None = session.info.get("routing.counters")
    if counted is not None and decision.owner:  # a batch's counts, read before it
        counted.assigned(decision.owner.lower())
    lead.routing_reason = decision.reason() | {"by": by, "at": utcnow().isoformat()}
    session.add(
        Assignment(
            lead_id=lead.id,
            owner=decision.owner.lower() if decision.owner else None,
            queue=decision.queue,
            rule=decision.rule,
            by=by,
        )
    )
    if decision.alert:
        await leads.add_event(
            session,
            lead.id,
            "alert.routing",
            {"alert": decision.alert, "queue": decision.queue, "sentence": decision.sentence},
        )


async def decide(
    session: AsyncSession,
    held: Batch,
    lead: Lead,
    config: Config,
    *,
    exclude: Sequence[str] = (),
) -> Decision:
    now = utcnow()
    view = await view_of(session, held, lead, now)
    context = await context_of(session, held, lead, config, now)
    if context.previous_owner and context.previous_owner.lower() in {e.lower() for e in exclude}:
        context = dataclasses.replace(context, previous_owner=None)
    view = dataclasses.replace(view, account=context.account or {})
    router = Router(config, DatabaseState(session), exclude=exclude)
    return await router.route(view, now, context)


async def route_lead(session: AsyncSession, held: Batch, lead: Lead, config: Config) -> StageResult:
    decision = await decide(session, held, lead, config)
    await assign(session, lead, decision)
    detail: dict[str, Any] = {
        "outcome": "routed",
        "owner": decision.owner,
        "queue": decision.queue,
        "rule": decision.rule,
        "reason": decision.sentence,
    }
    if decision.alert:
        detail["alert"] = decision.alert
    return StageResult(detail)


async def reassign(
    session: AsyncSession, lead: Lead, config: Config, *, why: str, by: str = "routing"
) -> Decision:
    """Give the lead to someone else by the rules (the follow-up SLA calls this when the
    owner missed a deadline): the current owner is not considered again."""
    previous = lead.owner
    decision = await decide(session, Batch(), lead, config, exclude=[previous] if previous else [])
    await assign(session, lead, decision, by=by)
    await leads.add_event(
        session,
        lead.id,
        "lead.reassigned",
        {
            "from": previous,
            "to": decision.owner,
            "queue": decision.queue,
            "why": why,
            "by": by,
            "reason": decision.sentence,
        },
    )
    return decision


async def assign_by_person(
    session: AsyncSession,
    config: Config,
    lead_id: uuid.UUID,
    *,
    owner: str | None,
    queue: str | None,
    why: str,
    by: str,
) -> Lead:
    """A person overrides routing: the reason records who and why."""
    if (owner is None) == (queue is None):
        raise ValidationFailed(
            "Give an owner or a queue.",
            errors=[{"field": "owner", "reason": "give exactly one of owner, queue"}],
        )
    known_queues = {*config.queues, config.routing.fallback_queue, config.routing.nurture_queue}
    if owner is not None and config.owner(owner) is None:
        raise ValidationFailed(
            f"{owner} is not an owner.", errors=[{"field": "owner", "reason": "not an owner"}]
        )
    if queue is not None and queue not in known_queues:
        raise ValidationFailed(
            f"There is no queue {queue!r}.", errors=[{"field": "queue", "reason": "no such queue"}]
        )
    lead = await leads.get(session, lead_id, lock=True)
    if lead is None:
        raise NotFound(f"There is no lead {lead_id}.")
    previous = lead.owner
    chosen = config.owner(owner) if owner else None
    decision = Decision(
        chosen.email if chosen else None,
        queue,
        "manual",
        "direct",
        sentence=f"Assigned by {by}: {why}",
    )
    await assign(session, lead, decision, by=by)
    await leads.add_event(
        session,
        lead.id,
        "lead.assigned",
        {"from": previous, "to": decision.owner, "queue": queue, "why": why, "by": by},
    )
    return lead
