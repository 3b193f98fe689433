"""The ``lead.score`` stage, and re-scoring when behaviour or the rules change."""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Config
from leadflow.config.scoring import LEAD_EXTRA
from leadflow.fields import LEAD_FIELDS
from leadflow.leads import repository as leads
from leadflow.models import Lead
from leadflow.models.base import utcnow
from leadflow.scoring import repository
from leadflow.scoring.engine import Activity, LeadView, ScoreResult, ruleset_version, score
from leadflow.stage import Batch, StageResult, StateKey

# How far back behaviour is read: no rule can look further than a year.
HORIZON_DAYS = 366
# How many activity rows ``link_batch`` linked to each lead of a batch, for ``score_lead``.
LINKED = StateKey[dict[uuid.UUID, int]]("scoring.linked", dict)
# Each lead's view (``view_of``): read once per batch, routing reads the one scoring read.
VIEWS = StateKey[dict[uuid.UUID, LeadView]]("scoring.views", dict)


async def link_activity(session: AsyncSession, batch: Batch, lead: Lead, now: datetime) -> int:
    """Attach the person's anonymous browsing (same anonymous id as a form post, or
    the same email from a trusted identify call) to the lead. Returns how many."""
    return (await link_activities(session, batch, [lead], now))[lead.id]


async def link_activities(
    session: AsyncSession, batch: Batch, going: Sequence[Lead], now: datetime
) -> dict[uuid.UUID, int]:
    """``link_activity`` for several leads in one statement (a row two of them could
    claim goes to the first); how many rows each lead got.

    The same statement reads the leads' behaviour for ``view_of``: the rows linked
    before and the rows it links."""
    wanted: list[tuple[int, uuid.UUID, str | None, str | None]] = []
    for position, lead in enumerate(going):
        submissions = await leads.submissions(session, batch, lead.id)
        anonymous = sorted({s.anonymous_id for s in submissions if s.anonymous_id})
        # a row per anonymous id, or one for the email alone
        ids: list[str | None] = [*anonymous] if anonymous or not lead.email_key else [None]
        wanted.extend((position, lead.id, anonymous_id, lead.email_key) for anonymous_id in ids)
    since = _horizon(now)
    activity: dict[uuid.UUID, list[Activity]] = {lead.id: [] for lead in going}
    linked: Counter[uuid.UUID] = Counter()
    for r in await repository.link_and_read(session, wanted, [lead.id for lead in going], since):
        if r.occurred_at >= since:
            activity[r.lead_id].append(Activity(r.type, r.occurred_at, r.name, r.path))
        linked[r.lead_id] += r.new
    for lead in going:
        await _remember_view(session, batch, lead, activity[lead.id])
    return {lead.id: linked[lead.id] for lead in going}


async def link_batch(
    session: AsyncSession, batch: Batch, going: Sequence[Lead], config: Config
) -> None:
    """Before scoring a batch: link every lead's activity in one statement."""
    batch.state(LINKED).update(await link_activities(session, batch, going, utcnow()))


def _horizon(now: datetime) -> datetime:
    return now - timedelta(days=HORIZON_DAYS)


def fields_of(lead: Lead) -> dict[str, Any]:
    return {name: getattr(lead, name, None) for name in (*LEAD_FIELDS, *LEAD_EXTRA)}


async def view_of(session: AsyncSession, batch: Batch, lead: Lead, now: datetime) -> LeadView:
    """What the rules read: the lead's fields, enrichment, form answers and behaviour.

    Read once per batch: routing reads the view scoring read, with the fields as they
    are now (score and segment set)."""
    cached = batch.state(VIEWS).get(lead.id)
    if cached is not None:
        return dataclasses.replace(cached, fields=fields_of(lead), quality=lead.quality or {})
    rows = await repository.activity_since(session, lead.id, _horizon(now))
    activity = [Activity(r.type, r.occurred_at, r.name, r.path) for r in rows]
    return await _remember_view(session, batch, lead, activity)


async def _remember_view(
    session: AsyncSession, batch: Batch, lead: Lead, activity: list[Activity]
) -> LeadView:
    answers: dict[str, Any] = {}
    for submission in await leads.submissions(session, batch, lead.id):
        answers |= submission.raw_payload or {}
    view = batch.state(VIEWS)[lead.id] = LeadView(
        fields_of(lead), lead.quality or {}, answers, activity
    )
    return view


def apply(lead: Lead, result: ScoreResult) -> dict[str, Any]:
    """Store the result on the lead; the timeline detail of what changed."""
    previous = {"score": lead.score, "segment": lead.segment}
    lead.score = result.score
    lead.segment = result.segment
    lead.score_breakdown = [line.as_dict() for line in result.breakdown]
    lead.ruleset_version = result.ruleset_version
    return {
        "score": result.score,
        "segment": result.segment,
        "previous_score": previous["score"],
        "previous_segment": previous["segment"],
        "raw_points": result.raw,
        "ruleset_version": result.ruleset_version,
        "top_reasons": result.top_reasons(),
    }


def score_note(lead: Lead, reasons: int = 3) -> str | None:
    """The CRM note: ``Score 70 (hot): Decision maker (vp) +25; Interested in enterprise
    +20; Business email +15``, the strongest reasons first."""
    if lead.score is None:
        return None
    lines = sorted(lead.score_breakdown or [], key=lambda line: -abs(int(line["points"])))
    shown = "; ".join(f"{line['reason']} {int(line['points']):+d}" for line in lines[:reasons])
    return f"Score {lead.score} ({lead.segment})" + (f": {shown}" if shown else "")


def action_of(config: Config, segment: str) -> dict[str, Any]:
    action = config.scoring.segments[segment]  # type: ignore[index]
    return {
        "followup": action.followup,
        "notify": list(action.notify),
        "to_person": action.to_person,
    }


async def score_lead(
    session: AsyncSession, batch: Batch, lead: Lead, config: Config
) -> StageResult:
    now = utcnow()
    linked = batch.state(LINKED).pop(lead.id, None)  # linked with its batch
    if linked is None:
        linked = await link_activity(session, batch, lead, now)
    result = score(config.scoring, await view_of(session, batch, lead, now), now)
    detail = apply(lead, result)
    detail |= {"outcome": "scored", "action": action_of(config, result.segment)}
    if linked:
        detail["linked_activity"] = linked
    return StageResult(detail)


async def rescore(session: AsyncSession, lead: Lead, config: Config, why: str) -> dict[str, Any]:
    """Score a lead again (new behaviour, new rules); a change of segment is an event of
    its own, with the new segment's action, for notifications and the follow-up SLA."""
    now = utcnow()
    batch = Batch()  # the lead alone, outside the pipeline's batches
    await link_activity(session, batch, lead, now)
    previous_version = lead.ruleset_version
    result = score(config.scoring, await view_of(session, batch, lead, now), now)
    detail = apply(lead, result) | {"why": why}
    lead.updated_at = now  # scored now, changed or not (the decay refresh reads this)
    unchanged = (
        detail["score"] == detail["previous_score"] and result.ruleset_version == previous_version
    )
    if unchanged:
        return detail  # nothing for the timeline: same score, same rules
    await leads.add_event(session, lead.id, "lead.rescored", detail)
    if detail["previous_segment"] not in (None, result.segment):
        await leads.add_event(
            session,
            lead.id,
            "lead.segment_changed",
            {
                "from": detail["previous_segment"],
                "to": result.segment,
                "score": result.score,
                "action": action_of(config, result.segment),
            },
        )
    return detail


async def rescore_outdated(session: AsyncSession, config: Config, limit: int) -> int:
    """Re-score up to ``limit`` leads whose score came from other rules than the current."""
    version = ruleset_version(config.scoring)
    outdated = await repository.outdated_leads(session, version, limit)
    for lead in outdated:
        await rescore(session, lead, config, "rules changed")
    return len(outdated)


# Behaviour points decay continuously; a stored score is brought up to date this often.
DECAY_REFRESH = timedelta(days=1)


async def rescore_decaying(session: AsyncSession, config: Config, limit: int) -> int:
    """Re-score leads holding behaviour points that were last scored a day or more ago."""
    leads_ = await repository.decaying_leads(session, utcnow() - DECAY_REFRESH, limit)
    for lead in leads_:
        await rescore(session, lead, config, "behaviour points decayed")
    return len(leads_)
