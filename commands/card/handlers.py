"""Buttons on a company's card and its alerts: send a new approval link, sync now, retry."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot import onboarding
from bot.domain.types import CompanyState
from bot.runtime import Deps
from bot.services import companies
from bot.sync.engine import sync_company


def _company_id(body: dict[str, Any]) -> int:
    return int(body["actions"][0]["value"])


async def resend_link(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond) -> None:
    """Send a new approval link (earlier links stop working)."""
    await ack()
    deps: Deps = context["deps"]
    actor = context.user_id or "unknown"
    async with deps.store.session() as session:
        company = await companies.get(session, company_id=_company_id(body))
        if CompanyState(company.state) is CompanyState.DEACTIVATED:
            await respond(
                text=f"{company.name} is deactivated; activate it before sending a link.",
                response_type="ephemeral",
                replace_original=False,
            )
            return
        sent = await onboarding.send_link(deps, session, company=company, actor=actor)
        await session.commit()
    where = "by DM to the approver" if sent.dm_sent else f"to you to forward: {sent.link}"
    await respond(
        text=f"A new approval link for {company.name} went {where}. Earlier links no longer work.",
        response_type="ephemeral",
        replace_original=False,
    )


async def sync_now(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond) -> None:
    """Run a sync now (Sync now on a healthy card, Retry now on an alert)."""
    await ack()
    await _sync(body, context, respond, full=False)


async def full_resync(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond) -> None:
    """Forget every checkpoint and read all of the company's books again."""
    await ack()
    await _sync(body, context, respond, full=True)


async def _sync(body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond, *, full: bool) -> None:
    deps: Deps = context["deps"]
    outcome = await sync_company(deps, company_id=_company_id(body), actor=context.user_id or "unknown", full=full)
    if outcome is None:
        await respond(
            text="A sync of this company is already running, or it is not connected.",
            response_type="ephemeral",
            replace_original=False,
        )
