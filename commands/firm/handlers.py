"""The firm settings modal: open it, save it (errors inline, nothing saved until they are fixed)."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.runtime import Deps
from bot.services import firm
from bot.services.firm import InvalidCustomerIds, parse_customer_ids
from commands.firm.ids import FirmView
from commands.firm.views import settings_view


async def open_settings(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
    """Show the firm's settings as they are (pushed on top when pressed inside a modal)."""
    await ack()
    deps: Deps = context["deps"]
    async with deps.store.session() as session:
        ids = firm.customer_ids(await firm.settings(session))
        await session.commit()
    view = settings_view(customer_ids=ids)
    if body.get("view") and body["view"].get("type") == "modal":
        await client.views_push(trigger_id=body["trigger_id"], view=view)
    else:
        await client.views_open(trigger_id=body["trigger_id"], view=view)


async def settings_submitted(ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext) -> None:
    """Keep the settings, or say inline what is wrong."""
    deps: Deps = context["deps"]
    raw = view["state"]["values"].get(FirmView.NXT_CUSTOMER_IDS, {}).get(FirmView.NXT_CUSTOMER_IDS, {})
    try:
        ids = parse_customer_ids(str(raw.get("value") or ""))
    except InvalidCustomerIds as exc:
        await ack(response_action="errors", errors={FirmView.NXT_CUSTOMER_IDS.value: str(exc)})
        return
    async with deps.store.session() as session:
        await firm.set_customer_ids(session, ids=ids, actor=context.user_id or "", now=deps.clock())
        await session.commit()
    await ack()
