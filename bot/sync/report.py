"""What people hear of a run, after its outcome is committed: the card, the thread, the alert.

Every Slack call here runs after the state it reports is safe in the database, and a Slack failure is logged
rather than raised: the card is drawn again from the store at the next change. (Delivery with retries
through an outbox comes with the trust-and-atomicity work.)
"""

from __future__ import annotations

import logging

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import notify
from bot.domain.problems import Problem
from bot.domain.types import CompanyState, SyncStatus
from bot.runtime import Deps
from bot.store.models import Company, SyncRun
from bot.sync import policy
from commands.card.views import note_blocks, sync_summary

log = logging.getLogger(__name__)


async def run_started(deps: Deps, *, company_id: int) -> None:
    """Show "syncing now…" on the card."""
    await _refresh(deps, company_id)


async def run_finished(deps: Deps, *, company_id: int, outcome: SyncStatus, problem: Problem | None) -> None:
    """Edit the card; say in the thread what changed: a first sync, an alert, an outage, a recovery."""
    try:
        async with deps.store.session() as session:
            company = await session.get(Company, company_id)
            if company is None:
                return
            if outcome is SyncStatus.OK:
                await _healthy(deps, session, company)
            elif problem is not None:
                await notify.alert(deps, session, company=company, problem=problem)
            elif (
                outcome is SyncStatus.FAILED
                and not company.failure_noted
                and policy.failure_visible(count=company.failure_count, since=company.failing_since, now=deps.clock())
            ):
                await notify.thread(
                    deps,
                    company=company,
                    blocks=note_blocks(notify.failure_line(company)),
                    text=f"{company.name}: Visma is not answering",
                )
                company.failure_noted = True
                session.add(company)
            await notify.refresh_card(deps, session, company=company)
            await session.commit()
    except Exception as exc:  # the outcome is committed; the card is drawn again at the next change
        log.warning("could not tell Slack how the sync of company %s ended: %r", company_id, exc)


async def _healthy(deps: Deps, session: AsyncSession, company: Company) -> None:
    assert company.id is not None
    newest = await notify.last_sync(session, company_id=company.id)
    assert newest is not None  # called after a run ended OK
    summary = sync_summary(newest)
    first = (
        await session.exec(
            select(SyncRun.id).where(SyncRun.company_id == company.id, SyncRun.status == SyncStatus.OK).limit(2)
        )
    ).all()
    await notify.resolve_alert(deps, session, company=company, how=f"the sync works again ({summary}).")
    if company.failure_noted:
        await notify.thread(
            deps,
            company=company,
            blocks=note_blocks(f"✅ Visma answers again; the sync caught up ({summary})."),
            text=f"{company.name}: the sync works again",
        )
        company.failure_noted = False
    elif len(first) == 1 and CompanyState(company.state) is CompanyState.HEALTHY:
        await notify.thread(
            deps,
            company=company,
            blocks=note_blocks(f"📥 First sync done: {summary}."),
            text=f"{company.name}: first sync done",
        )


async def _refresh(deps: Deps, company_id: int) -> None:
    try:
        async with deps.store.session() as session:
            company = await session.get(Company, company_id)
            if company is not None:
                await notify.refresh_card(deps, session, company=company)
                await session.commit()
    except Exception as exc:  # nothing is lost: the card is drawn from the store at the next change
        log.warning("could not update the card of company %s: %r", company_id, exc)
