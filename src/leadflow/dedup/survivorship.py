"""Merging a duplicate into the lead that survives, field by field (pure).

Rules, per field (``dedup.survivorship`` in the config):

- ``most_recent``: the newer non-empty value wins (the default for identity and
  context: people update their title, phone and message);
- ``first``: the first non-empty value stays (attribution of the first touch);
- ``longest``: the longer value wins (a fuller company name, a longer message);
- ``verified``: a verified value (a deliverable email, a valid phone number)
  beats one that is not; between equals, the newer wins (the default for
  email and phone).

Whatever the rule, an empty value never overwrites a non-empty one, so a merge
never loses information. The owner, when it changes, changes with the queue and
the routing reason (``take_owner``; undone by ``restore_ownership``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from leadflow.fields import STORED_FIELDS
from leadflow.models import Lead, LeadStatus
from leadflow.models.lead import PAST_ROUTING, reason_for

Rule = Literal["most_recent", "first", "longest", "verified"]

# Every column a submission fills, and the owner (a survivor without one takes the duplicate's).
MERGED_FIELDS: tuple[str, ...] = (*STORED_FIELDS, "owner")

DEFAULT_RULES: dict[str, Rule] = {
    "message": "longest",
    "email": "verified",
    "phone": "verified",
    "owner": "first",  # the survivor keeps its owner; one without gets the duplicate's
}


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def choose(
    rule: Rule,
    kept: Any,
    incoming: Any,
    *,
    kept_verified: bool = False,
    incoming_verified: bool = False,
) -> Any:
    """The value a field keeps: ``kept`` is the survivor's, ``incoming`` the duplicate's."""
    if _empty(incoming):
        return kept
    if _empty(kept):
        return incoming
    if rule == "first":
        return kept
    if rule == "longest":
        return incoming if len(str(incoming)) > len(str(kept)) else kept
    if rule == "verified" and kept_verified and not incoming_verified:
        return kept
    return incoming


def merge_fields(
    survivor: Mapping[str, Any],
    duplicate: Mapping[str, Any],
    rules: Mapping[str, Rule] | None = None,
    default: Rule = "most_recent",
    *,
    verified: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset()),
) -> dict[str, Any]:
    """The survivor's new field values; only fields that change are returned.

    ``verified`` names the fields whose value was verified, on the survivor and
    on the duplicate.
    """
    table = {**DEFAULT_RULES, **(rules or {})}
    changes = {}
    for name in MERGED_FIELDS:
        value = choose(
            table.get(name, default),
            survivor.get(name),
            duplicate.get(name),
            kept_verified=name in verified[0],
            incoming_verified=name in verified[1],
        )
        if value != survivor.get(name):
            changes[name] = value
    return changes


def ownership_of(lead: Lead) -> dict[str, Any]:
    """What the lead's owner, queue and reason were, for an undone merge to put back."""
    return {"owner": lead.owner, "queue": lead.queue, "routing_reason": lead.routing_reason}


def take_owner(survivor: Lead, duplicate: Lead, owner: str, *, by: str) -> None:
    """The survivorship rules gave the survivor its duplicate's owner: out of any queue,
    and the reason says where the owner came from."""
    source = "the imported contact" if duplicate.form_key == "import" else "a lead"
    survivor.set_ownership(
        owner=owner,
        reason=reason_for(
            "merge", f"To {owner}, owner of {source} merged into this one.", owner=owner, by=by
        ),
    )


def restore_ownership(survivor: Lead, undo: dict[str, Any], merged_owner: str | None) -> bool:
    """An undone merge: the owner, queue and reason the survivor had before, unless they
    changed since (routed again, reassigned). Whether they were put back."""
    reason = survivor.routing_reason or {}
    before = undo.get("ownership")
    if before is None:  # merged before the ownership was recorded: the owner alone
        before = {"owner": undo["fields"]["owner"], "queue": None, "routing_reason": None}
    elif reason.get("rule") != "merge":
        return False
    if survivor.owner != merged_owner:
        return False
    if before["owner"] is None and before["queue"] is None:
        if LeadStatus(survivor.status) in PAST_ROUTING:
            return False  # routed since: it keeps the owner rather than have neither
        survivor.clear_ownership()
        return True
    survivor.set_ownership(
        owner=before["owner"],
        queue=before["queue"],
        reason=before["routing_reason"]
        or reason_for(
            "merge",
            f"Back to {before['owner'] or before['queue']}: the merge that changed it was undone.",
            owner=before["owner"],
            queue=before["queue"],
            by="dedup",
        ),
    )
    return True
