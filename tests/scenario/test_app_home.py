"""App Home for staff: every company by state with the card's buttons, filters, paging, pending approvals and
open alerts; and the staff group chosen in Firm settings, which cannot lock out the person choosing it."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import col, select

from bot.domain.types import CompanyState
from bot.simulators.slack_requests import input_values, picked_user, selected, typed
from bot.simulators.stack import ALERT_CHANNEL
from bot.store.models import AuditEvent, Company, FirmSettings, SyncRun
from commands.card.ids import CardAction
from commands.home.ids import HomeAction
from commands.home.state import HomeState
from commands.staff import NOT_STAFF
from tests import factories
from tests.scenario.flow import KARI, OLA, add_company, approval_link, approve, block_text, cards

PER = "U0PER"


def texts(node: Any) -> str:
    """Every text on the tab, mrkdwn and plain."""
    if isinstance(node, dict):
        own = [node["text"]] if isinstance(node.get("text"), str) else []
        return "\n".join(own + [texts(value) for value in node.values() if isinstance(value, (dict, list))])
    if isinstance(node, list):
        return "\n".join(texts(value) for value in node)
    return ""


def home(stack, user: str = KARI) -> dict[str, Any]:
    view = stack.slack_world.home[user]
    return {**view, "id": f"VHOME{user}"}


def home_state(stack, user: str = KARI) -> HomeState:
    return HomeState.load(stack.slack_world.home[user].get("private_metadata"))


def publishes(stack) -> int:
    return len(stack.slack_world.calls_to("views.publish"))


async def open_home(stack, user: str = KARI) -> dict[str, Any]:
    response = await stack.slack.event({"type": "app_home_opened", "user": user, "channel": "D0X", "tab": "home"})
    assert response.status_code == 200
    await stack.settle()
    return home(stack, user)


def element(view: dict[str, Any], action_id: str, *, block_prefix: str = "") -> dict[str, Any]:
    for block in view["blocks"]:
        for item in block.get("elements", []):
            if item.get("action_id") == action_id and block.get("block_id", "").startswith(block_prefix):
                return {"block_id": block.get("block_id", ""), **item}
    raise AssertionError(f"no {action_id} on the tab:\n{texts(view['blocks'])}")


async def press(stack, action_id: str, *, user: str = KARI, company_id: int | None = None) -> dict[str, Any]:
    """Press a button on the home tab (one of a company's when company_id is given)."""
    view = home(stack, user)
    prefix = f"home_company_{company_id}" if company_id is not None else ""
    response = await stack.slack.click(user=user, action=element(view, action_id, block_prefix=prefix), view=view)
    assert response.status_code == 200
    await stack.settle()
    return home(stack, user)


async def choose(stack, action_id: str, value: str, *, user: str = KARI) -> dict[str, Any]:
    """Pick an option of one of the tab's filters."""
    view = home(stack, user)
    chosen = {**element(view, action_id), "selected_option": {"value": value}}
    await stack.slack.click(user=user, action=chosen, view=view)
    await stack.settle()
    return home(stack, user)


async def the_company(stack) -> Company:
    async with stack.deps.store.session() as session:
        [company] = (await session.exec(select(Company))).all()
    return company


async def connected(stack) -> dict[str, Any]:
    await add_company(stack)
    await approve(stack, approval_link(stack))
    return cards(stack)[-1]


async def test_staff_see_every_company_filter_it_and_act_on_it_as_on_the_card(stack):
    card = await connected(stack)
    company = await the_company(stack)
    permalinks = len(stack.slack_world.calls_to("chat.getPermalink"))
    view = await open_home(stack)
    shown = texts(view["blocks"])
    link = f"https://fjordbris.slack.test/archives/{ALERT_CHANNEL}/p{card['ts'].replace('.', '')}"
    assert f"<{link}|Nordlys Bakeri AS>" in shown
    # Built from auth.test's url, called once per process: no chat.getPermalink per company.
    assert len(stack.slack_world.calls_to("chat.getPermalink")) == permalinks
    assert len(stack.slack_world.calls_to("auth.test")) == 1
    assert "1 healthy" in shown
    assert "Visma eAccounting" in shown
    assert "last sync" in shown  # the state in words, as the card says it

    view = await choose(stack, HomeAction.STATE, "deactivated")
    assert "No companies match this filter." in texts(view["blocks"])
    assert home_state(stack).group == "deactivated"
    view = await choose(stack, HomeAction.STATE, "healthy")
    view = await choose(stack, HomeAction.SYSTEM, "visma_net")
    assert "Nordlys Bakeri AS" not in texts(view["blocks"]).split("Pending approvals")[0]
    view = await choose(stack, HomeAction.SYSTEM, "eaccounting")
    assert "Nordlys Bakeri AS" in texts(view["blocks"])

    updates = len(stack.slack_world.calls_to("chat.update"))
    before = publishes(stack)
    await press(stack, CardAction.SYNC_NOW, company_id=company.id)
    async with stack.deps.store.session() as session:
        runs = (await session.exec(select(SyncRun).where(SyncRun.actor == KARI))).all()
    assert len(runs) == 1
    assert len(stack.slack_world.calls_to("chat.update")) > updates  # the card in the channel is edited
    assert publishes(stack) >= before + 2  # "syncing now", then the result
    assert home_state(stack) == HomeState(group="healthy", system="eaccounting")

    before = publishes(stack)
    view = await press(stack, CardAction.DEACTIVATE, company_id=company.id)
    assert (await the_company(stack)).state == CompanyState.DEACTIVATED
    assert "Deactivated" in block_text(cards(stack)[-1])
    assert publishes(stack) == before + 1
    assert home_state(stack).group == "healthy"  # the filter is kept …
    assert "1 deactivated" in texts(view["blocks"])  # … and the company has left it
    assert "No companies match this filter." in texts(view["blocks"])

    await choose(stack, HomeAction.STATE, "deactivated")
    await press(stack, CardAction.ACTIVATE, company_id=company.id)
    assert (await the_company(stack)).state != CompanyState.DEACTIVATED


async def test_a_press_from_an_older_tab_says_where_the_company_stands(stack):
    await connected(stack)
    company = await the_company(stack)
    await open_home(stack)
    stale = home(stack)
    await press(stack, CardAction.DEACTIVATE, company_id=company.id)
    action = element(stale, CardAction.SYNC_NOW, block_prefix=f"home_company_{company.id}")
    await stack.slack.click(user=KARI, action=action, view=stale)
    await stack.settle()
    assert "has moved on (it is now deactivated); nothing was changed" in texts(home(stack)["blocks"])
    assert stack.slack_world.calls_to("views.update") == []


async def test_pending_approvals_and_open_alerts(stack):
    await add_company(stack)
    company = await the_company(stack)
    view = await open_home(stack)
    shown = texts(view["blocks"])
    assert "*Pending approvals (1)*" in shown
    assert f"<@{OLA}>, sent" in shown
    assert "*Open alerts*\nNone" in shown

    # Change approver from the tab: a modal of its own (views.open: there is no modal to push onto), and
    # the tab is drawn again once it is saved.
    await press(stack, CardAction.CHANGE_APPROVER, company_id=company.id)
    assert stack.slack_world.calls_to("views.push") == []
    modal = stack.slack_world.last_view()
    assert modal is not None
    assert modal["callback_id"] == "card_change_approver_view"
    before = publishes(stack)
    assert await stack.submit_view(user=KARI, view=modal, values=input_values(approver_user=picked_user(PER))) == {
        "response_action": "clear"
    }
    await stack.settle()
    assert publishes(stack) == before + 1
    assert f"<@{PER}>, sent" in texts(home(stack)["blocks"])

    await approve_as_per(stack)
    stack.eaccounting.switches.no_full_permission = True
    await open_home(stack)
    await press(stack, CardAction.SYNC_NOW, company_id=company.id)
    shown = texts(home(stack)["blocks"])
    assert "*Open alerts (1)*" in shown
    assert "full program permission" in shown
    assert "1 needs action" in shown
    assert "*Pending approvals*\nNone" in shown


async def approve_as_per(stack) -> None:
    """Per approves the link he got (as Ola would), connecting the company."""
    dm = stack.slack_world.current_messages(stack.slack_world.dm_channel_for(PER))[-1]
    link = next(item["url"] for block in dm["blocks"] for item in block.get("elements", []) if item.get("url"))
    await approve(stack, link)
    assert (await the_company(stack)).state == CompanyState.HEALTHY


async def test_many_companies_come_a_page_at_a_time(stack):
    async with stack.deps.store.session() as session:
        for index in range(30):
            session.add(factories.company(name=f"Firma {index:02d} AS", org_number=str(910000000 + index)))
        await session.commit()
    view = await open_home(stack)
    assert "1–25 of 30" in texts(view["blocks"])
    assert len(view["blocks"]) <= 100
    view = await press(stack, HomeAction.NEXT_PAGE)
    assert "26–30 of 30" in texts(view["blocks"])
    assert "Firma 29 AS" in texts(view["blocks"])
    view = await press(stack, HomeAction.PREVIOUS_PAGE)
    assert "1–25 of 30" in texts(view["blocks"])

    # Search (a modal that keeps the filter), then clear it.
    await press(stack, HomeAction.SEARCH)
    modal = stack.slack_world.last_view()
    assert modal is not None
    assert modal["callback_id"] == "home_search"
    assert await stack.submit_view(user=KARI, view=modal, values=input_values(home_search_query=typed("firma 1"))) == {}
    await stack.settle()
    shown = texts(home(stack)["blocks"])
    assert "1–10 of 10" in shown
    assert "Firma 10 AS" in shown
    assert "Firma 20 AS" not in shown
    view = await press(stack, HomeAction.CLEAR_SEARCH)
    assert "1–25 of 30" in texts(view["blocks"])


async def test_the_staff_group_is_chosen_in_firm_settings_without_locking_oneself_out(stack):
    stack.slack_world.usergroups["S0BOOKS"] = [PER]
    stack.slack_world.usergroup_names["S0BOOKS"] = ("Bookkeepers", "bookkeepers")
    await open_home(stack)
    await press(stack, "firm_settings_open")
    modal = stack.slack_world.last_view()
    assert modal is not None
    assert modal["callback_id"] == "firm_settings"
    options = {option["value"]: option["text"]["text"] for option in element_of(modal, "staff_usergroup")["options"]}
    assert options["S0BOOKS"] == "Bookkeepers (@bookkeepers)"
    assert options["S0STAFF"] == "Fjordbris staff (@staff)"

    refused = await stack.submit_view(user=KARI, view=modal, values=input_values(staff_usergroup=selected("S0BOOKS")))
    assert refused["response_action"] == "errors"
    assert "lock you out" in refused["errors"]["staff_usergroup"]
    async with stack.deps.store.session() as session:
        assert (await session.exec(select(FirmSettings.staff_usergroup_id))).first() is None

    before = publishes(stack)
    saved = await stack.submit_view(
        user=KARI,
        view=modal,
        values=input_values(staff_usergroup=selected("S0STAFF"), nxt_customer_ids=typed("1234567")),
    )
    assert saved == {}
    await stack.settle()
    async with stack.deps.store.session() as session:
        assert (await session.exec(select(FirmSettings.staff_usergroup_id))).first() == "S0STAFF"
        audit = (await session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))).all()
    assert any(
        event.action == "firm.staff_usergroup"
        and event.actor == KARI
        and event.detail == {"from": None, "to": "S0STAFF"}
        for event in audit
    )
    assert publishes(stack) == before + 1
    assert "Firm settings saved." in texts(home(stack)["blocks"])
    assert "<!subteam^S0STAFF>" in texts(home(stack)["blocks"])

    # Ola is not in the group: /addcompany is refused, and his home tab shows no client data.
    opened = len(stack.slack_world.calls_to("views.open"))
    response = await stack.slack.slash(command="/addcompany", user=OLA, channel=ALERT_CHANNEL)
    await stack.settle()
    assert response.text == NOT_STAFF
    assert len(stack.slack_world.calls_to("views.open")) == opened
    await open_home(stack, OLA)
    assert "use the link in your message" in json.dumps(stack.slack_world.home[OLA])
    # Kari is, and still may.
    await stack.slack.slash(command="/addcompany", user=KARI, channel=ALERT_CHANNEL)
    await stack.settle()
    assert len(stack.slack_world.calls_to("views.open")) == opened + 1


def element_of(view: dict[str, Any], action_id: str) -> dict[str, Any]:
    for block in view["blocks"]:
        if block.get("element", {}).get("action_id") == action_id:
            return dict(block["element"])
    raise AssertionError(f"no {action_id} in the modal")
