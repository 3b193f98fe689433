"""Initial schema: leads, submissions, timeline, consent ledger, and the job queue.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

The queue's tables and functions are procrastinate's own schema, copied into
sql/ at the version Leadflow pins, so this migration gives the same result
whatever procrastinate version is installed later; a procrastinate upgrade
comes with a migration that applies its delta files.
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute((Path(__file__).parent.parent / "sql" / "procrastinate-3.10.0.sql").read_text())
    op.create_table(
        "leads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("form_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("first_name", sa.String(length=255), nullable=True),
        sa.Column("last_name", sa.String(length=255), nullable=True),
        sa.Column("company", sa.String(length=255), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=True),
        sa.Column("country", sa.String(length=64), nullable=True),
        sa.Column("website", sa.String(length=2048), nullable=True),
        sa.Column("utm_source", sa.String(length=255), nullable=True),
        sa.Column("utm_medium", sa.String(length=255), nullable=True),
        sa.Column("utm_campaign", sa.String(length=255), nullable=True),
        sa.Column("utm_term", sa.String(length=255), nullable=True),
        sa.Column("utm_content", sa.String(length=255), nullable=True),
        sa.Column("landing_url", sa.String(length=2048), nullable=True),
        sa.Column("referrer", sa.String(length=2048), nullable=True),
        sa.Column("gclid", sa.String(length=512), nullable=True),
        sa.Column("fbclid", sa.String(length=512), nullable=True),
        sa.Column("first_touch", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("last_touch", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_tz_offset_minutes", sa.Integer(), nullable=True),
        sa.Column("product_interest", sa.String(length=255), nullable=True),
        sa.Column("budget_range", sa.String(length=255), nullable=True),
        sa.Column("deadline", sa.String(length=255), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column(
            "external_ids",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("quality", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("segment", sa.String(length=32), nullable=True),
        sa.Column("score_breakdown", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("ruleset_version", sa.String(length=64), nullable=True),
        sa.Column("owner", sa.String(length=320), nullable=True),
        sa.Column("queue", sa.String(length=64), nullable=True),
        sa.Column("routing_reason", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("duplicate_of", sa.Uuid(), nullable=True),
        sa.Column("sla_state", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('received', 'validated', 'deduplicated', 'scored', 'routed', 'synced', 'quarantined', 'failed', 'merged', 'contacted', 'meeting_booked', 'qualified', 'disqualified')",
            name=op.f("ck_leads_status"),
        ),
        sa.CheckConstraint(
            "score IS NULL OR score BETWEEN 0 AND 100", name=op.f("ck_leads_score_range")
        ),
        sa.ForeignKeyConstraint(
            ["duplicate_of"],
            ["leads.id"],
            name=op.f("fk_leads_duplicate_of_leads"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
    )
    op.create_index("ix_leads_created_at_id", "leads", ["created_at", "id"], unique=False)
    op.create_index(op.f("ix_leads_duplicate_of"), "leads", ["duplicate_of"], unique=False)
    op.create_index("ix_leads_status_created_at", "leads", ["status", "created_at"], unique=False)
    op.create_table(
        "lead_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Double(), nullable=True),
        sa.Column(
            "detail", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_lead_events_lead_id_leads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_events")),
    )
    op.create_index("ix_lead_events_lead_id_id", "lead_events", ["lead_id", "id"], unique=False)
    op.create_table(
        "submissions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("form_key", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("raw_payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("fields", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "extra", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("ip", postgresql.INET(), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column(
            "request_meta",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "spam_reasons",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_submissions_lead_id_leads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
    )
    op.create_index(
        "ix_submissions_form_key_fingerprint",
        "submissions",
        ["form_key", "fingerprint", "received_at"],
        unique=False,
    )
    op.create_index(op.f("ix_submissions_lead_id"), "submissions", ["lead_id"], unique=False)
    op.create_index(
        "uq_submissions_idempotency_key",
        "submissions",
        ["idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.create_table(
        "consent_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("submission_id", sa.Uuid(), nullable=True),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("form_key", sa.String(length=64), nullable=True),
        sa.Column("ip", postgresql.INET(), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('granted', 'withdrawn')", name=op.f("ck_consent_records_status")
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_consent_records_lead_id_leads"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_consent_records_submission_id_submissions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_records")),
    )
    op.create_index(
        "ix_consent_records_lead_id_recorded_at",
        "consent_records",
        ["lead_id", "recorded_at"],
        unique=False,
    )
    # The timeline and the consent ledger are append-only: rows are never edited.
    # (Deleting stays possible for GDPR erasure, which removes a person entirely.)
    op.execute(APPEND_ONLY_FUNCTION)
    for table in APPEND_ONLY_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION leadflow_append_only()"
        )


APPEND_ONLY_TABLES = ("lead_events", "consent_records")
APPEND_ONLY_FUNCTION = """
CREATE FUNCTION leadflow_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: rows cannot be changed', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$
"""


def downgrade() -> None:
    for table in APPEND_ONLY_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    op.execute("DROP FUNCTION IF EXISTS leadflow_append_only()")
    op.drop_index("ix_consent_records_lead_id_recorded_at", table_name="consent_records")
    op.drop_table("consent_records")
    op.drop_index(
        "uq_submissions_idempotency_key",
        table_name="submissions",
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.drop_index(op.f("ix_submissions_lead_id"), table_name="submissions")
    op.drop_index("ix_submissions_form_key_fingerprint", table_name="submissions")
    op.drop_table("submissions")
    op.drop_index("ix_lead_events_lead_id_id", table_name="lead_events")
    op.drop_table("lead_events")
    op.drop_index("ix_leads_status_created_at", table_name="leads")
    op.drop_index(op.f("ix_leads_duplicate_of"), table_name="leads")
    op.drop_index("ix_leads_created_at_id", table_name="leads")
    op.drop_table("leads")
    op.execute(PROCRASTINATE_DROP)


PROCRASTINATE_DROP = """
DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
    procrastinate_jobs, procrastinate_workers CASCADE;
DO $$
DECLARE fn regprocedure;
BEGIN
    FOR fn IN SELECT oid::regprocedure FROM pg_proc WHERE proname LIKE 'procrastinate\\_%' LOOP
        EXECUTE 'DROP FUNCTION IF EXISTS ' || fn || ' CASCADE';
    END LOOP;
END;
$$;
DROP TYPE IF EXISTS procrastinate_job_status, procrastinate_job_event_type,
    procrastinate_job_to_defer_v1 CASCADE;
"""
