"""alert hygiene: an alert's cause (for roll-ups) and snooze, and when an approver was reminded

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slack_message") as batch:
        batch.add_column(sa.Column("cause", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("snoozed_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.create_index("ix_slack_message_cause", ["cause"])
        batch.create_index("ix_slack_message_snoozed_until", ["snoozed_until"])
    # At most one open roll-up (an outage alert listing many companies) per cause.
    op.create_index(
        "uq_slack_message_open_incident",
        "slack_message",
        ["cause"],
        unique=True,
        sqlite_where=sa.text("kind = 'incident' AND closed_at IS NULL"),
        postgresql_where=sa.text("kind = 'incident' AND closed_at IS NULL"),
    )
    with op.batch_alter_table("approval_request") as batch:
        batch.add_column(sa.Column("reminded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approval_request") as batch:
        batch.drop_column("reminded_at")
    op.drop_index("uq_slack_message_open_incident", table_name="slack_message")
    with op.batch_alter_table("slack_message") as batch:
        batch.drop_index("ix_slack_message_snoozed_until")
        batch.drop_index("ix_slack_message_cause")
        batch.drop_column("snoozed_until")
        batch.drop_column("cause")
