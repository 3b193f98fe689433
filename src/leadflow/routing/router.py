"""Who gets a lead, and why (the decision, free of storage).

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
The counters a strategy needs (the round-robin position, each owner's leads
today and open leads) come from a ``State``: PostgreSQL in the pipeline, memory
in dry runs and backtests. In PostgreSQL one lock serialises routing decisions
until their transaction commits, so two workers never hand out the same turn
or the last slot of an owner's capacity twice (routing takes milliseconds; the
lock is held only from the decision to the commit). It is taken before the
first owner is considered: a lead that goes to a queue reads no counter and
raises none (a reassigned lead leaving its owner only lowers that owner's open
count, which makes a concurrent decision more cautious, never less), so it needs
no lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from leadflow.config import Config
from leadflow.config.routing import Absence, Owner, RoutingRule, at_work, local, on_holiday
from leadflow.scoring.engine import LeadView, evaluate


@dataclass(frozen=True, slots=True)
class Load:
    today: int = 0  # leads assigned since the start of the owner's day
    open: int = 0  # leads assigned and not closed


class State(Protocol):
    async def lock(self) -> None:
        """Serialise routing decisions until the transaction ends: what ``loads`` and
        ``turn`` read cannot change before this decision is committed."""
        ...

    async def loads(
        self, owners: Sequence[Owner], now: datetime, *, today: bool = True, open_: bool = True
    ) -> dict[str, Load]:
        """Per owner email (lower case); a count not asked for is 0."""
        ...

    async def turn(self, pool: str) -> int:
        """The pool's round-robin position (locks the pool until the transaction ends)."""
        ...

    async def set_turn(self, pool: str, position: int) -> None: ...

    async def absences(self) -> Mapping[str, Sequence[Absence]]:
        """Out-of-office periods set through the API, per owner email (lower case)."""
        ...


@dataclass(frozen=True, slots=True)
class Context:
    """What the lead's history says: its owner before, and a known account."""

    previous_owner: str | None = None
    previous_reason: str | None = None  # "returning lead", "same account", "imported contact"
    account: Mapping[str, Any] | None = None


@dataclass
class Decision:
    owner: str | None
    queue: str | None
    rule: str
    strategy: str | None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # what was tried before, and why not
    alert: str | None = None
    sentence: str = ""

    def reason(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "strategy": self.strategy,
            "owner": self.owner,
            "queue": self.queue,
            "candidates": self.candidates,
            "steps": self.steps,
            "alert": self.alert,
            "sentence": self.sentence,
        }


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


class Router:
    def __init__(self, config: Config, state: State, *, exclude: Sequence[str] = ()) -> None:
        self.config = config
        self.state = state
        self.exclude = {e.lower() for e in exclude}
        self._absences: Mapping[str, Sequence[Absence]] | None = None
        self._locked = False

    async def _lock(self) -> None:
        """Before the first owner is considered: the absences (read before the lock, to
        keep it short), then the routing lock, then a pool's turn (always in this order)."""
        if self._absences is None:
            self._absences = await self.state.absences()
        if not self._locked:
            await self.state.lock()
            self._locked = True

    async def _available(
        self, owners: Sequence[Owner], now: datetime, *, respect_hours: bool, strategy: str = ""
    ) -> tuple[list[Owner], list[dict[str, Any]], dict[str, Load]]:
        await self._lock()
        assert self._absences is not None
        # Count only what a limit or the strategy reads: counting is the costly part.
        today = strategy == "weighted" or any(o.max_per_day for o in owners)
        open_ = strategy == "least_loaded" or any(o.max_open for o in owners)
        loads = await self.state.loads(owners, now, today=today, open_=open_)
        available: list[Owner] = []
        candidates: list[dict[str, Any]] = []
        for owner in owners:
            key = owner.email.lower()
            load = loads.get(key, Load())
            skipped = (
                "being reassigned away from them"
                if key in self.exclude
                else skip_reason(
                    owner, load, now, self._absences.get(key, ()), respect_hours=respect_hours
                )
            )
            candidates.append(
                {
                    "owner": owner.email,
                    "today": load.today if today else None,
                    "open": load.open if open_ else None,
                    "skipped": skipped,
                }
            )
            if skipped is None:
                available.append(owner)
        return available, candidates, loads

    async def _pick(
        self,
        pool: str,
        members: Sequence[Owner],
        rule: RoutingRule,
        now: datetime,
        view: LeadView,
    ) -> tuple[Owner | None, list[dict[str, Any]]]:
        await self._lock()
        position = await self.state.turn(pool)
        available, candidates, loads = await self._available(
            members, now, respect_hours=rule.respect_hours, strategy=rule.strategy
        )
        for requirement in rule.require:
            wanted = _wanted(requirement, view)
            for owner, candidate in zip(members, candidates, strict=True):
                if candidate["skipped"] is None and not _covers(owner, requirement, wanted):
                    candidate["skipped"] = f"does not cover {requirement} {wanted or '(unknown)'}"
        covered = {c["owner"] for c in candidates if c["skipped"] is None}
        available = [o for o in available if o.email in covered]
        if not available:
            return None, candidates
        if rule.strategy == "direct":
            return available[0], candidates
        order = [m.email.lower() for m in members]
        # Members in turn order, starting after the last one served.
        rotated = sorted(
            available, key=lambda o: (order.index(o.email.lower()) - position - 1) % len(order)
        )
        if rule.strategy == "round_robin":
            chosen = rotated[0]
        elif rule.strategy == "weighted":
            chosen = min(rotated, key=lambda o: loads.get(o.email.lower(), Load()).today / o.weight)
        else:  # least_loaded
            chosen = min(rotated, key=lambda o: loads.get(o.email.lower(), Load()).open)
        await self.state.set_turn(pool, order.index(chosen.email.lower()))
        return chosen, candidates

    async def route(self, view: LeadView, now: datetime, context: Context = Context()) -> Decision:
        config = self.config
        routing = config.routing
        steps: list[str] = []
        segment = view.fields.get("segment")
        action = config.scoring.segments.get(segment) if segment else None
        if action is not None and not action.to_person:
            return Decision(
                None,
                routing.nurture_queue,
                "segment",
                None,
                sentence=f"Queue {routing.nurture_queue!r}: {segment} leads go to no person.",
            )

        if context.previous_owner:
            owner = config.owner(context.previous_owner)
            if owner is None:
                steps.append(f"previous owner {context.previous_owner} is no longer an owner")
            else:
                available, candidates, _ = await self._available([owner], now, respect_hours=False)
                if available:
                    why = context.previous_reason or "returning lead"
                    return Decision(
                        owner.email,
                        None,
                        "sticky",
                        "direct",
                        candidates,
                        steps,
                        sentence=f"Back to {owner.email}, who had this person before ({why}).",
                    )
                steps.append(f"previous owner {owner.email} skipped: {candidates[0]['skipped']}")

        account = context.account or {}
        if routing.account_owner_first and account.get("owner"):
            owner = config.owner(str(account["owner"]))
            if owner is None:
                steps.append(f"account owner {account['owner']} is not an owner here")
            else:
                available, candidates, _ = await self._available([owner], now, respect_hours=False)
                if available:
                    return Decision(
                        owner.email,
                        None,
                        "account",
                        "direct",
                        candidates,
                        steps,
                        sentence=f"To {owner.email}, owner of the account {account.get('name')}.",
                    )
                steps.append(f"account owner {owner.email} skipped: {candidates[0]['skipped']}")

        for rule in routing.rules:
            if rule.when is not None and not evaluate(rule.when, view, now).matched:
                continue
            target = rule.to
            if target.queue is not None:
                queue_config = config.queues.get(target.queue)
                alert = (
                    f"lead in queue {target.queue}" if queue_config and queue_config.alert else None
                )
                return Decision(
                    None,
                    target.queue,
                    rule.id,
                    None,
                    [],
                    steps,
                    alert,
                    sentence=f"Queue {target.queue!r} by rule {rule.id!r}.",
                )
            if target.owner is not None:
                owner = config.owner(target.owner)
                assert owner is not None  # checked with the config
                members, pool = [owner], f"owner:{owner.email.lower()}"
            else:
                assert target.team is not None
                team = config.teams[target.team]
                members = [o for m in team.members if (o := config.owner(m)) is not None]
                pool = f"team:{target.team}"
            chosen, candidates = await self._pick(pool, members, rule, now, view)
            if chosen is not None:
                skipped = [c for c in candidates if c["skipped"]]
                also = f"; skipped {len(skipped)} unavailable" if skipped else ""
                where = f"team {target.team!r}" if target.team else "owner"
                return Decision(
                    chosen.email,
                    None,
                    rule.id,
                    rule.strategy,
                    candidates,
                    steps,
                    sentence=f"To {chosen.email} by rule {rule.id!r} ({where}, "
                    f"{rule.strategy.replace('_', ' ')}{also}).",
                )
            steps.append(f"rule {rule.id!r}: nobody in {pool} is available")
            queue = routing.fallback_queue
            return Decision(
                None,
                queue,
                rule.id,
                rule.strategy,
                candidates,
                steps,
                alert=f"no one available in {pool}",
                sentence=f"Queue {queue!r}: rule {rule.id!r} matched but nobody in "
                f"{pool} is available.",
            )

        queue = routing.fallback_queue
        return Decision(
            None,
            queue,
            "fallback",
            None,
            [],
            steps,
            alert="no routing rule matched",
            sentence=f"Queue {queue!r}: no routing rule matched.",
        )


class MemoryState:
    """Counters in memory: for dry runs and backtests (nothing is stored)."""

    def __init__(self) -> None:
        self.today: dict[str, int] = {}
        self.open: dict[str, int] = {}
        self.turns: dict[str, int] = {}
        self.off: dict[str, list[Absence]] = {}

    async def loads(
        self, owners: Sequence[Owner], now: datetime, *, today: bool = True, open_: bool = True
    ) -> dict[str, Load]:
        return {
            o.email.lower(): Load(
                self.today.get(o.email.lower(), 0), self.open.get(o.email.lower(), 0)
            )
            for o in owners
        }

    async def lock(self) -> None:
        return None

    async def turn(self, pool: str) -> int:
        return self.turns.get(pool, -1)

    async def set_turn(self, pool: str, position: int) -> None:
        self.turns[pool] = position

    async def absences(self) -> Mapping[str, Sequence[Absence]]:
        return self.off

    def assigned(self, owner: str) -> None:
        key = owner.lower()
        self.today[key] = self.today.get(key, 0) + 1
        self.open[key] = self.open.get(key, 0) + 1
