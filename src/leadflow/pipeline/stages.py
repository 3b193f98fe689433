"""The internal stages a lead goes through, in order, in one transaction.

Each stage takes the locked lead, its batch (``leadflow.stage.Batch``) and the
config and returns what it did, for the lead's timeline. Stages are pure of outside
effects: those are separate jobs (``crm.sync``, ...) queued in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from leadflow.dedup.service import dedupe_lead, lock_batch
from leadflow.models import LeadStatus
from leadflow.routing.service import finish_batch, prepare_batch, route_lead
from leadflow.scoring.service import link_batch, score_lead
from leadflow.stage import BatchHook, StageFunction
from leadflow.validation.service import validate_lead


@dataclass(frozen=True, slots=True)
class Stage:
    name: str  # the timeline event is "lead.<name>"
    leaves: LeadStatus
    run: StageFunction
    # Runs once before the stage in a batch of several leads: reads for every lead at
    # once (scoring's browsing, routing's accounts, counts and turns), or takes every
    # lead's locks at once, in one order, so that two batches never wait for each other
    # (dedup). Within the stage a lead reads the batch's earlier leads as the session
    # has them; what else it wrote that the next one reads (StageResult.shared) goes out
    # before it.
    prepare: BatchHook | None = None
    # Runs once after the stage in a batch of several leads (routing writes back the
    # pools' turns the batch moved).
    finish: BatchHook | None = None


STAGES: tuple[Stage, ...] = (
    Stage("validate", LeadStatus.VALIDATED, validate_lead),
    Stage("dedup", LeadStatus.DEDUPLICATED, dedupe_lead, prepare=lock_batch),
    Stage("score", LeadStatus.SCORED, score_lead, prepare=link_batch),
    Stage("route", LeadStatus.ROUTED, route_lead, prepare=prepare_batch, finish=finish_batch),
)

# Statuses from which lead.process (re)starts the stages: a new lead, one left
# between stages, or one whose processing was dead-lettered and is replayed.
# The stages commit together, so starting over is always safe.
STARTABLE = frozenset(
    {
        LeadStatus.RECEIVED.value,
        LeadStatus.VALIDATED.value,
        LeadStatus.DEDUPLICATED.value,
        LeadStatus.SCORED.value,
        LeadStatus.FAILED.value,
    }
)
