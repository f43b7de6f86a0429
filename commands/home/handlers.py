"""App Home: every company by state with the card's buttons, pending approvals and open alerts, for staff.

The tab is drawn again on app_home_opened and after each change made from it. Its filter and page ride in
the view's `private_metadata` (Slack sends the home view back with every press on it, and with
app_home_opened once it has been published); modals opened from the tab carry no home view, so each
person's last filter is also remembered in memory for the refresh after them.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.types import AccountingSystem
from bot.runtime import Deps
from bot.services import overview
from bot.services.overview import StateGroup
from commands.home.ids import ALL_SYSTEMS, HomeView
from commands.home.state import HomeState, Remembered
from commands.home.views import PAGE_SIZE, SHOWN_ALERTS, SHOWN_PENDING, HomeRow, guest_view, home_view, search_view

MEMORY = "home_remembered"  # the context key of the Remembered that commands.home.register puts there


def permalink(workspace_url: str | None, channel: str, ts: str) -> str | None:
    """A message's permalink in Slack's documented shape, https://<team>.slack.com/archives/<channel>/p<ts
    without the dot>: built from auth.test's url, so a page of companies costs no chat.getPermalink each."""
    if not workspace_url:
        return None
    return f"{workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"


def _remembered(context: AsyncBoltContext) -> Remembered:
    memory = context.get(MEMORY)
    return memory if isinstance(memory, Remembered) else Remembered()


def _state_of(view: Mapping[str, Any] | None) -> HomeState | None:
    if view and view.get("type") == "home" and view.get("private_metadata"):
        return HomeState.load(str(view["private_metadata"]))
    return None


async def publish(
    context: AsyncBoltContext, client: AsyncWebClient, *, user_id: str, state: HomeState, notice: str | None = None
) -> None:
    """Draw the home tab for `user_id` with this filter and page (the guest view for anyone not staff)."""
    if not context.get("is_staff", False):
        await client.views_publish(user_id=user_id, view=guest_view())
        return
    deps: Deps = context["deps"]
    wanted = state.filter()
    async with deps.store.session() as session:
        counts = await overview.counts(session, wanted=wanted)
        listed = await overview.page(
            session, wanted=wanted, offset=state.page * PAGE_SIZE, limit=PAGE_SIZE, now=deps.clock()
        )
        pending, pending_total = await overview.pending_approvals(session, limit=SHOWN_PENDING)
        alerts, alerts_total = await overview.open_alerts(session, limit=SHOWN_ALERTS)
        others = {item.company_id for item in pending} | {item.company_id for item in alerts}
        messages = {**await overview.card_messages(session, company_ids=others), **listed.card_messages}
    # auth.test is called once per process (it is Bolt's authorize too) and its answer kept.
    workspace = (await deps.authorize.warm()).url
    links = {
        company_id: link
        for company_id, (channel, ts) in messages.items()
        if (link := permalink(workspace, channel, ts)) is not None
    }
    state = state.model_copy(update={"page": listed.offset // PAGE_SIZE})
    rows = [HomeRow(card.name, card.state, links.get(card.company_id), card) for card in listed.cards]
    staff = context.get("staff")
    view = home_view(
        rows,
        counts,
        state=state,
        total=listed.total,
        pending=pending,
        pending_total=pending_total,
        alerts=alerts,
        alerts_total=alerts_total,
        links=links,
        notice=notice,
        staff_group=getattr(staff, "usergroup", deps.settings.staff_usergroup),
    )
    _remembered(context).keep(user_id, state)
    await client.views_publish(user_id=user_id, view=view)


async def republish(
    context: AsyncBoltContext,
    client: AsyncWebClient,
    *,
    user_id: str,
    view: Mapping[str, Any] | None = None,
    notice: str | None = None,
) -> None:
    """Draw the tab again after a change made from it, keeping the person's filter (from the home view the
    press came with, else the one remembered), with what the change has to say on top."""
    state = _state_of(view) or _remembered(context).get(user_id) or HomeState()
    await publish(context, client, user_id=user_id, state=state, notice=notice)


async def refresh_if_seen(context: AsyncBoltContext, client: AsyncWebClient, *, user_id: str) -> None:
    """Draw the tab again for someone whose tab this process drew before (after a modal opened from it)."""
    state = _remembered(context).get(user_id)
    if state is not None:
        await publish(context, client, user_id=user_id, state=state)


async def home_opened(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
    """Publish the home tab for the user who opened it."""
    if event.get("tab") != "home":
        return
    await republish(context, client, user_id=event["user"], view=event.get("view"))


def _pressed(change: Callable[[HomeState, str], HomeState]) -> Callable[..., Coroutine[Any, Any, None]]:
    """A control on the tab: read the filter from the view, change it, draw the tab again."""

    async def handler(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        await ack()
        action = body["actions"][0]
        value = str((action.get("selected_option") or {}).get("value") or action.get("value") or "")
        state = _state_of(body.get("view")) or HomeState()
        await publish(context, client, user_id=body["user"]["id"], state=change(state, value))

    return handler


def _group(state: HomeState, value: str) -> HomeState:
    try:
        group = StateGroup(value)
    except ValueError:
        group = StateGroup.ALL
    return state.model_copy(update={"group": group, "page": 0})


def _system(state: HomeState, value: str) -> HomeState:
    try:
        system = AccountingSystem(value) if value != ALL_SYSTEMS else None
    except ValueError:
        system = None
    return state.model_copy(update={"system": system, "page": 0})


def _page(state: HomeState, value: str) -> HomeState:
    return state.model_copy(update={"page": int(value) if value.isdigit() else 0})


def _no_search(state: HomeState, value: str) -> HomeState:
    return state.model_copy(update={"query": "", "page": 0})


state_chosen = _pressed(_group)
system_chosen = _pressed(_system)
page_chosen = _pressed(_page)
search_cleared = _pressed(_no_search)


async def search_opened(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
    """Open the search modal (it carries the tab's filter, so the search keeps it)."""
    await ack()
    state = _state_of(body.get("view")) or HomeState()
    await client.views_open(trigger_id=body["trigger_id"], view=search_view(state))


async def search_submitted(
    ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """Close the modal and list the companies matching what was typed."""
    raw = view["state"]["values"].get(HomeView.QUERY, {}).get(HomeView.QUERY, {})
    query = " ".join(str(raw.get("value") or "").split())[:100]
    state = HomeState.load(str(view.get("private_metadata") or "")).model_copy(update={"query": query, "page": 0})
    await ack()
    await publish(context, client, user_id=context.user_id or "", state=state)
