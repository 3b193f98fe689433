"""The ``lead.route`` stage and people's reassignments: read the views, ``decide``, write.

The routing lock serialises routing decisions until their transaction commits, so
two workers never hand out the same turn or the last slot of an owner's capacity
twice (routing takes milliseconds; the lock is held only from the decision to the
commit). It is taken before the counts are read, and only when the decision may
consider an owner (``rules.considered``): a lead that goes to a queue reads no
count and raises none (a reassigned lead leaving its owner only lowers that
owner's open count, which makes a concurrent decision more cautious, never less).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Config
from leadflow.config.routing import Absence, Owner
from leadflow.errors import NotFound, ValidationFailed
from leadflow.jobs import defer_named, queue_webhooks
from leadflow.leads import repository as leads
from leadflow.models import Account, Lead, OwnerAbsence
from leadflow.models.base import utcnow
from leadflow.routing import repository
from leadflow.routing.repository import company_owners, find_account, find_accounts
from leadflow.routing.rules import considered, decide, skip_reason
from leadflow.routing.state import routing_batch
from leadflow.routing.views import AccountView, Load, RoutingDecision, RoutingLead, World
from leadflow.scoring.service import view_of
from leadflow.stage import Batch, StageResult

__all__ = ["find_account", "find_accounts"]  # the accounts of leads, for the CLI and tests


async def _absences(session: AsyncSession, held: Batch) -> Mapping[str, tuple[Absence, ...]]:
    """Read once per transaction (a batch's leads all see the same)."""
    state = routing_batch(held)
    if state.absences is None:
        state.absences = await repository.absences(session)
    return state.absences


async def _lock(session: AsyncSession, held: Batch, *, flush: bool = True) -> None:
    state = routing_batch(held)
    if state.locked:
        return  # held since an earlier lead of the transaction
    if flush:  # what is pending first: the lock is held until commit, so keep it short
        await session.flush()
    await repository.lock(session)
    state.locked = True


async def world_view(
    session: AsyncSession, held: Batch, lead: RoutingLead, config: Config, now: datetime
) -> World:
    """The world the lead is decided against: the batch's, moved by its earlier leads;
    else what the decision may consider (absences, then the lock, then the counts)."""
    batch = routing_batch(held).world
    if batch is not None:
        return dataclasses.replace(batch, now=now)
    needs = considered(lead, config, now)
    if not needs.owners:
        return World(now=now)
    absences = await _absences(session, held)
    await _lock(session, held)
    loads = await repository.loads(session, needs.owners, now, today=needs.today, open_=needs.open)
    for owner in repository.pending_assignments(session):  # this transaction's, not written
        if owner in loads:
            loads[owner] = Load(loads[owner].today + 1, loads[owner].open + 1)
    turns = await repository.turns(session, [needs.pool]) if needs.pool else {}
    return World(now=now, loads=loads, turns=turns, absences=absences)


def account_view(account: Account | None) -> AccountView | None:
    if account is None:
        return None
    return AccountView(
        name=account.name, domain=account.domain, owner=account.owner, country=account.country
    )


def _assigned_here(held: Batch, lead: Lead) -> str | None:
    """The owner of the lead this transaction routed last among the lead's colleagues
    (a batch's earlier leads; written out or not)."""
    colleagues = routing_batch(held).assigned.get(lead.company_domain, [])
    for lead_id in reversed(colleagues):
        other = held.leads.get(lead_id)
        if lead_id != lead.id and isinstance(other, Lead) and other.owner:  # not a queue's
            return other.owner
    return None


async def _company_owner(
    session: AsyncSession, held: Batch, lead: Lead, domain: str, since: datetime
) -> str | None:
    """The owner of the company's most recent other lead: routed in this transaction
    (a batch's earlier lead), else changed since ``since``."""
    assigned = _assigned_here(held, lead)
    if assigned is not None:
        return assigned
    owners = routing_batch(held).company_owners.get(domain)
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


async def lead_view(
    session: AsyncSession,
    held: Batch,
    lead: Lead,
    config: Config,
    now: datetime,
    *,
    exclude: Sequence[str] = (),
) -> RoutingLead:
    """What routing reads of the lead: the rules' view, its previous owner (its own, a
    returning person's; else a colleague's), and its company's account."""
    view = await view_of(session, held, lead, now)
    accounts = routing_batch(held).accounts
    account = accounts.pop(lead.id) if lead.id in accounts else await find_account(session, lead)
    previous: str | None = None
    why: str | None = None
    if lead.owner:
        previous = lead.owner
        why = "imported contact" if lead.form_key == "import" else "returning lead"
    elif lead.company_domain:
        since = now - config.routing.sticky_within
        previous = await _company_owner(session, held, lead, lead.company_domain, since)
        why = f"same company ({lead.company_domain})" if previous else None
    return RoutingLead.of(
        view,
        previous_owner=previous,
        previous_reason=why,
        account=account_view(account),
        exclude=frozenset(e.lower() for e in exclude),
    )


async def prepare_batch(
    session: AsyncSession, held: Batch, batch: Sequence[Lead], config: Config
) -> None:
    """Before routing a batch: every lead's account and the absences; then under the
    routing lock every owner's counts and every pool's turn (the batch's world), and the
    owners of the companies' recent leads (``lead_view`` reads them from the
    transaction). A statement each."""
    state = routing_batch(held)
    for lead, account in zip(batch, await find_accounts(session, batch), strict=True):
        state.accounts[lead.id] = account
    now = utcnow()
    absences = await _absences(session, held)
    await _lock(session, held, flush=False)  # nothing written first: the commit writes the batch
    loads = await repository.loads(session, config.owners, now, today=True, open_=True)
    turns = await repository.turns(session)
    state.world = World(now=now, loads=loads, turns=turns, absences=absences)
    state.moved.clear()
    domains = {lead.company_domain for lead in batch if lead.company_domain and not lead.owner}
    since = now - config.routing.sticky_within
    # Enough per company that the batch's own leads (read as the session has them)
    # cannot hide an older colleague.
    owners = await company_owners(session, domains, since, per_company=len(batch) + 1)
    state.company_owners.update(owners)


async def finish_batch(
    session: AsyncSession, held: Batch, batch: Sequence[Lead], config: Config
) -> None:
    """After routing a batch: write back the pools' turns it moved, in one statement."""
    state = routing_batch(held)
    if state.world is not None:
        await repository.write_turns(
            session, {pool: state.world.turn(pool) for pool in state.moved}
        )
    state.world = None
    state.moved.clear()


async def assign(
    session: AsyncSession,
    held: Batch,
    lead: Lead,
    decision: RoutingDecision,
    *,
    by: str = "routing",
) -> None:
    """Give the lead what the decision says, with the reason, and count it."""
    state = routing_batch(held)
    state.decided(lead.id, lead.company_domain, decision)
    if state.world is None and decision.turn is not None:  # a batch writes its turns after
        await repository.write_turns(session, {decision.turn.pool: decision.turn.position})
    reason = decision.reason()
    reason["by"] = by
    reason["at"] = utcnow().isoformat()
    lead.set_ownership(owner=decision.owner, queue=decision.queue, reason=reason)
    repository.add_assignment(session, lead.id, decision.owner, decision.queue, decision.rule, by)
    if decision.alert:
        await leads.add_event(
            session,
            lead.id,
            "alert.routing",
            {"alert": decision.alert, "queue": decision.queue, "sentence": decision.sentence},
        )
        # Sent by a job once this transaction commits (a rolled-back routing alerts no one).
        await defer_named(
            session,
            "alert.send",
            kind="triage",
            message=f"{decision.alert}: {decision.sentence}",
            detail={"lead_id": str(lead.id), "queue": decision.queue},
        )


async def decide_for(
    session: AsyncSession,
    held: Batch,
    lead: Lead,
    config: Config,
    *,
    exclude: Sequence[str] = (),
) -> RoutingDecision:
    """The decision for a stored lead, against the world as the transaction sees it."""
    now = utcnow()
    view = await lead_view(session, held, lead, config, now, exclude=exclude)
    return decide(view, await world_view(session, held, view, config, now), config)


async def route_lead(session: AsyncSession, held: Batch, lead: Lead, config: Config) -> StageResult:
    decision = await decide_for(session, held, lead, config)
    await assign(session, held, lead, decision)
    detail: dict[str, Any] = {
        "outcome": "routed",
        "owner": decision.owner,
        "queue": decision.queue,
        "rule": decision.rule,
        "reason": decision.sentence,
    }
    if decision.alert:
        detail["alert"] = decision.alert
    await queue_webhooks(
        session, config, "lead.routed", lead.id, {"lead_id": str(lead.id), **detail}
    )
    return StageResult(detail)


async def reassign(
    session: AsyncSession, lead: Lead, config: Config, *, why: str, by: str = "routing"
) -> RoutingDecision:
    """Give the lead to someone else by the rules (the follow-up SLA calls this when the
    owner missed a deadline): the current owner is not considered again."""
    previous = lead.owner
    held = Batch()  # a transaction of its own, outside the pipeline's batches
    decision = await decide_for(session, held, lead, config, exclude=[previous] if previous else [])
    await assign(session, held, lead, decision, by=by)
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
    chosen = config.owner(owner) if owner is not None else None
    if owner is not None and chosen is None:
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
    decision = RoutingDecision(
        owner=chosen.email if chosen else None,
        queue=queue,
        rule="manual",
        strategy="direct",
        sentence=f"Assigned by {by}: {why}",
    )
    await assign(session, Batch(), lead, decision, by=by)
    await leads.add_event(
        session,
        lead.id,
        "lead.assigned",
        {"from": previous, "to": decision.owner, "queue": queue, "why": why, "by": by},
    )
    return lead


@dataclass(frozen=True, slots=True)
class OwnerNow:
    """An owner of the config as routing sees them now."""

    owner: Owner
    load: Load
    unavailable_because: str | None  # working hours included
    absences: tuple[OwnerAbsence, ...]  # set through the API, earliest first


async def owners_now(session: AsyncSession, config: Config) -> list[OwnerNow]:
    """Every owner of the config with their load and whether they can take a lead now."""
    now = utcnow()
    loads = await repository.loads(session, config.owners, now, today=True, open_=True)
    absences = await _absences(session, Batch())
    stored: dict[str, list[OwnerAbsence]] = {}
    for row in await repository.stored_absences(session):
        stored.setdefault(row.owner, []).append(row)
    out = []
    for owner in config.owners:
        key = owner.email.lower()
        load = loads.get(key, Load())
        why = skip_reason(owner, load, now, absences.get(key, ()), respect_hours=True)
        out.append(OwnerNow(owner, load, why, tuple(stored.get(key, ()))))
    return out


async def add_absence(
    session: AsyncSession, owner: str, start: date, end: date, note: str | None
) -> OwnerAbsence:
    """The owner (lower case) is away from ``start`` to ``end``: routing skips them."""
    Absence(start=start, end=end, note=note)  # the config's own checks
    return await repository.add_absence(session, owner, start, end, note)


async def end_absence(session: AsyncSession, owner: str, absence_id: int) -> bool:
    """Back earlier than planned; whether the owner had that period."""
    return await repository.delete_absence(session, owner, absence_id)


async def dry_run(session: AsyncSession, lead: RoutingLead, config: Config) -> RoutingDecision:
    """The decision for a lead that is not stored (``leadflow route``); the caller rolls
    the transaction back."""
    now = utcnow()
    return decide(lead, await world_view(session, Batch(), lead, config, now), config)
