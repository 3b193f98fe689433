"""Who gets a lead, and why: ``decide`` (pure: a lead view and a world view in, a decision out).

In order, the first that gives an answer wins:

1. the lead's segment says it is not for a person (``to_person: false``):
   the nurture queue;
2. stickiness: the lead's previous owner (a returning person, a known contact)
   or the owner of a recent lead of the same company, if available;
3. the owner of the known account the company matches;
4. the routing rules, in order: the first whose condition matches picks an
   owner from its target (an owner, a team with a strategy, or a queue);
5. the fallback queue, with an alert. A lead is never left unassigned.

Every owner considered is listed in the reason with why they were skipped
(inactive, out of office, public holiday, outside working hours, at capacity).
The counts a strategy needs (the round-robin position, each owner's leads today
and open leads) come from the ``World``: read from PostgreSQL by the service (see
``considered`` for what a decision may read), kept in memory by dry runs and
backtests. A lead that goes to a queue reads no count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from leadflow.config import Config
from leadflow.config.routing import Absence, Owner, RoutingRule, at_work, local, on_holiday
from leadflow.routing.views import Candidate, Load, RoutingDecision, RoutingLead, Turn, World
from leadflow.scoring.engine import LeadView, evaluate


def skip_reason(
    owner: Owner,
    load: Load,
    now: datetime,
    absences: Sequence[Absence],
    *,
    respect_hours: bool,
) -> str | None:
    """Why the owner cannot take a lead now, or None when they can."""
    if not owner.active:
        return "inactive"
    today: date = local(owner, now).date()
    for absence in (*owner.out_of_office, *absences):
        if absence.start <= today <= absence.end:
            note = f" ({absence.note})" if absence.note else ""
            return f"out of office until {absence.end.isoformat()}{note}"
    holiday = on_holiday(owner, today)
    if holiday:
        return f"public holiday in {owner.holidays}: {holiday}"
    if respect_hours and not at_work(owner, now):
        moment = local(owner, now)
        return (
            f"outside working hours ({owner.hours}, {owner.timezone}; "
            f"there it is {moment:%a %H:%M})"
        )
    if owner.max_per_day is not None and load.today >= owner.max_per_day:
        return f"at capacity: {load.today} of {owner.max_per_day} new leads today"
    if owner.max_open is not None and load.open >= owner.max_open:
        return f"at capacity: {load.open} of {owner.max_open} open leads"
    return None


def _wanted(requirement: str, view: LeadView) -> str | None:
    if requirement == "country":
        value = view.quality.get("country") or view.fields.get("country")
    elif requirement == "language":
        value = view.quality.get("language")
    else:
        value = view.fields.get("product_interest")
    return str(value) if value else None


def _covers(owner: Owner, requirement: str, wanted: str | None) -> bool:
    """Whether the owner covers the lead's value; nothing known about the lead: no one does."""
    if wanted is None:
        return False
    if requirement == "country":
        return wanted.upper() in {c.upper() for c in owner.countries}
    if requirement == "language":
        return wanted.lower() in {lang.lower() for lang in owner.languages}
    return any(p.lower() in wanted.lower() for p in owner.products)


def counts_needed(owners: Sequence[Owner], strategy: str = "") -> tuple[bool, bool]:
    """Which counts (today, open) a choice among ``owners`` reads: only what a limit or
    the strategy needs (counting is the costly part of routing)."""
    today = strategy == "weighted" or any(o.max_per_day for o in owners)
    open_ = strategy == "least_loaded" or any(o.max_open for o in owners)
    return today, open_


@dataclass(frozen=True, slots=True)
class Considered:
    """What a decision may read of the world: these owners' counts, this pool's turn."""

    owners: tuple[Owner, ...] = ()
    pool: str | None = None
    today: bool = False
    open: bool = False


def _sticky_owner(lead: RoutingLead) -> str | None:
    previous = lead.previous_owner
    return previous if previous and previous.lower() not in lead.exclude else None


def _for_nobody(lead: RoutingLead, config: Config) -> str | None:
    """The lead's segment, when its segment goes to no person."""
    segment = lead.view.fields.get("segment")
    action = config.scoring.segments.get(segment) if segment else None
    return segment if action is not None and not action.to_person else None


def _first_rule(lead: RoutingLead, config: Config, now: datetime) -> RoutingRule | None:
    for rule in config.routing.rules:
        if rule.when is None or evaluate(rule.when, lead.view, now).matched:
            return rule
    return None


def _pool_of(rule: RoutingRule, config: Config) -> tuple[str, list[Owner]]:
    """The rule's pool (its name for the round-robin turn) and its members, in order."""
    target = rule.to
    if target.owner is not None:
        owner = config.owner(target.owner)
        assert owner is not None  # checked with the config
        return f"owner:{owner.email.lower()}", [owner]
    assert target.team is not None
    team = config.teams[target.team]
    return f"team:{target.team}", [o for m in team.members if (o := config.owner(m)) is not None]


def considered(lead: RoutingLead, config: Config, now: datetime) -> Considered:
    """The owners ``decide`` may look at for this lead, and the pool whose turn it may
    take: so that the service reads (and locks) only that, and nothing for a queue."""
    if _for_nobody(lead, config) is not None:
        return Considered()
    owners: dict[str, Owner] = {}
    sticky = _sticky_owner(lead)
    account_owner = lead.account.owner if lead.account else None
    for email in (sticky, account_owner if config.routing.account_owner_first else None):
        owner = config.owner(email) if email else None
        if owner is not None:
            owners[owner.email.lower()] = owner
    rule = _first_rule(lead, config, now)
    pool, strategy = None, ""
    if rule is not None and rule.to.queue is None:
        pool, members = _pool_of(rule, config)
        strategy = rule.strategy
        owners.update((m.email.lower(), m) for m in members)
    today, open_ = counts_needed(list(owners.values()), strategy)
    return Considered(tuple(owners.values()), pool, today, open_)


def _available(
    owners: Sequence[Owner],
    lead: RoutingLead,
    world: World,
    *,
    respect_hours: bool,
    strategy: str = "",
) -> tuple[list[Owner], list[Candidate]]:
    today, open_ = counts_needed(owners, strategy)
    available: list[Owner] = []
    candidates: list[Candidate] = []
    for owner in owners:
        key = owner.email.lower()
        counted = world.load(key)
        load = Load(counted.today if today else 0, counted.open if open_ else 0)
        skipped = (
            "being reassigned away from them"
            if key in lead.exclude
            else skip_reason(
                owner, load, world.now, world.absences.get(key, ()), respect_hours=respect_hours
            )
        )
        candidates.append(
            Candidate(
                owner=owner.email,
                today=load.today if today else None,
                open=load.open if open_ else None,
                skipped=skipped,
            )
        )
        if skipped is None:
            available.append(owner)
    return available, candidates


def _pick(
    pool: str, members: Sequence[Owner], rule: RoutingRule, lead: RoutingLead, world: World
) -> tuple[Owner | None, list[Candidate], Turn | None]:
    """The member the rule's strategy gives the lead to, the members considered, and
    the pool's turn after it (None: not moved)."""
    available, candidates = _available(
        members, lead, world, respect_hours=rule.respect_hours, strategy=rule.strategy
    )
    for requirement in rule.require:
        wanted = _wanted(requirement, lead.view)
        for i, (owner, candidate) in enumerate(zip(members, candidates, strict=True)):
            if candidate.skipped is None and not _covers(owner, requirement, wanted):
                why = f"does not cover {requirement} {wanted or '(unknown)'}"
                candidates[i] = Candidate(
                    owner=candidate.owner, today=candidate.today, open=candidate.open, skipped=why
                )
    covered = {c.owner for c in candidates if c.skipped is None}
    available = [o for o in available if o.email in covered]
    if not available:
        return None, candidates, None
    if rule.strategy == "direct":
        return available[0], candidates, None
    order = [m.email.lower() for m in members]
    position = world.turn(pool)
    # Members in turn order, starting after the last one served.
    rotated = sorted(
        available, key=lambda o: (order.index(o.email.lower()) - position - 1) % len(order)
    )
    if rule.strategy == "round_robin":
        chosen = rotated[0]
    elif rule.strategy == "weighted":
        chosen = min(rotated, key=lambda o: world.load(o.email).today / o.weight)
    else:  # least_loaded
        chosen = min(rotated, key=lambda o: world.load(o.email).open)
    return chosen, candidates, Turn(pool, order.index(chosen.email.lower()))


def _one_owner(
    email: str, lead: RoutingLead, config: Config, world: World, what: str, missing: str
) -> tuple[Owner | None, tuple[Candidate, ...], str | None]:
    """The previous or the account owner, if available; else why not (a step)."""
    owner = config.owner(email)
    if owner is None:
        return None, (), f"{what} {email} {missing}"
    available, candidates = _available([owner], lead, world, respect_hours=False)
    if available:
        return owner, tuple(candidates), None
    return None, (), f"{what} {owner.email} skipped: {candidates[0].skipped}"


def decide(lead: RoutingLead, world: World, config: Config) -> RoutingDecision:
    """Who gets the lead, and why (see the module's docstring for the order)."""
    routing = config.routing
    steps: list[str] = []
    segment = _for_nobody(lead, config)
    if segment is not None:
        return RoutingDecision(
            queue=routing.nurture_queue,
            rule="segment",
            sentence=f"Queue {routing.nurture_queue!r}: {segment} leads go to no person.",
        )

    sticky = _sticky_owner(lead)
    if sticky:
        owner, candidates, step = _one_owner(
            sticky, lead, config, world, "previous owner", "is no longer an owner"
        )
        if owner is not None:
            why = lead.previous_reason or "returning lead"
            return RoutingDecision(
                owner=owner.email,
                rule="sticky",
                strategy="direct",
                candidates=candidates,
                steps=tuple(steps),
                sentence=f"Back to {owner.email}, who had this person before ({why}).",
            )
        assert step is not None
        steps.append(step)

    account = lead.account
    if routing.account_owner_first and account is not None and account.owner:
        owner, candidates, step = _one_owner(
            account.owner, lead, config, world, "account owner", "is not an owner here"
        )
        if owner is not None:
            return RoutingDecision(
                owner=owner.email,
                rule="account",
                strategy="direct",
                candidates=candidates,
                steps=tuple(steps),
                sentence=f"To {owner.email}, owner of the account {account.name}.",
            )
        assert step is not None
        steps.append(step)

    rule = _first_rule(lead, config, world.now)
    if rule is None:
        return RoutingDecision(
            queue=routing.fallback_queue,
            rule="fallback",
            steps=tuple(steps),
            alert="no routing rule matched",
            sentence=f"Queue {routing.fallback_queue!r}: no routing rule matched.",
        )
    return _by_rule(rule, lead, world, config, steps)


def _by_rule(
    rule: RoutingRule, lead: RoutingLead, world: World, config: Config, steps: list[str]
) -> RoutingDecision:
    target = rule.to
    if target.queue is not None:
        queue_config = config.queues.get(target.queue)
        return RoutingDecision(
            queue=target.queue,
            rule=rule.id,
            steps=tuple(steps),
            alert=f"lead in queue {target.queue}" if queue_config and queue_config.alert else None,
            sentence=f"Queue {target.queue!r} by rule {rule.id!r}.",
        )
    pool, members = _pool_of(rule, config)
    chosen, candidates, turn = _pick(pool, members, rule, lead, world)
    if chosen is not None:
        skipped = [c for c in candidates if c.skipped]
        also = f"; skipped {len(skipped)} unavailable" if skipped else ""
        # a rule that names one owner has no strategy to speak of
        how = (
            f"team {target.team!r}, {rule.strategy.replace('_', ' ')}"
            if target.team
            else "its owner"
        )
        return RoutingDecision(
            owner=chosen.email,
            rule=rule.id,
            strategy=rule.strategy,
            candidates=tuple(candidates),
            steps=tuple(steps),
            sentence=f"To {chosen.email} by rule {rule.id!r} ({how}{also}).",
            turn=turn,
        )
    queue = config.routing.fallback_queue
    return RoutingDecision(
        queue=queue,
        rule=rule.id,
        strategy=rule.strategy,
        candidates=tuple(candidates),
        steps=(*steps, f"rule {rule.id!r}: nobody in {pool} is available"),
        alert=f"no one available in {pool}",
        sentence=f"Queue {queue!r}: rule {rule.id!r} matched but nobody in {pool} is available.",
    )
