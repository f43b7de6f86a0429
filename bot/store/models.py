"""SQLModel tables. The schema itself is owned by the Alembic migrations in bot/store/migrations.

Enums are stored as plain strings, not native enum types, so a new state is a code change and not a
PostgreSQL ALTER TYPE migration. Datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, Index, String, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from bot.domain.types import AccountingSystem, ApprovalStatus, CompanyState, SyncStatus


class FirmSettings(SQLModel, table=True):
    """The firm's own settings (one row)."""

    __tablename__ = "firm_settings"

    id: int | None = Field(default=None, primary_key=True)
    firm_name: str
    staff_usergroup_id: str | None = None
    nxt_customer_ids: str = ""


class Company(SQLModel, table=True):
    """A client company being onboarded or synced."""

    __tablename__ = "company"
    __table_args__ = (UniqueConstraint("country", "org_number", name="uq_company_country_org"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str
    org_number: str = Field(index=True)
    country: str
    system: AccountingSystem = Field(sa_type=String(32))
    # Where the company is in its Visma system, when staff or the approver say it: the Tenant ID of a Visma.net
    # company, the company number in Business NXT (eAccounting's comes back from the consent).
    external_id: str | None = None
    # What the system needs beyond that, in plain values (Visma ERP: API version and the scopes to ask for).
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"))
    state: CompanyState = Field(default=CompanyState.DRAFT, index=True, sa_type=String(32))
    state_reason: str | None = None
    state_since: datetime
    comment: str | None = None
    # The channel of the team that looks after the company, when it is not the firm's ALERT_CHANNEL.
    channel: str | None = None
    period_type: str
    fiscal_year_start_month: int
    reconciliation_start: date
    vat_frequency: str
    modules: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    responsible_user_id: str
    approver_user_id: str | None = None
    approver_email: str | None = None
    requested_by: str
    source_view_id: str | None = Field(default=None, unique=True)
    created_at: datetime
    last_sync_at: datetime | None = None
    next_sync_at: datetime | None = Field(default=None, index=True)
    books_locked_to: date | None = None
    # Runs that failed for a reason nobody at the client can fix (Visma down, our configuration): counted
    # quietly, and shown on the card once they pass a threshold.
    failing_since: datetime | None = None
    failure_count: int = 0
    failure_reason: str | None = None
    failure_noted: bool = False


class ApprovalRequest(SQLModel, table=True):
    """An approval link: only its hash is stored; it expires and is used once."""

    __tablename__ = "approval_request"

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    token_hash: str = Field(unique=True)
    status: ApprovalStatus = Field(default=ApprovalStatus.PENDING, sa_type=String(32))
    requested_by: str
    requested_by_name: str
    approver_user_id: str | None = None
    approver_email: str | None = None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    # When the approver (or, for one outside Slack, the requester) was reminded that the link runs out.
    reminded_at: datetime | None = None


class OAuthAttempt(SQLModel, table=True):
    """One "Continue to Visma" of a link: several may be in flight until one of them completes."""

    __tablename__ = "oauth_attempt"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="approval_request.id", index=True)
    # Only the state's hash is stored; the PKCE verifier is sealed. Both are cleared when the attempt is used.
    state_hash: str | None = Field(default=None, unique=True)
    verifier_sealed: str | None = None
    started_at: datetime
    used_at: datetime | None = None


class SlackMessage(SQLModel, table=True):
    """The outbox: a Slack message the core asked for, written with the change it reports and delivered
    after commit. The Slack side renders it from the current state when it delivers; `version` counts the
    changes asked for and `delivered_version` the ones Slack has seen, so many changes make one edit."""

    __tablename__ = "slack_message"
    __table_args__ = (
        # One status card per company.
        Index(
            "uq_slack_message_card",
            "company_id",
            unique=True,
            sqlite_where=text("kind = 'card'"),
            postgresql_where=text("kind = 'card'"),
        ),
        # At most one open roll-up (an outage alert listing many companies) per cause.
        Index(
            "uq_slack_message_open_incident",
            "cause",
            unique=True,
            sqlite_where=text("kind = 'incident' AND closed_at IS NULL"),
            postgresql_where=text("kind = 'incident' AND closed_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_type=String(32))
    company_id: int | None = Field(default=None, foreign_key="company.id", index=True)
    request_id: int | None = Field(default=None, foreign_key="approval_request.id", index=True)
    # A thread reply's card, or the message this one waits for (a confirmation waits for the approver's DM).
    parent_id: int | None = Field(default=None, foreign_key="slack_message.id")
    channel: str | None = None
    user_id: str | None = None
    ts: str | None = None
    # What an alert is about, the same for every company hit by it ("eaccounting:outage", "visma_net:…"): many
    # companies with one cause in a short while roll up into one message.
    cause: str | None = Field(default=None, index=True)
    # What happened, in plain values; never a secret and never mrkdwn.
    facts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # An approval link, sealed with ENCRYPTION_KEY; cleared once it has been delivered.
    secret_sealed: str | None = None
    version: int = 1
    delivered_version: int = 0
    pending: bool = Field(default=True, index=True)
    dead: bool = False
    closed_at: datetime | None = None
    # An alert someone snoozed: it stays open and counts quietly; when this passes and it is still open, the
    # thread hears that it is.
    snoozed_until: datetime | None = Field(default=None, index=True)
    attempts: int = 0
    next_attempt_at: datetime
    last_error: str | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    created_at: datetime
    delivered_at: datetime | None = None


class Connection(SQLModel, table=True):
    """The live link to a company's Visma books; tokens are Fernet-encrypted."""

    __tablename__ = "connection"

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", unique=True)
    system: AccountingSystem = Field(sa_type=String(32))
    external_company_id: str | None = None
    external_company_name: str | None = None
    access_token_sealed: str
    refresh_token_sealed: str | None = None
    access_expires_at: datetime
    scopes: str
    connected_by: str
    connected_at: datetime
    # Bumped by every token refresh; a refresh is claimed with a short lease so that two processes never
    # spend the same rotating refresh token.
    version: int = 0
    refresh_owner: str | None = None
    refresh_lease_until: datetime | None = None


class SyncRun(SQLModel, table=True):
    """One pull of a company's books. A running run holds a lease its owner renews; an expired one is closed."""

    __tablename__ = "sync_run"
    __table_args__ = (
        # At most one running run per company, whichever process starts it.
        Index(
            "uq_sync_run_running",
            "company_id",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    started_at: datetime
    finished_at: datetime | None = None
    status: SyncStatus = Field(default=SyncStatus.RUNNING, sa_type=String(32))
    owner: str | None = None
    lease_until: datetime | None = None
    actor: str | None = None
    full: bool = False
    requests: int = 0
    retries: int = 0
    rows_written: int = 0
    # Rows written per book in this run ({"vouchers": 12, …}): what changed, for the log and the demo.
    written: dict[str, int] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    fiscal_years: int = 0
    accounts: int = 0
    vouchers: int = 0
    balances: int = 0
    period_from: date | None = None
    period_to: date | None = None
    error_code: str | None = None
    error_message: str | None = None


class SyncCursor(SQLModel, table=True):
    """Where reading one book of one company stands; committed together with the rows it covers."""

    __tablename__ = "sync_cursor"
    __table_args__ = (UniqueConstraint("company_id", "book", name="uq_sync_cursor"),)

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    book: str = Field(sa_type=String(32))
    cursor: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime


class JobLease(SQLModel, table=True):
    """A named lease, so that exactly one process runs the scheduler's tick at a time."""

    __tablename__ = "job_lease"

    name: str = Field(primary_key=True)
    owner: str
    lease_until: datetime


class AuditEvent(SQLModel, table=True):
    """Every state change: who, when, what."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    actor: str
    company_id: int | None = Field(default=None, foreign_key="company.id", index=True)
    action: str
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class FiscalYear(SQLModel, table=True):
    """A fiscal year pulled from the company's books."""

    __tablename__ = "fiscal_year"
    __table_args__ = (UniqueConstraint("company_id", "external_id", name="uq_fiscal_year"),)

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    external_id: str
    start_date: date
    end_date: date
    locked: bool = False


class LedgerAccount(SQLModel, table=True):
    """An account of the chart of accounts, per fiscal year."""

    __tablename__ = "ledger_account"
    __table_args__ = (UniqueConstraint("company_id", "fiscal_year_external_id", "number", name="uq_ledger_account"),)

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    fiscal_year_external_id: str
    number: int
    name: str
    active: bool = True
    vat_code_id: str | None = None
    account_type: int | None = None
    modified_at: datetime | None = None


class Voucher(SQLModel, table=True):
    """A voucher with its rows, kept as Visma sent them (account, amounts, VAT code, cost centres, project)."""

    __tablename__ = "voucher"
    __table_args__ = (
        # These two lead with company_id, so no index of company_id alone: one index less per voucher written.
        UniqueConstraint("company_id", "external_id", name="uq_voucher"),
        Index("ix_voucher_company_date", "company_id", "voucher_date"),
    )

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id")
    external_id: str
    voucher_date: date
    number: str | None = None
    number_series: str | None = None
    voucher_type: int | None = None
    text: str | None = None
    modified_at: datetime | None = None
    source_id: str | None = None
    attachments: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    rows: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class AccountBalance(SQLModel, table=True):
    """An account's balance on a date."""

    __tablename__ = "account_balance"
    __table_args__ = (UniqueConstraint("company_id", "account_number", "balance_date", name="uq_account_balance"),)

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    account_number: int
    balance_date: date
    balance: Decimal = Field(max_digits=18, decimal_places=2)


class VatCode(SQLModel, table=True):
    """A VAT code of the company (rows refer to it by id)."""

    __tablename__ = "vat_code"
    __table_args__ = (UniqueConstraint("company_id", "external_id", name="uq_vat_code"),)

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    external_id: str
    code: str | None = None
    description: str | None = None
    rate: Decimal | None = Field(default=None, max_digits=9, decimal_places=4)


class OpeningBalance(SQLModel, table=True):
    """An account's opening balance when the company started in its Visma system."""

    __tablename__ = "opening_balance"
    __table_args__ = (UniqueConstraint("company_id", "account_number", name="uq_opening_balance"),)

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    account_number: int
    name: str | None = None
    balance: Decimal = Field(max_digits=18, decimal_places=2)
