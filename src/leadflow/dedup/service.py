"""The ``lead.dedup`` stage: the decision on a new lead, and the merge it may make.

A new lead is compared with the live leads that share a blocking key with it
(see leadflow.dedup.matching) and one decision is taken:

- ``same``: merged into the existing lead, which keeps its id and owner;
- ``possible``: kept apart, linked to it for a person to decide
  (``POST /v1/leads/{id}/merge`` or ``/not-duplicate``, see leadflow.dedup.review);
- ``new``: nobody like it yet.

Two rules come before the score, because a person expects them: the same
email address is the same person, and so is the same phone number unless the
two leads give different email addresses (a shared switchboard). And two
different email addresses are never merged without a person: at best they
are a ``possible`` pair.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Config
from leadflow.dedup import repository
from leadflow.dedup.matching import (
    LEAD_MATCH_FIELDS,
    Field,
    Match,
    Model,
    blocking_keys,
    levels,
    matched_keys,
    prepare,
    score_vector,
)
from leadflow.dedup.repository import Candidate, Found
from leadflow.dedup.survivorship import (
    MERGED_FIELDS,
    merge_fields,
    ownership_of,
    take_owner,
)
from leadflow.leads import repository as leads
from leadflow.models import Lead, LeadMatch, LeadStatus, MatchStatus
from leadflow.stage import Batch, RetryableFailure, StageResult, StateKey

FIELDS: tuple[Field, ...] = tuple(Field(name, kind) for name, kind in LEAD_MATCH_FIELDS.items())
# Two leads taken at random from a database of a million are one person about
# once in a million: the evidence must overcome these odds.
MODEL = Model.default(FIELDS, prior=1e-6)

Prepared = tuple[dict[str, str], set[str]]  # a lead's ``match_values`` and blocking keys
# What ``lock_batch`` read for each lead of a batch, for ``dedupe_lead`` to take; a lead
# whose values changed since (an earlier lead merged into it) is left out, to look up anew.
PREPARED = StateKey[dict[uuid.UUID, Prepared]]("dedup.prepared", dict)
FOUND = StateKey[dict[uuid.UUID, Found]]("dedup.found", dict)


def match_values(lead: Lead | Candidate) -> dict[str, str]:
    """The lead as the matcher reads it: canonical email and phone from the validation step."""
    quality = lead.quality or {}
    values: dict[str, Any] = {name: getattr(lead, name, None) for name in LEAD_MATCH_FIELDS}
    values["email"] = quality.get("email_key") or lead.email
    values["phone"] = quality.get("phone_e164") or lead.phone
    values["domain"] = quality.get("company_domain")
    return prepare(FIELDS, values)


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: str  # same, possible, new
    lead: Lead | Candidate
    match: Match
    rule: str  # why: same_email, same_phone, fuzzy
    keys: list[str]

    def reason(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "matched_keys": self.keys,
            "summary": self.match.summary(),
            **self.match.reason(),
        }


def judge(
    lead: Lead,
    candidate: Lead | Candidate,
    config: Config,
    *,
    prepared: Prepared | None = None,
) -> Verdict:
    """The decision about one pair, with its reason. ``prepared``: the lead's
    ``match_values`` and their ``blocking_keys``, when judging it against many."""
    mine, my_keys = prepared or _prepared(lead)
    theirs = match_values(candidate)
    vector = levels(FIELDS, mine, theirs)
    match = score_vector(MODEL, vector)
    keys = matched_keys(my_keys, blocking_keys(FIELDS, theirs))
    # Two addresses that are not the same key are two addresses, however alike
    # (a colleague's, a typo): a person decides.
    different_emails = bool(mine["email"] and theirs["email"] and mine["email"] != theirs["email"])
    if mine["email"] and mine["email"] == theirs["email"]:
        return Verdict("same", candidate, match, "same_email", keys)
    if mine["phone"] and mine["phone"] == theirs["phone"] and not different_emails:
        return Verdict("same", candidate, match, "same_phone", keys)
    if match.probability >= config.dedup.same_at and not different_emails:
        return Verdict("same", candidate, match, "fuzzy", keys)
    if match.probability >= config.dedup.possible_at:
        rule = "different_emails" if different_emails else "fuzzy"
        return Verdict("possible", candidate, match, rule, keys)
    return Verdict("new", candidate, match, "fuzzy", keys)


def _prepared(lead: Lead) -> Prepared:
    values = match_values(lead)
    return values, blocking_keys(FIELDS, values)


def _verified(lead: Lead) -> frozenset[str]:
    quality = lead.quality or {}
    fields = set()
    if quality.get("email_valid") and quality.get("email_deliverability") != "undeliverable":
        fields.add("email")
    if quality.get("phone_valid"):
        fields.add("phone")
    return frozenset(fields)


async def merge(
    session: AsyncSession,
    batch: Batch,
    survivor: Lead,
    duplicate: Lead,
    config: Config,
    *,
    reason: dict[str, Any],
    probability: float | None,
    decided_by: str | None = None,
) -> dict[str, Any]:
    """Merge ``duplicate`` into ``survivor``: fields by survivorship, submissions, attribution.

    What undoing it needs is kept on the pair's record. Consent records stay
    where they are and are read through ``duplicate_of``, so the ledger keeps
    every entry.
    """
    fields = {name: getattr(survivor, name) for name in MERGED_FIELDS}
    changes = merge_fields(
        fields,
        {name: getattr(duplicate, name) for name in MERGED_FIELDS},
        config.dedup.survivorship,
        config.dedup.default_rule,
        verified=(_verified(survivor), _verified(duplicate)),
    )
    before = {
        "fields": {name: fields[name] for name in changes},
        "keys": {"email_key": survivor.email_key, "phone_key": survivor.phone_key},
        "last_touch": survivor.last_touch,
        "first_touch": survivor.first_touch,
        "status": duplicate.status,
    }
    for name, value in changes.items():
        if name != "owner":
            setattr(survivor, name, value)
    if "owner" in changes:
        before["ownership"] = ownership_of(survivor)
        take_owner(survivor, duplicate, changes["owner"], by=decided_by or "dedup")
    if "email" in changes:
        survivor.email_key = duplicate.email_key
    if "phone" in changes:
        survivor.phone_key = duplicate.phone_key
    survivor.first_touch = survivor.first_touch or duplicate.first_touch
    survivor.last_touch = duplicate.last_touch or survivor.last_touch
    moved = await repository.move_submissions(session, batch, duplicate.id, survivor.id)
    duplicate.duplicate_of = survivor.id
    if duplicate.status != LeadStatus.MERGED.value and decided_by is not None:
        duplicate.set_status(LeadStatus.MERGED)
    record = {**before, "submissions": [str(s) for s in moved], "changed": sorted(changes)}
    await repository.save_match(
        session,
        duplicate.id,
        survivor.id,
        MatchStatus.MERGED,
        probability=probability,
        reason=reason,
        merge=record,
        decided_by=decided_by,
    )
    detail = {"duplicate": str(duplicate.id), "changed_fields": sorted(changes), **reason}
    if decided_by:
        detail["by"] = decided_by
    await leads.add_event(session, survivor.id, "lead.duplicate_merged", detail)
    return {"changed_fields": sorted(changes)}


async def lock_batch(
    session: AsyncSession, batch: Batch, going: Sequence[Lead], config: Config
) -> None:
    """Take the dedup locks of a batch's leads at once, in one order, before any of them
    is deduplicated (taken lead after lead, two batches sharing keys could each hold
    what the other waits for); then store every lead's keys and read every lead's
    candidates, for ``dedupe_lead`` to judge one after the other. A lead's candidates
    may be the batch's earlier leads: they are read as the session has them
    (validated, deduplicated), not as the table does."""
    prepared = batch.state(PREPARED)
    prepared.update((lead.id, _prepared(lead)) for lead in going)
    keys = {key for lead in going for key in prepared[lead.id][1]}
    await repository.lock_keys(session, batch, keys)
    ids = [lead.id for lead in going]
    found = await repository.store_and_find(session, ids, [prepared[i][1] for i in ids])
    batch.state(FOUND).update(found)


async def dedupe_lead(
    session: AsyncSession, batch: Batch, lead: Lead, config: Config
) -> StageResult:
    quality = lead.quality or {}
    lead.email_key = quality.get("email_key")
    lead.phone_key = quality.get("phone_e164")
    prepared = batch.state(PREPARED).pop(lead.id, None)
    values, keys = prepared if prepared is not None else _prepared(lead)
    read = batch.state(FOUND).pop(lead.id, None)  # with its batch
    # The lead's pair records, when known; a batch's earlier leads may have added some
    # since it read them (they are read again then, below).
    paired: set[uuid.UUID] | None
    if read is not None:
        found = await repository.found_for(session, lead.id, read.rows, read.apart)
        paired = None
    else:
        if not repository.holds_locks(batch, keys):  # a batch took them all at once
            await repository.lock_keys(session, batch, keys)
        found, paired = await repository.candidates_and_pairs(session, lead.id, keys, store=True)
        # The batch's leads after it are not deduplicated yet, so not among its candidates
        # (a lead of a batch looking up alone: the batch stored their new keys).
        later = batch.after(lead.id)
        found = [c for c in found if c.id not in later]
    verdicts = [judge(lead, c, config, prepared=(values, keys)) for c in found]
    order = {"same": 2, "possible": 1, "new": 0}
    verdicts.sort(key=lambda v: (order[v.decision], v.match.weight), reverse=True)
    best = verdicts[0] if verdicts else None
    if best is None or best.decision == "new":
        detail: dict[str, Any] = {"outcome": "new", "decision": "new", "candidates": len(verdicts)}
        if best is not None:
            detail["closest"] = {"lead": str(best.lead.id), **best.reason()}
        return StageResult(detail)
    if best.decision == "possible":
        linked = [v for v in verdicts if v.decision == "possible"][:3]
        others = [v.lead.id for v in linked]
        # A new lead has no pair records yet: read them only when there are some.
        known = set(others) if paired is None else paired.intersection(others)
        pairs = await repository.matches_between(session, lead.id, known) if known else {}
        for verdict in linked:
            repository.record_match(
                session,
                pairs.get(verdict.lead.id),
                lead.id,
                verdict.lead.id,
                MatchStatus.POSSIBLE,
                probability=verdict.match.probability,
                reason=verdict.reason(),
            )
            await leads.add_event(
                session,
                verdict.lead.id,
                "lead.possible_duplicate",
                {"lead": str(lead.id), **verdict.reason()},
            )
        detail = {
            "outcome": "new",
            "decision": "possible",
            "possible": [{"lead": str(v.lead.id), **v.reason()} for v in linked],
        }
        return StageResult(detail, shared=True)
    survivor = await repository.lock_lead(session, batch, best.lead.id)
    assert survivor is not None  # found under the dedup locks, and leads are never deleted
    if survivor.duplicate_of is not None:
        # A person merged it into another lead (no dedup locks) after the candidates
        # were read: judge again against the lead that lives on.
        raise RetryableFailure(
            f"lead {survivor.id} was merged into {survivor.duplicate_of} meanwhile; "
            "deduplicating again",
            retry_after=1.0,
        )
    reason = best.reason()
    result = await merge(
        session, batch, survivor, lead, config, reason=reason, probability=best.match.probability
    )
    # The survivor may be a later lead of the batch: it changed, so it looks up anew.
    batch.state(PREPARED).pop(survivor.id, None)
    batch.state(FOUND).pop(survivor.id, None)
    detail = {"outcome": "merged", "decision": "same", "survivor": str(survivor.id)}
    reopen: tuple[uuid.UUID, ...] = ()
    if survivor.status == LeadStatus.IMPORTED.value and lead.status != LeadStatus.IMPORTED.value:
        # A known contact comes in through a form: now a lead to score, route and follow up.
        survivor.set_status(LeadStatus.RECEIVED)
        reopen = (survivor.id,)
        detail["reopened"] = True
    return StageResult(
        {**detail, **reason, **result},
        halt=LeadStatus.MERGED,
        refresh=(survivor.id,),
        reopen=reopen,
        shared=True,
    )


async def survivors(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Lead]:
    """Each lead that exists of ``ids``, or the lead it was merged into, by the id asked."""
    return await repository.survivors(session, ids)


async def pairs_of(session: AsyncSession, lead_id: uuid.UUID) -> Sequence[LeadMatch]:
    """The lead's pair records (possible, merged, kept apart), oldest first."""
    return await repository.matches_of(session, lead_id)
