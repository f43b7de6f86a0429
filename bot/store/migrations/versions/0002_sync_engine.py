"""sync engine: run leases, cursors, token versions, richer books

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # `syncing` is no longer a state a company is left in: a live run says so. Runs left running by the old
    # code can never finish, so they are closed before the one-running-run-per-company index is built.
    op.execute("UPDATE company SET state = 'healthy' WHERE state = 'syncing' AND last_sync_at IS NOT NULL")
    op.execute("UPDATE company SET state = 'connected' WHERE state = 'syncing'")
    op.execute("UPDATE sync_run SET status = 'abandoned' WHERE status = 'running'")
    op.create_table(
        "job_lease",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "opening_balance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("account_number", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("balance", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "account_number", name="uq_opening_balance"),
    )
    with op.batch_alter_table("opening_balance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_opening_balance_company_id"), ["company_id"], unique=False)

    op.create_table(
        "sync_cursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("book", sa.String(length=32), nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "book", name="uq_sync_cursor"),
    )
    with op.batch_alter_table("sync_cursor", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_cursor_company_id"), ["company_id"], unique=False)

    op.create_table(
        "vat_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("rate", sa.Numeric(precision=9, scale=4), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "external_id", name="uq_vat_code"),
    )
    with op.batch_alter_table("vat_code", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vat_code_company_id"), ["company_id"], unique=False)

    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.add_column(sa.Column("books_locked_to", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("failing_since", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("failure_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("failure_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("failure_noted", sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table("connection", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("refresh_owner", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("refresh_lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    with op.batch_alter_table("ledger_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vat_code_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("account_type", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("modified_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("full", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("requests", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("retries", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("rows_written", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("written", sa.JSON(), nullable=True))
        batch_op.create_index(
            "uq_sync_run_running",
            ["company_id"],
            unique=True,
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        )

    with op.batch_alter_table("voucher", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number_series", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("voucher_type", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("modified_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("source_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("attachments", sa.JSON(), nullable=True))
        batch_op.create_index("ix_voucher_company_date", ["company_id", "voucher_date"], unique=False)
        batch_op.drop_index("ix_voucher_company_id")


def downgrade() -> None:
    with op.batch_alter_table("voucher", schema=None) as batch_op:
        batch_op.drop_index("ix_voucher_company_date")
        batch_op.create_index("ix_voucher_company_id", ["company_id"], unique=False)
        batch_op.drop_column("attachments")
        batch_op.drop_column("source_id")
        batch_op.drop_column("modified_at")
        batch_op.drop_column("voucher_type")
        batch_op.drop_column("number_series")

    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_sync_run_running",
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        )
        batch_op.drop_column("written")
        batch_op.drop_column("rows_written")
        batch_op.drop_column("retries")
        batch_op.drop_column("requests")
        batch_op.drop_column("full")
        batch_op.drop_column("actor")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("owner")

    with op.batch_alter_table("ledger_account", schema=None) as batch_op:
        batch_op.drop_column("modified_at")
        batch_op.drop_column("account_type")
        batch_op.drop_column("vat_code_id")

    with op.batch_alter_table("connection", schema=None) as batch_op:
        batch_op.drop_column("refresh_lease_until")
        batch_op.drop_column("refresh_owner")
        batch_op.drop_column("version")

    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.drop_column("failure_noted")
        batch_op.drop_column("failure_reason")
        batch_op.drop_column("failure_count")
        batch_op.drop_column("failing_since")
        batch_op.drop_column("books_locked_to")

    with op.batch_alter_table("vat_code", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vat_code_company_id"))

    op.drop_table("vat_code")
    with op.batch_alter_table("sync_cursor", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_cursor_company_id"))

    op.drop_table("sync_cursor")
    with op.batch_alter_table("opening_balance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_opening_balance_company_id"))

    op.drop_table("opening_balance")
    op.drop_table("job_lease")
