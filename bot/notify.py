"""The Slack edge for everything that is not a reply to a user action: the status card, its thread, DMs."""

from __future__ import annotations

import logging
from datetime import datetime

from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.problems import Problem
from bot.domain.types import AccountingSystem, ApprovalStatus, CompanyState, Country, SyncStatus
from bot.runtime import Deps
from bot.services import approvals
from bot.slack_format import when
from bot.store.models import ApprovalRequest, Company, SyncRun
from bot.sync import policy, runs
from commands.card.views import Card, LastSync, card_blocks, card_text, note_blocks, problem_blocks

log = logging.getLogger(__name__)


async def load_card(session: AsyncSession, *, company: Company, now: datetime) -> Card:
    """Read what the card shows from the store."""
    assert company.id is not None
    request = await approvals.latest(session, company_id=company.id)
    pending = request if request and request.status == ApprovalStatus.PENDING else None
    connection = await approvals.connection_for(session, company_id=company.id)
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
        connected_by=connection.connected_by if connection else None,
        connected_at=connection.connected_at if connection else None,
        last_sync=await last_sync(session, company_id=company.id),
        next_sync_at=company.next_sync_at,
        syncing=await runs.live(session, company_id=company.id, now=now) is not None,
        failure=failure_line(company)
        if policy.failure_visible(count=company.failure_count, since=company.failing_since, now=now)
        else None,
        books_locked_to=company.books_locked_to,
    )


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


def failure_line(company: Company) -> str:
    """ "Visma is not answering since …, next try …" for a run of failures nobody at the client can fix."""
    system = AccountingSystem(company.system).label
    since = when(company.failing_since) if company.failing_since else "a while"
    reason = f" ({company.failure_reason})" if company.failure_reason else ""
    upcoming = f", next try {when(company.next_sync_at)}" if company.next_sync_at else ""
    return f"⚠️ {system} has not answered properly since {since}{reason}{upcoming}. Nothing to do unless it lasts."


async def refresh_card(deps: Deps, session: AsyncSession, *, company: Company) -> None:
    """Post the company's card, or edit it in place; the caller commits (the card's ts is stored)."""
    card = await load_card(session, company=company, now=deps.clock())
    blocks, text = card_blocks(card), card_text(card)
    if company.card_channel and company.card_ts:
        try:
            await deps.slack.chat_update(channel=company.card_channel, ts=company.card_ts, blocks=blocks, text=text)
            return
        except SlackApiError as exc:
            # Someone deleted the card: post a new one rather than lose the company from the channel.
            if exc.response.get("error") != "message_not_found":
                raise
    response = await deps.slack.chat_postMessage(channel=deps.settings.alert_channel, blocks=blocks, text=text)
    company.card_channel = str(response["channel"])
    company.card_ts = str(response["ts"])
    session.add(company)


async def thread(deps: Deps, *, company: Company, blocks: list[Block], text: str) -> str | None:
    """Post in the card's thread; returns the message ts."""
    if not (company.card_channel and company.card_ts):
        return None
    response = await deps.slack.chat_postMessage(
        channel=company.card_channel, thread_ts=company.card_ts, blocks=blocks, text=text
    )
    return str(response["ts"])


async def alert(deps: Deps, session: AsyncSession, *, company: Company, problem: Problem) -> None:
    """Post a problem in the card's thread; the same cause again updates that alert's count instead."""
    assert company.id is not None
    if company.alert_code == problem.code and company.alert_ts and company.card_channel:
        company.alert_count += 1
        blocks = problem_blocks(
            company_name=company.name,
            responsible_user_id=company.responsible_user_id,
            problem=problem,
            company_id=company.id,
            count=company.alert_count,
        )
        await deps.slack.chat_update(
            channel=company.card_channel,
            ts=company.alert_ts,
            blocks=blocks,
            text=f"{company.name}: {problem.what}",
        )
    else:
        blocks = problem_blocks(
            company_name=company.name,
            responsible_user_id=company.responsible_user_id,
            problem=problem,
            company_id=company.id,
        )
        company.alert_ts = await thread(deps, company=company, blocks=blocks, text=f"{company.name}: {problem.what}")
        company.alert_code = problem.code
        company.alert_count = 1
    session.add(company)


def clear_alert(company: Company) -> bool:
    """Forget the open alert without touching Slack; True when there was one."""
    had = company.alert_code is not None
    company.alert_code = None
    company.alert_ts = None
    company.alert_count = 0
    return had


async def resolve_alert(deps: Deps, session: AsyncSession, *, company: Company, how: str) -> bool:
    """Edit the open alert to say it is resolved and how, then forget it; True when there was one."""
    if company.alert_ts and company.card_channel:
        text = f"✅ Resolved: {how}"
        try:
            await deps.slack.chat_update(
                channel=company.card_channel, ts=company.alert_ts, blocks=note_blocks(text), text=text
            )
        except SlackApiError as exc:
            log.warning("could not mark the alert of company %s resolved: %s", company.id, exc.response.get("error"))
    had = clear_alert(company)
    session.add(company)
    return had


async def edit_dm(deps: Deps, *, request: ApprovalRequest, blocks: list[Block], text: str) -> None:
    """Edit the approver's DM in place (approved, declined); a failure here is logged, not raised."""
    if not (request.dm_channel and request.dm_ts):
        return
    try:
        await deps.slack.chat_update(channel=request.dm_channel, ts=request.dm_ts, blocks=blocks, text=text)
    except SlackApiError as exc:
        log.warning("could not edit approval DM of request %s: %s", request.id, exc.response.get("error"))
