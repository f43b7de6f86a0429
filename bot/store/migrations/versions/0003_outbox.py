"""outbox for Slack messages, several OAuth attempts per link

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("state_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("verifier_sealed", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["approval_request.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("state_hash", name="uq_oauth_attempt_state_hash"),
    )
    op.create_index("ix_oauth_attempt_request_id", "oauth_attempt", ["request_id"])
    op.create_table(
        "slack_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("ts", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("secret_sealed", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("delivered_version", sa.Integer(), nullable=False),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("dead", sa.Boolean(), nullable=False),
        sa.Column("closed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("lease_owner", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("delivered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["company_id"], ["company.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["approval_request.id"]),
        sa.ForeignKeyConstraint(["parent_id"], ["slack_message.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_slack_message_company_id", "slack_message", ["company_id"])
    op.create_index("ix_slack_message_request_id", "slack_message", ["request_id"])
    op.create_index("ix_slack_message_pending", "slack_message", ["pending"])
    op.create_index(
        "uq_slack_message_card",
        "slack_message",
        ["company_id"],
        unique=True,
        sqlite_where=sa.text("kind = 'card'"),
        postgresql_where=sa.text("kind = 'card'"),
    )
    _move_messages()
    # What the outbox and the attempts now hold.
    with op.batch_alter_table("company") as batch:
        for column in ("card_channel", "card_ts", "alert_code", "alert_ts", "alert_count"):
            batch.drop_column(column)
    with op.batch_alter_table("approval_request") as batch:
        for column in ("dm_channel", "dm_ts", "oauth_state_hash", "pkce_verifier_sealed", "oauth_started_at"):
            batch.drop_column(column)


def _move_messages() -> None:
    """Cards, open alerts and approval DMs already in Slack become delivered outbox messages."""
    bind = op.get_bind()
    now = datetime.now(UTC)
    messages = sa.table(
        "slack_message",
        sa.column("kind", sa.String),
        sa.column("company_id", sa.Integer),
        sa.column("request_id", sa.Integer),
        sa.column("parent_id", sa.Integer),
        sa.column("channel", sa.String),
        sa.column("ts", sa.String),
        sa.column("facts", sa.JSON),
        sa.column("version", sa.Integer),
        sa.column("delivered_version", sa.Integer),
        sa.column("pending", sa.Boolean),
        sa.column("dead", sa.Boolean),
        sa.column("attempts", sa.Integer),
        sa.column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime),
        sa.column("created_at", sqlmodel.sql.sqltypes.UTCDateTime),
        sa.column("delivered_at", sqlmodel.sql.sqltypes.UTCDateTime),
    )
    delivered = {
        "version": 1,
        "delivered_version": 1,
        "pending": False,
        "dead": False,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "delivered_at": now,
    }
    companies = bind.execute(
        sa.text(
            "SELECT id, card_channel, card_ts, alert_code, alert_ts, alert_count FROM company WHERE card_ts IS NOT NULL"
        )
    ).all()
    for company_id, channel, ts, alert_code, alert_ts, alert_count in companies:
        bind.execute(
            messages.insert().values(kind="card", company_id=company_id, channel=channel, ts=ts, facts={}, **delivered)
        )
        if alert_code and alert_ts:
            card_id = bind.execute(
                sa.text("SELECT id FROM slack_message WHERE kind = 'card' AND company_id = :id"), {"id": company_id}
            ).scalar_one()
            bind.execute(
                messages.insert().values(
                    kind="alert",
                    company_id=company_id,
                    parent_id=card_id,
                    channel=channel,
                    ts=alert_ts,
                    facts={"problem": None, "code": alert_code, "count": alert_count},
                    **delivered,
                )
            )
    requests = bind.execute(
        sa.text("SELECT id, company_id, dm_channel, dm_ts FROM approval_request WHERE dm_ts IS NOT NULL")
    ).all()
    for request_id, company_id, channel, ts in requests:
        bind.execute(
            messages.insert().values(
                kind="approval_dm",
                company_id=company_id,
                request_id=request_id,
                channel=channel,
                ts=ts,
                facts={},
                **delivered,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("approval_request") as batch:
        batch.add_column(sa.Column("dm_channel", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("dm_ts", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("oauth_state_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("pkce_verifier_sealed", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("oauth_started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    with op.batch_alter_table("company") as batch:
        batch.add_column(sa.Column("card_channel", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("card_ts", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("alert_code", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("alert_ts", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("alert_count", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE company SET card_channel = (SELECT channel FROM slack_message m WHERE m.kind = 'card' "
        "AND m.company_id = company.id), card_ts = (SELECT ts FROM slack_message m WHERE m.kind = 'card' "
        "AND m.company_id = company.id)"
    )
    op.drop_table("slack_message")
    op.drop_table("oauth_attempt")
