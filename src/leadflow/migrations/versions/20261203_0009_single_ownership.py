"""Single ownership: a lead never has an owner and a queue at once; once routed, one of them.

Existing rows that break it are repaired first, and their routing_reason says so
(the reason they had is kept under ``before``):

- an owner and a queue (a merge gave a queued lead the owner of its duplicate):
  the owner stays, the queue is cleared;
- routed (or later) with neither: the lead goes to the queue ``triage`` (the
  default fallback queue), where a person sees it.

The check is added NOT VALID first (from then on every write is checked, and the
table is locked only for the catalog change), then the rows are repaired, then the
check is validated without blocking writes. The downgrade drops the check; the
repaired rows stay as they are.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The statuses past routing, and the check, as in models/lead.py.
CHECK = (
    "(owner IS NULL OR queue IS NULL) AND (owner IS NOT NULL OR queue IS NOT NULL OR status "
    "NOT IN ('contacted', 'disqualified', 'meeting_booked', 'qualified', 'routed', 'synced'))"
)
KEEP_OWNER = """
UPDATE leads SET queue = NULL, routing_reason = jsonb_build_object(
    'rule', 'repair', 'strategy', NULL, 'owner', owner, 'queue', NULL,
    'candidates', '[]'::jsonb, 'steps', '[]'::jsonb, 'alert', NULL,
    'sentence', 'Kept ' || owner || '; queue ' || queue
        || ' cleared: a lead has one owner or one queue.',
    'by', 'migration 0009', 'at', now(), 'before', routing_reason)
WHERE owner IS NOT NULL AND queue IS NOT NULL
"""
TO_TRIAGE = """
UPDATE leads SET queue = 'triage', routing_reason = jsonb_build_object(
    'rule', 'repair', 'strategy', NULL, 'owner', NULL, 'queue', 'triage',
    'candidates', '[]'::jsonb, 'steps', '[]'::jsonb, 'alert', NULL,
    'sentence', 'Queue ''triage'': the lead was ' || status || ' with neither owner nor queue.',
    'by', 'migration 0009', 'at', now(), 'before', routing_reason)
WHERE owner IS NULL AND queue IS NULL
    AND status IN ('contacted', 'disqualified', 'meeting_booked', 'qualified', 'routed', 'synced')
"""


def upgrade() -> None:
    with op.get_context().autocommit_block():
        # Run again after a failure half-way: the check may be there, not yet valid.
        op.execute("ALTER TABLE leads DROP CONSTRAINT IF EXISTS ck_leads_single_ownership")
        op.execute(
            f"ALTER TABLE leads ADD CONSTRAINT ck_leads_single_ownership CHECK ({CHECK}) NOT VALID"
        )
        op.execute(KEEP_OWNER)
        op.execute(TO_TRIAGE)
        op.execute("ALTER TABLE leads VALIDATE CONSTRAINT ck_leads_single_ownership")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_leads_single_ownership"), "leads", type_="check")
