"""Routing: the same-company lookup reads only leads that have an owner.

The index on (company_domain, updated_at) covered every lead, so looking for the
latest owned lead of a company walked back through all of the company's leads that
went to a queue (no owner): at 2500 leads of one company, 3 ms per routed lead,
inside the lead's transaction. Now the index holds only leads with an owner.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Built and dropped concurrently, outside the migration's transaction: a plain
# CREATE/DROP INDEX would lock the leads table (intake included) for the whole build.


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_leads_owned_company_domain_updated_at",
            "leads",
            ["company_domain", "updated_at"],
            unique=False,
            postgresql_where=sa.text("owner IS NOT NULL"),
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.drop_index(
            "ix_leads_company_domain_updated_at",
            table_name="leads",
            postgresql_concurrently=True,
            if_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_leads_company_domain_updated_at",
            "leads",
            ["company_domain", "updated_at"],
            unique=False,
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.drop_index(
            "ix_leads_owned_company_domain_updated_at",
            table_name="leads",
            postgresql_where=sa.text("owner IS NOT NULL"),
            postgresql_concurrently=True,
            if_exists=True,
        )
