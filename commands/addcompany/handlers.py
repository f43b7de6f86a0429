"""Thin listeners of /addcompany: ack first, parse, call domain code, render, one Slack call."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import connect, onboarding
from bot.domain.types import CompanyState
from bot.runtime import Deps
from bot.services import companies
from bot.services.companies import CompanyDraft, CompanyExists
from bot.visma.base import Grant, VismaError
from commands.addcompany import parse
from commands.addcompany.ids import Field
from commands.addcompany.state import AddCompanyState
from commands.addcompany.views import approver_view, company_view, existing_view, settings_view
from commands.card.ids import ButtonRef


async def open_modal(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
    """/addcompany: open step 1 right away (the trigger id dies after three seconds)."""
    await ack()
    state = AddCompanyState(channel_id=body.get("channel_id"))
    await client.views_open(trigger_id=body["trigger_id"], view=company_view(state))


async def system_chosen(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
    """Step 1's system select: show that system's needs in place."""
    await ack()
    view = body["view"]
    system = parse.selected_system(view["state"]["values"])
    state = AddCompanyState.load(view.get("private_metadata"))
    # Passing the hash makes Slack refuse the update if the user already moved on (a newer view exists);
    # then the newer view wins and there is nothing to tell anyone.
    try:
        await client.views_update(view_id=view["id"], hash=view["hash"], view=company_view(state, system=system))
    except SlackApiError as exc:
        if exc.response.get("error") != "hash_conflict":
            raise


async def company_submitted(ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext) -> None:
    """Step 1 submitted: check the fields and that the company is new, then show step 2."""
    deps: Deps = context["deps"]
    step, errors = parse.company_step(view["state"]["values"], offered=deps.systems.keys())
    if step is None:
        await ack(response_action="errors", errors=errors)
        return
    async with deps.store.session() as session:
        existing = await companies.find_by_org_number(session, country=step.country, org_number=step.org_number)
    if existing is not None:
        assert existing.id is not None
        # Already registered: show where it stands, with the buttons that repair a flow left half done.
        where = CompanyState(existing.state)
        ref = ButtonRef(existing.id, where.value)
        await ack(response_action="update", view=existing_view(company_name=existing.name, state=where, ref=ref))
        return
    state = AddCompanyState.load(view.get("private_metadata"))
    state.company = step
    requester = context.user_id or ""
    await ack(response_action="update", view=settings_view(state, requester=requester, today=deps.clock().date()))


async def settings_submitted(
    ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """Step 2 submitted: check the settings (and that the bot is in the team channel chosen), then show step 3."""
    deps: Deps = context["deps"]
    step, errors = parse.settings_step(view["state"]["values"], today=deps.clock().date())
    if step is not None and step.channel and step.channel != deps.settings.alert_channel:
        refused = await _channel_refused(client, step.channel)
        if refused:
            step, errors = None, {Field.CHANNEL: refused}
    if step is None:
        await ack(response_action="errors", errors=errors)
        return
    state = AddCompanyState.load(view.get("private_metadata"))
    state.settings = step
    await ack(response_action="update", view=approver_view(state))


async def approver_submitted(ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext) -> None:
    """Step 3 submitted: save the company, its link, card and confirmation in one transaction, then close.

    Slack is told after the commit, by the outbox: a Slack outage delays the DM and the card, and never
    leaves a company registered without them.
    """
    deps: Deps = context["deps"]
    (approver_user, approver_email), errors = parse.approver_step(view["state"]["values"])
    state = AddCompanyState.load(view.get("private_metadata"))
    if errors or state.company is None or state.settings is None:
        await ack(response_action="errors", errors=errors or {Field.APPROVER_USER: "Start again with /addcompany."})
        return
    draft = CompanyDraft(
        **state.company.model_dump(),
        **state.settings.model_dump(),
        approver_user_id=approver_user,
        approver_email=approver_email,
    )
    actor = context.user_id or "unknown"
    async with deps.store.session() as session:
        try:
            company, created = await companies.register(
                session, draft=draft, actor=actor, view_id=view["id"], now=deps.clock()
            )
        except CompanyExists as exc:
            await ack(
                response_action="errors",
                errors={Field.APPROVER_USER: _already(exc.company.name, exc.company.state)},
            )
            return
        if created:  # a double submit or a Slack retry of the same view finds the first one's work done
            await onboarding.send_link(deps, session, company=company, actor=actor, reply_in=state.channel_id or actor)
        await session.commit()
    await ack()
    if created and deps.system_for(company.system).grant is Grant.LISTED:
        # Picked from the list, or already activated: connected without waiting for the administrator.
        assert company.id is not None
        await connect.check_listed(deps, company_id=company.id)


async def nxt_companies(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
    """The Business NXT companies to pick from, fed live (filtered by what is typed)."""
    deps: Deps = context["deps"]
    typed = str(body.get("value") or "").strip().lower()
    try:
        listed = await connect.listed_companies(deps)
    except VismaError as exc:
        await ack(options=[_option("", f"Business NXT did not answer: {exc.message}"[:75])])
        return
    matching = [(number, name) for number, name in listed if typed in name.lower() or typed in number][:100]
    await ack(options=[_option(number, f"{name} ({number})") for number, name in matching])


def _option(value: str, text: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text[:75]}, "value": value or "none"}


def _already(name: str, state: str) -> str:
    return f"{name} is already registered ({state.replace('_', ' ')}). Run /addcompany again to see its options."


CHANNEL_CHECK_SECONDS = 1.5


async def _channel_refused(client: AsyncWebClient, channel: str) -> str | None:
    """Why the card could not be posted in `channel`, or None. Slack answering slowly or not at all is no reason
    to refuse the step: the deliverer then says in the log what is wrong, and retries."""
    try:
        answer = await asyncio.wait_for(client.conversations_info(channel=channel), CHANNEL_CHECK_SECONDS)
    except SlackApiError as exc:
        if exc.response.get("error") in ("channel_not_found", "not_in_channel"):
            return "The bot cannot see that channel: invite it there first (/invite @the bot), or leave this empty."
        return None
    except (TimeoutError, aiohttp.ClientError):
        return None
    if not answer["channel"].get("is_member", False):
        return "The bot is not in that channel yet: invite it there first (/invite @the bot), or leave this empty."
    if answer["channel"].get("is_archived", False):
        return "That channel is archived; choose another one, or leave this empty."
    return None
