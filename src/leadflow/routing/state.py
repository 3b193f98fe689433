"""What routing keeps for the length of one transaction (a batch of leads, or one lead)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from leadflow.config.routing import Absence
from leadflow.models import Account
from leadflow.routing.views import RoutingDecision, World
from leadflow.stage import Batch, StateKey


@dataclass(slots=True)
class RoutingBatch:
    """Routing's state in a transaction: the lock it holds, what it read once for all of
    its leads, and the decisions it made so far."""

    locked: bool = False  # the routing lock, held until the transaction ends
    absences: Mapping[str, tuple[Absence, ...]] | None = None  # read once
    # A batch's (``prepare_batch``): every owner's counts and every pool's turn, read
    # under the lock, moving with each decision; the turns it moved, written after it.
    world: World | None = None
    moved: set[str] = field(default_factory=set)
    accounts: dict[uuid.UUID, Account | None] = field(default_factory=dict)  # per lead
    company_owners: dict[str, list[tuple[uuid.UUID, str]]] = field(default_factory=dict)
    # The leads routed so far, per company domain (a later colleague follows them).
    assigned: dict[str | None, list[uuid.UUID]] = field(default_factory=dict)

    def decided(self, lead_id: uuid.UUID, domain: str | None, decision: RoutingDecision) -> None:
        """A lead of the transaction got ``decision``: the batch's world moves on."""
        self.assigned.setdefault(domain, []).append(lead_id)
        if self.world is not None:
            self.world = self.world.after(decision)
            if decision.turn is not None:
                self.moved.add(decision.turn.pool)


ROUTING = StateKey[RoutingBatch]("routing", RoutingBatch)


def routing_batch(held: Batch) -> RoutingBatch:
    """The batch's routing state, created on first use."""
    return held.state(ROUTING)
