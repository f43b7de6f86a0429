"""What people hear of a run: recorded in the outbox, in the same transaction as the run's outcome.

Nothing here calls Slack: the card, the thread note or the alert is delivered after the commit, drawn from
the company's state as it is then, and a Slack outage delays it without undoing or losing anything.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.problems import Problem
from bot.domain.types import CompanyState, SyncStatus
from bot.services import outbox, status
from bot.services.outbox import Note
from bot.store.models import Company, SyncRun
from bot.sync import policy


async def run_started(session: AsyncSession, *, company: Company, now: datetime) -> None:
    """Show "syncing now…" on the card."""
    await outbox.card(session, company=company, now=now)


async def run_finished(
    session: AsyncSession, *, company: Company, outcome: SyncStatus, problem: Problem | None, now: datetime
) -> None:
    """The card changes; the thread hears of a first sync, an alert, an outage or a recovery."""
    if outcome is SyncStatus.OK:
        await _healthy(session, company, now)
    elif problem is not None:
        await outbox.alert(session, company=company, problem=problem, now=now)
    elif (
        outcome is SyncStatus.FAILED
        and not company.failure_noted
        and policy.failure_visible(count=company.failure_count, since=company.failing_since, now=now)
    ):
        failing = status.failing(company)
        await outbox.outage(
            session,
            company=company,
            now=now,
            since=failing.since.isoformat() if failing.since else None,
            reason=failing.reason,
            next_try=failing.next_try.isoformat() if failing.next_try else None,
        )
        company.failure_noted = True
        session.add(company)
    await outbox.card(session, company=company, now=now)


async def _healthy(session: AsyncSession, company: Company, now: datetime) -> None:
    assert company.id is not None
    newest = await status.last_sync(session, company_id=company.id)
    assert newest is not None  # called after a run ended OK
    summary = {
        "vouchers": newest.vouchers,
        "accounts": newest.accounts,
        "period_from": newest.period_from.isoformat() if newest.period_from else None,
        "period_to": newest.period_to.isoformat() if newest.period_to else None,
    }
    first = (
        await session.exec(
            select(SyncRun.id).where(SyncRun.company_id == company.id, SyncRun.status == SyncStatus.OK).limit(2)
        )
    ).all()
    await outbox.resolve_alert(session, company=company, how="sync_works", now=now, summary=summary)
    if company.failure_noted:
        # Recovered from an outage: its own thread hears so, unless it was one of many in a roll-up (edited).
        if not await outbox.outage_over(session, company=company, now=now):
            await outbox.note(session, company=company, note=Note.RECOVERED, now=now, summary=summary)
        company.failure_noted = False
        session.add(company)
    elif len(first) == 1 and CompanyState(company.state) is CompanyState.HEALTHY:
        await outbox.note(session, company=company, note=Note.FIRST_SYNC, now=now, summary=summary)
