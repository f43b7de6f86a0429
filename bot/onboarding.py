"""Sending approval links and the company changes around them; used by the modal and the card's buttons.

Everything here is one transaction with the outbox: the new link, the approver's DM, the card and the
requester's confirmation are recorded together and delivered after the commit, so a Slack failure can
delay them but never leave a company without its link or its card.
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.types import CompanyState
from bot.runtime import Deps
from bot.services import approvals, companies, outbox
from bot.store.models import ApprovalRequest, Company


async def send_link(
    deps: Deps, session: AsyncSession, *, company: Company, actor: str, reply_in: str
) -> ApprovalRequest:
    """Issue a new approval link (earlier ones stop working), DM it to the approver when they are in Slack,
    update the card, and confirm to `actor` in the conversation `reply_in` (with the link to forward when
    the DM cannot be delivered). The caller commits."""
    now = deps.clock()
    issued = await approvals.issue(
        session,
        company=company,
        requested_by=actor,
        requested_by_name="",  # filled in from Slack when the DM is delivered
        now=now,
        valid_for=deps.settings.approval_link_timedelta,
    )
    for old_id in issued.superseded:
        old = await session.get(ApprovalRequest, old_id)
        if old is not None:
            await outbox.approval_changed(session, request=old, now=now)
    if CompanyState(company.state) is not CompanyState.AWAITING_APPROVAL:
        companies.transition(
            session,
            company=company,
            to=CompanyState.AWAITING_APPROVAL,
            actor=actor,
            now=now,
            reason="new approval link sent",
        )
        await outbox.resolve_alert(session, company=company, how="new_link", now=now)
    sealed = deps.vault.seal(deps.settings.url(f"approve/{issued.token}"))
    dm = None
    if company.approver_user_id:
        dm = await outbox.approval_dm(session, request=issued.request, link_sealed=sealed, now=now)
    await outbox.card(session, company=company, now=now)
    outbox.confirmation(
        session,
        company=company,
        request=issued.request,
        dm=dm,
        channel=reply_in,
        user=actor,
        link_sealed=sealed,
        now=now,
    )
    return issued.request


async def cancel(deps: Deps, session: AsyncSession, *, company: Company, actor: str) -> None:
    """Stop onboarding a company that was never connected: its links stop working, it is deactivated."""
    await _switch_off(deps, session, company=company, actor=actor, reason="cancelled before approval", how="cancelled")


async def deactivate(deps: Deps, session: AsyncSession, *, company: Company, actor: str) -> None:
    """Staff switch a company off: no more syncs, links stop working, the books stay."""
    await _switch_off(deps, session, company=company, actor=actor, reason="deactivated by staff", how="deactivated")


async def _switch_off(
    deps: Deps, session: AsyncSession, *, company: Company, actor: str, reason: str, how: str
) -> None:
    now = deps.clock()
    assert company.id is not None
    for request_id in await approvals.supersede(session, company_id=company.id):
        request = await session.get(ApprovalRequest, request_id)
        if request is not None:
            await outbox.approval_changed(session, request=request, now=now)
    companies.transition(session, company=company, to=CompanyState.DEACTIVATED, actor=actor, now=now, reason=reason)
    company.next_sync_at = None
    company.failure_noted = False
    await outbox.resolve_alert(session, company=company, how=how, now=now)
    await outbox.outage_over(session, company=company, now=now)
    await outbox.card(session, company=company, now=now)


async def activate(deps: Deps, session: AsyncSession, *, company: Company, actor: str, reply_in: str) -> None:
    """Staff switch a company back on: synced again when its connection is there, else a new approval link."""
    now = deps.clock()
    assert company.id is not None
    if await approvals.connection_for(session, company_id=company.id) is None:
        await send_link(deps, session, company=company, actor=actor, reply_in=reply_in)
        return
    companies.transition(session, company=company, to=CompanyState.CONNECTED, actor=actor, now=now, reason=None)
    company.next_sync_at = now
    await outbox.card(session, company=company, now=now)
