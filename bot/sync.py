"""Pulling a company's books from Visma into the store, and what the card and thread say about it."""

from __future__ import annotations

import calendar
import logging
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import notify
from bot.domain import problems
from bot.domain.types import CompanyState, SyncStatus
from bot.runtime import Deps
from bot.services import approvals, companies
from bot.store.models import AccountBalance, Company, Connection, FiscalYear, LedgerAccount, SyncRun, Voucher
from bot.visma.eaccounting import EAccountingClient, OAuthError, VismaApiError
from commands.card.views import LastSync, note_blocks, sync_summary

log = logging.getLogger(__name__)

SYNCABLE = {CompanyState.CONNECTED, CompanyState.HEALTHY, CompanyState.PERMISSION_ERROR}
# Refresh a little before Visma's one-hour expiry, so a token never dies in the middle of a sync.
REFRESH_MARGIN = timedelta(minutes=5)


class _Books:
    """What one pull fetched, before it is written."""

    def __init__(self) -> None:
        self.fiscal_years: list[FiscalYear] = []
        self.accounts: list[LedgerAccount] = []
        self.vouchers: list[Voucher] = []
        self.balances: list[AccountBalance] = []


async def due_companies(session: AsyncSession, *, now: datetime) -> list[int]:
    """Ids of companies whose next sync is due."""
    query = select(Company.id).where(
        col(Company.next_sync_at) <= now, col(Company.state).in_([state.value for state in SYNCABLE])
    )
    return [company_id for company_id in (await session.exec(query)).all() if company_id is not None]


async def sync_company(deps: Deps, *, company_id: int, actor: str) -> SyncStatus | None:
    """Run one sync of a company (skipped when one is already running); returns its outcome."""
    lock = deps.lock_for(company_id)
    if lock.locked():
        return None
    async with lock:
        return await _sync(deps, company_id=company_id, actor=actor)


async def _sync(deps: Deps, *, company_id: int, actor: str) -> SyncStatus | None:
    now = deps.clock()
    async with deps.store.session() as session:
        company = await companies.get(session, company_id=company_id)
        connection = await approvals.connection_for(session, company_id=company_id)
        if connection is None or CompanyState(company.state) not in SYNCABLE:
            return None
        was = CompanyState(company.state)
        run = SyncRun(company_id=company_id, started_at=now)
        session.add(run)
        companies.transition(session, company=company, to=CompanyState.SYNCING, actor=actor, now=now)
        await notify.refresh_card(deps, session, company=company)
        await session.commit()
        try:
            token = await _access_token(deps, session, connection=connection)
            await session.commit()
            books = await _pull(deps.eaccounting, token, company=company, today=now.date())
        except (VismaApiError, OAuthError) as exc:
            await _failed(deps, session, company=company, run=run, exc=exc, was=was)
            await session.commit()
            return SyncStatus.FAILED
        await _store(session, company_id=company_id, books=books)
        finished = deps.clock()
        run.status = SyncStatus.OK
        run.finished_at = finished
        run.fiscal_years = len(books.fiscal_years)
        run.accounts = len({account.number for account in books.accounts})
        run.vouchers = len(books.vouchers)
        run.balances = len(books.balances)
        dates = [voucher.voucher_date for voucher in books.vouchers]
        run.period_from = min(dates) if dates else None
        run.period_to = max(dates) if dates else None
        session.add(run)
        companies.transition(session, company=company, to=CompanyState.HEALTHY, actor=actor, now=finished)
        company.last_sync_at = finished
        company.next_sync_at = finished + deps.settings.sync_interval
        summary = sync_summary(
            LastSync(finished, run.vouchers, run.accounts, run.fiscal_years, run.period_from, run.period_to)
        )
        # The thread holds what changed, not every quiet success: the first sync, and an alert resolved in place.
        await notify.resolve_alert(deps, session, company=company, how=f"the sync works again ({summary}).")
        await notify.refresh_card(deps, session, company=company)
        if was is CompanyState.CONNECTED:
            await notify.thread(
                deps,
                company=company,
                blocks=note_blocks(f"📥 First sync done: {summary}."),
                text=f"{company.name}: first sync done",
            )
        await session.commit()
        return SyncStatus.OK


async def _access_token(deps: Deps, session: AsyncSession, *, connection: Connection) -> str:
    now = deps.clock()
    if connection.access_expires_at - REFRESH_MARGIN > now:
        return deps.vault.open(connection.access_token_sealed)
    if not connection.refresh_token_sealed:
        raise OAuthError(400, "invalid_grant", "no refresh token stored")
    tokens = await deps.eaccounting.refresh(refresh_token=deps.vault.open(connection.refresh_token_sealed), now=now)
    # eAccounting rotates refresh tokens: the old one is dead now, so the new one must be saved at once.
    connection.access_token_sealed = deps.vault.seal(tokens.access_token)
    if tokens.refresh_token:
        connection.refresh_token_sealed = deps.vault.seal(tokens.refresh_token)
    connection.access_expires_at = tokens.expires_at
    session.add(connection)
    return tokens.access_token


async def _pull(client: EAccountingClient, token: str, *, company: Company, today: date) -> _Books:
    assert company.id is not None
    start = company.reconciliation_start
    books = _Books()
    for year in await client.fiscal_years(token):
        first, last = year.start_date.date(), year.end_date.date()
        if last < start or first > today:
            continue
        books.fiscal_years.append(
            FiscalYear(
                company_id=company.id,
                external_id=year.id,
                start_date=first,
                end_date=last,
                locked=year.is_locked,
            )
        )
        for account in await client.accounts(token, year.id):
            books.accounts.append(
                LedgerAccount(
                    company_id=company.id,
                    fiscal_year_external_id=year.id,
                    number=account.number,
                    name=account.name,
                    active=account.is_active,
                )
            )
        async for voucher in client.vouchers(token, year.id):
            if voucher.voucher_date.date() < start:
                continue
            books.vouchers.append(
                Voucher(
                    company_id=company.id,
                    external_id=voucher.id,
                    voucher_date=voucher.voucher_date.date(),
                    number=voucher.number,
                    text=voucher.text,
                    rows=[row.model_dump(mode="json") for row in voucher.rows],
                )
            )
    for month_end in month_ends(start, today):
        for balance in await client.balances(token, month_end):
            books.balances.append(
                AccountBalance(
                    company_id=company.id,
                    account_number=balance.account_number,
                    balance_date=month_end,
                    balance=Decimal(str(balance.balance)).quantize(Decimal("0.01")),
                )
            )
    return books


def month_ends(start: date, today: date) -> list[date]:
    """The last day of each month from `start` up to today, and today itself for the open month."""
    ends: list[date] = []
    year, month = start.year, start.month
    while True:
        end = date(year, month, calendar.monthrange(year, month)[1])
        if end >= today:
            ends.append(today)
            return ends
        ends.append(end)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


async def _store(session: AsyncSession, *, company_id: int, books: _Books) -> None:
    # A full pull replaces what the store had, in one transaction: a failed sync leaves the last good copy.
    await session.exec(delete(AccountBalance).where(col(AccountBalance.company_id) == company_id))
    await session.exec(delete(Voucher).where(col(Voucher.company_id) == company_id))
    await session.exec(delete(LedgerAccount).where(col(LedgerAccount.company_id) == company_id))
    await session.exec(delete(FiscalYear).where(col(FiscalYear.company_id) == company_id))
    session.add_all([*books.fiscal_years, *books.accounts, *books.vouchers, *books.balances])
    await session.flush()


async def _failed(
    deps: Deps, session: AsyncSession, *, company: Company, run: SyncRun, exc: Exception, was: CompanyState
) -> None:
    if isinstance(exc, OAuthError):
        problem = problems.consent_revoked(company=company.name, code=f"eAccounting {exc.error}")
    else:
        assert isinstance(exc, VismaApiError)
        problem = problems.from_eaccounting(status=exc.status, error_code=exc.code, company=company.name)
        if exc.error_id:
            log.warning("sync of company %s failed: %s (Visma ErrorId %s)", company.id, exc, exc.error_id)
    now = deps.clock()
    run.status = SyncStatus.FAILED
    run.finished_at = now
    run.error_code = problem.code
    run.error_message = problem.what
    session.add(run)
    if problem.is_permission:
        companies.transition(
            session,
            company=company,
            to=CompanyState.PERMISSION_ERROR,
            actor="sync",
            now=now,
            reason=problem.what,
        )
        await notify.alert(deps, session, company=company, problem=problem)
        company.next_sync_at = now + deps.settings.sync_interval
    else:
        # Rate limits and outages are Visma's to fix: keep the state, try again soon, tell nobody yet.
        companies.transition(session, company=company, to=was, actor="sync", now=now)
        company.next_sync_at = now + timedelta(minutes=10)
    await notify.refresh_card(deps, session, company=company)
