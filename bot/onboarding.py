"""Sending approval links: a new link, the approver's DM, and the card; used by the modal and the buttons."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import notify
from bot.domain.types import AccountingSystem, CompanyState, Country
from bot.runtime import Deps
from bot.services import approvals, companies
from bot.store.models import Company
from commands.approval.views import ApprovalAsk, dm_blocks, dm_text

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LinkSent:
    """Where the link went: by DM to the approver, or back to the requester to forward."""

    link: str
    dm_sent: bool


async def requester_name(deps: Deps, user_id: str) -> str:
    """A Slack user's real name, for pages and DMs ("Kari Nordmann")."""
    response = await deps.slack.users_info(user=user_id)
    profile = response["user"].get("profile", {})
    return str(profile.get("real_name") or response["user"].get("real_name") or response["user"]["name"])


async def send_link(deps: Deps, session: AsyncSession, *, company: Company, actor: str) -> LinkSent:
    """Issue a new approval link, DM it to the approver when they are in Slack, and update the card."""
    now = deps.clock()
    name = await requester_name(deps, actor)
    issued = await approvals.issue(
        session,
        company=company,
        requested_by=actor,
        requested_by_name=name,
        now=now,
        valid_for=deps.settings.approval_link_timedelta,
    )
    if CompanyState(company.state) is not CompanyState.AWAITING_APPROVAL:
        companies.transition(
            session,
            company=company,
            to=CompanyState.AWAITING_APPROVAL,
            actor=actor,
            now=now,
            reason="new approval link sent",
        )
        notify.clear_alert(company)
    link = deps.settings.url(f"approve/{issued.token}")
    dm_sent = False
    if company.approver_user_id:
        assert issued.request.id is not None
        ask = ApprovalAsk(
            request_id=issued.request.id,
            requester_name=name,
            firm_name=deps.settings.firm_name,
            company_name=company.name,
            org_number=company.org_number,
            country=Country(company.country),
            system=AccountingSystem(company.system),
            link=link,
            expires_at=issued.request.expires_at,
        )
        try:
            opened = await deps.slack.conversations_open(users=company.approver_user_id)
            channel = str(opened["channel"]["id"])
            posted = await deps.slack.chat_postMessage(channel=channel, blocks=dm_blocks(ask), text=dm_text(ask))
        except SlackApiError as exc:
            # The approver cannot be reached by DM (deactivated, a guest, DMs closed): the link still exists,
            # so it goes back to the requester to forward rather than being lost.
            log.warning("could not DM the approver of company %s: %s", company.id, exc.response.get("error"))
        else:
            issued.request.dm_channel = channel
            issued.request.dm_ts = str(posted["ts"])
            session.add(issued.request)
            dm_sent = True
    await notify.refresh_card(deps, session, company=company)
    return LinkSent(link=link, dm_sent=dm_sent)
