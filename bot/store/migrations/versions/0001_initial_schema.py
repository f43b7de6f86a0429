"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "company",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("org_number", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("country", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("system", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("state_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("state_since", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("comment", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("period_type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("fiscal_year_start_month", sa.Integer(), nullable=False),
        sa.Column("reconciliation_start", sa.Date(), nullable=False),
        sa.Column("vat_frequency", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("modules", sa.JSON(), nullable=False),
        sa.Column("responsible_user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("approver_user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("approver_email", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source_view_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("card_channel", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("card_ts", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("alert_code", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("alert_ts", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("alert_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_sync_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("next_sync_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("country", "org_number", name="uq_company_country_org"),
        sa.UniqueConstraint("source_view_id"),
    )
    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_company_next_sync_at"), ["next_sync_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_company_org_number"), ["org_number"], unique=False)
        batch_op.create_index(batch_op.f("ix_company_state"), ["state"], unique=False)

    op.create_table(
        "firm_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("staff_usergroup_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("nxt_customer_ids", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "account_balance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("account_number", sa.Integer(), nullable=False),
        sa.Column("balance_date", sa.Date(), nullable=False),
        sa.Column("balance", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "account_number", "balance_date", name="uq_account_balance"),
    )
    with op.batch_alter_table("account_balance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_balance_company_id"), ["company_id"], unique=False)

    op.create_table(
        "approval_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("requested_by_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("approver_user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("approver_email", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("dm_channel", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("dm_ts", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("oauth_state_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("pkce_verifier_sealed", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("oauth_started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("oauth_state_hash"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("approval_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_approval_request_company_id"), ["company_id"], unique=False)

    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_company_id"), ["company_id"], unique=False)

    op.create_table(
        "connection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=32), nullable=False),
        sa.Column("external_company_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("external_company_name", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("access_token_sealed", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("refresh_token_sealed", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("access_expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("scopes", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("connected_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("connected_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id"),
    )
    op.create_table(
        "fiscal_year",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "external_id", name="uq_fiscal_year"),
    )
    with op.batch_alter_table("fiscal_year", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fiscal_year_company_id"), ["company_id"], unique=False)

    op.create_table(
        "ledger_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("fiscal_year_external_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "fiscal_year_external_id", "number", name="uq_ledger_account"),
    )
    with op.batch_alter_table("ledger_account", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_account_company_id"), ["company_id"], unique=False)

    op.create_table(
        "sync_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("fiscal_years", sa.Integer(), nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("vouchers", sa.Integer(), nullable=False),
        sa.Column("balances", sa.Integer(), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=True),
        sa.Column("period_to", sa.Date(), nullable=True),
        sa.Column("error_code", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("error_message", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_run_company_id"), ["company_id"], unique=False)

    op.create_table(
        "voucher",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("voucher_date", sa.Date(), nullable=False),
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("rows", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "external_id", name="uq_voucher"),
    )
    with op.batch_alter_table("voucher", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_voucher_company_id"), ["company_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("voucher", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_voucher_company_id"))

    op.drop_table("voucher")
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_run_company_id"))

    op.drop_table("sync_run")
    with op.batch_alter_table("ledger_account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_account_company_id"))

    op.drop_table("ledger_account")
    with op.batch_alter_table("fiscal_year", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fiscal_year_company_id"))

    op.drop_table("fiscal_year")
    op.drop_table("connection")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_company_id"))
        batch_op.drop_index(batch_op.f("ix_audit_event_at"))

    op.drop_table("audit_event")
    with op.batch_alter_table("approval_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_request_company_id"))

    op.drop_table("approval_request")
    with op.batch_alter_table("account_balance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_balance_company_id"))

    op.drop_table("account_balance")
    op.drop_table("firm_settings")
    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_company_state"))
        batch_op.drop_index(batch_op.f("ix_company_org_number"))
        batch_op.drop_index(batch_op.f("ix_company_next_sync_at"))

    op.drop_table("company")
