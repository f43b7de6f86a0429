"""The approver's DM buttons."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot import connect
from bot.runtime import Deps


async def link_opened(ack: AsyncAck) -> None:
    """A URL button still sends an action; Slack wants it acknowledged."""
    await ack()


async def decline(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond) -> None:
    """ "Not me / decline" (confirmed in Slack's dialog): the link stops working and the requester is told in
    the card's thread. Only the request's approver can decline it."""
    await ack()
    deps: Deps = context["deps"]
    value = str(body["actions"][0].get("value", ""))
    company = None
    if value.isdigit():  # anything else is not a button we drew: answered like a request no longer open
        company = await connect.decline_by_request(deps, request_id=int(value), actor=context.user_id or "unknown")
    if company is None:
        await respond(text="This request is no longer open.", response_type="ephemeral", replace_original=False)
