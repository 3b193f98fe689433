"""Match keys for deduplication: the email key and the phone number (E.164).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("leads", sa.Column("email_key", sa.String(length=320), nullable=True))
    op.add_column("leads", sa.Column("phone_key", sa.String(length=32), nullable=True))
    op.create_index(op.f("ix_leads_email_key"), "leads", ["email_key"], unique=False)
    op.create_index(op.f("ix_leads_phone_key"), "leads", ["phone_key"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_leads_phone_key"), table_name="leads")
    op.drop_index(op.f("ix_leads_email_key"), table_name="leads")
    op.drop_column("leads", "phone_key")
    op.drop_column("leads", "email_key")
