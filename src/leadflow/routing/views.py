"""What routing reads to decide (a lead, the world around it) and what it decides (pure values).

The lead view is what is known of the lead and its history (its previous owner,
the account of its company); the world view is what is known of the owners now
(their counts, the pools' round-robin turns, their absences). Both are frozen:
a batch decides its leads one after the other against a world that moves, and
``World.after`` is the world once a decision is made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadflow.config.routing import Absence
from leadflow.models.lead import ConsideredOwner, RoutingReason
from leadflow.scoring.engine import LeadView


@dataclass(frozen=True, slots=True)
class Load:
    today: int = 0  # leads assigned since the start of the owner's day
    open: int = 0  # leads assigned and not closed


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountView:
    """The known account of the lead's company."""

    name: str | None = None
    domain: str | None = None
    owner: str | None = None
    country: str | None = None

    def as_mapping(self) -> dict[str, Any]:
        """As the rules' conditions read it (``account.owner``, ...)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingLead:
    """The lead as routing reads it: what the rules see, and its history."""

    view: LeadView
    previous_owner: str | None = None  # a returning person's owner, a colleague's
    previous_reason: str | None = None  # "returning lead", "same company (...)", ...
    account: AccountView | None = None
    exclude: frozenset[str] = frozenset()  # owners (lower case) it is taken away from

    @classmethod
    def of(
        cls,
        view: LeadView,
        *,
        previous_owner: str | None = None,
        previous_reason: str | None = None,
        account: AccountView | None = None,
        exclude: frozenset[str] = frozenset(),
    ) -> RoutingLead:
        """The rules' view with the account in it (``account.*`` conditions)."""
        mapping = account.as_mapping() if account is not None else {}
        return cls(
            view=dataclasses.replace(view, account=mapping),
            previous_owner=previous_owner,
            previous_reason=previous_reason,
            account=account,
            exclude=exclude,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class World:
    """The owners as routing finds them at ``now``; an owner or pool not listed has no
    leads and no turn yet."""

    now: datetime
    loads: Mapping[str, Load] = field(default_factory=dict)  # per owner email, lower case
    turns: Mapping[str, int] = field(default_factory=dict)  # a pool's last member served
    absences: Mapping[str, tuple[Absence, ...]] = field(default_factory=dict)  # API's

    def load(self, email: str) -> Load:
        return self.loads.get(email.lower(), Load())

    def turn(self, pool: str) -> int:
        return self.turns.get(pool, -1)

    def after(self, decision: RoutingDecision) -> World:
        """The world once the decision is made: its owner has one lead more today and
        open, and its pool's turn has moved on."""
        loads, turns = self.loads, self.turns
        if decision.owner is not None:
            key = decision.owner.lower()
            before = self.load(key)
            loads = {**loads, key: Load(before.today + 1, before.open + 1)}
        if decision.turn is not None:
            turns = {**turns, decision.turn.pool: decision.turn.position}
        return dataclasses.replace(self, loads=loads, turns=turns)


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """An owner routing considered: the counts it read (None: not needed) and why they
    were skipped (None: available)."""

    owner: str
    today: int | None
    open: int | None
    skipped: str | None

    def as_json(self) -> ConsideredOwner:
        return ConsideredOwner(
            owner=self.owner, today=self.today, open=self.open, skipped=self.skipped
        )


@dataclass(frozen=True, slots=True)
class Turn:
    """A pool's round-robin position after a decision: the member served last."""

    pool: str
    position: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingDecision:
    """Who gets the lead (an owner, or else a queue) and every reason why."""

    owner: str | None = None
    queue: str | None = None
    rule: str  # a rule's id, or sticky, account, segment, fallback, manual
    strategy: str | None = None
    candidates: tuple[Candidate, ...] = ()  # the owners the winning step considered
    steps: tuple[str, ...] = ()  # what was tried before, and why not
    alert: str | None = None
    sentence: str
    turn: Turn | None = None  # the round-robin turn it took

    def __post_init__(self) -> None:
        if (self.owner is None) == (self.queue is None):
            raise ValueError(
                f"a decision gives an owner or a queue, exactly one "
                f"(rule {self.rule!r}: owner={self.owner!r}, queue={self.queue!r})"
            )
        if not self.sentence:
            raise ValueError(f"a decision says why (rule {self.rule!r})")

    def reason(self) -> RoutingReason:
        """As stored on the lead (``routing_reason``; who and when are added then)."""
        return RoutingReason(
            rule=self.rule,
            strategy=self.strategy,
            owner=self.owner,
            queue=self.queue,
            candidates=[c.as_json() for c in self.candidates],
            steps=list(self.steps),
            alert=self.alert,
            sentence=self.sentence,
        )
