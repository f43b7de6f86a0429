"""Where a company stands, read from the store: the facts its status card is drawn from. Knows nothing of Slack."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.types import AccountingSystem, ApprovalStatus, CompanyState, Country, SyncStatus
from bot.services import approvals, outbox
from bot.store.models import Company, SyncRun
from bot.sync import policy, runs


@dataclass(frozen=True, slots=True)
class LastSync:
    """What the newest successful sync pulled."""

    finished_at: datetime
    vouchers: int
    accounts: int
    fiscal_years: int
    period_from: date | None
    period_to: date | None


@dataclass(frozen=True, slots=True)
class Failing:
    """A run of failures nobody at the client can fix (Visma down, our configuration), once it lasts."""

    since: datetime | None
    reason: str | None
    next_try: datetime | None


@dataclass(frozen=True, slots=True)
class Card:
    """Everything the card shows, read from the store."""

    company_id: int
    name: str
    org_number: str
    country: Country
    system: AccountingSystem
    state: CompanyState
    state_since: datetime
    state_reason: str | None
    responsible_user_id: str
    approver_user_id: str | None
    approver_email: str | None
    link_sent_at: datetime | None = None
    link_expires_at: datetime | None = None
    declined_at: datetime | None = None
    expired_at: datetime | None = None
    connected_by: str | None = None
    connected_at: datetime | None = None
    last_sync: LastSync | None = None
    next_sync_at: datetime | None = None
    syncing: bool = False
    failing: Failing | None = None
    books_locked_to: date | None = None
    # The open alert, when it is snoozed or one of many in a roll-up (the card says where to look).
    alert_snoozed_until: datetime | None = None
    alert_rolled_up: bool = False


async def load_card(session: AsyncSession, *, company: Company, now: datetime) -> Card:
    """Read what the card shows from the store."""
    assert company.id is not None
    request = await approvals.latest(session, company_id=company.id)
    pending = request if request and request.status == ApprovalStatus.PENDING else None
    connection = await approvals.connection_for(session, company_id=company.id)
    visible = policy.failure_visible(count=company.failure_count, since=company.failing_since, now=now)
    alert = await outbox.open_alert(session, company_id=company.id)
    return Card(
        company_id=company.id,
        name=company.name,
        org_number=company.org_number,
        country=Country(company.country),
        system=AccountingSystem(company.system),
        state=CompanyState(company.state),
        state_since=company.state_since,
        state_reason=company.state_reason,
        responsible_user_id=company.responsible_user_id,
        approver_user_id=company.approver_user_id,
        approver_email=company.approver_email,
        link_sent_at=pending.created_at if pending else None,
        link_expires_at=pending.expires_at if pending else None,
        declined_at=request.used_at if request and request.status == ApprovalStatus.DECLINED else None,
        expired_at=request.expires_at if request and request.status == ApprovalStatus.EXPIRED else None,
        connected_by=connection.connected_by if connection else None,
        connected_at=connection.connected_at if connection else None,
        last_sync=await last_sync(session, company_id=company.id),
        next_sync_at=company.next_sync_at,
        syncing=await runs.live(session, company_id=company.id, now=now) is not None,
        failing=failing(company) if visible else None,
        books_locked_to=company.books_locked_to,
        alert_snoozed_until=alert.snoozed_until if alert else None,
        alert_rolled_up=bool(alert and alert.facts.get("folded")),
    )


def failing(company: Company) -> Failing:
    """The company's run of quiet failures."""
    return Failing(since=company.failing_since, reason=company.failure_reason, next_try=company.next_sync_at)


async def last_sync(session: AsyncSession, *, company_id: int) -> LastSync | None:
    """What the company's newest successful sync left in the store (None before the first)."""
    run = (
        await session.exec(
            select(SyncRun)
            .where(SyncRun.company_id == company_id, SyncRun.status == SyncStatus.OK)
            .order_by(col(SyncRun.id).desc())
        )
    ).first()
    if run is None:
        return None
    return LastSync(
        finished_at=run.finished_at or run.started_at,
        vouchers=run.vouchers,
        accounts=run.accounts,
        fiscal_years=run.fiscal_years,
        period_from=run.period_from,
        period_to=run.period_to,
    )
