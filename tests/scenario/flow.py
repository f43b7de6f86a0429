"""Steps people take, shared by the scenario tests (each step asserts what Slack answered)."""

from __future__ import annotations

from typing import Any

from bot.simulators.slack_requests import input_values, picked_user, selected, typed
from bot.simulators.stack import ALERT_CHANNEL, Stack

KARI, OLA = "U0KARI", "U0OLA"


STEP1 = input_values(
    system=selected("eaccounting"),
    company_name=typed("Nordlys Bakeri AS"),
    country=selected("NO"),
    org_number=typed("988 077 917"),
)
STEP2 = input_values(
    period_type=selected("monthly"),
    fy_start_month=selected("1"),
    reconciliation_start={"type": "datepicker", "selected_date": "2026-01-01"},
    vat_frequency=selected("bimonthly"),
    responsible_user=picked_user(KARI),
    modules={"type": "checkboxes", "selected_options": [{"value": "vat"}]},
)
STEP3 = input_values(approver_user=picked_user(OLA))


async def submit(stack: Stack, view: dict[str, Any], state: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return await stack.submit_view(user=KARI, view=view, values=state, **kwargs)


async def open_modal(stack: Stack) -> dict[str, Any]:
    response = await stack.slack.slash(command="/addcompany", user=KARI, channel=ALERT_CHANNEL)
    assert response.status_code == 200
    await stack.settle()
    view = stack.slack_world.last_view()
    assert view is not None
    return view


async def approver_step(stack: Stack) -> dict[str, Any]:
    """Open the modal and fill steps 1 and 2; returns the view of step 3."""
    view = await open_modal(stack)
    assert (await submit(stack, view, STEP1))["response_action"] == "update"
    view = stack.slack_world.view(view["id"])
    assert (await submit(stack, view, STEP2))["response_action"] == "update"
    return stack.slack_world.view(view["id"])


async def add_company(stack: Stack) -> dict[str, Any]:
    """Run the three steps; returns the modal's view as it was at the last step."""
    view = await approver_step(stack)
    assert await submit(stack, view, STEP3) == {}
    await stack.settle()
    return view


def cards(stack: Stack) -> list[dict[str, Any]]:
    return [m for m in stack.slack_world.current_messages(ALERT_CHANNEL) if not m.get("thread_ts")]


def thread(stack: Stack) -> list[dict[str, Any]]:
    card = cards(stack)[-1]
    return [m for m in stack.slack_world.current_messages(ALERT_CHANNEL) if m.get("thread_ts") == card["ts"]]


def block_text(message: dict[str, Any]) -> str:
    parts: list[str] = [str(message.get("text", ""))]
    for block in message.get("blocks", []):
        if "text" in block and isinstance(block["text"], dict):
            parts.append(block["text"].get("text", ""))
        for element in block.get("elements", []):
            if isinstance(element.get("text"), dict):
                parts.append(element["text"].get("text", ""))
            elif isinstance(element.get("text"), str):
                parts.append(element["text"])
    return "\n".join(parts)


def approval_link(stack: Stack) -> str:
    dm = stack.slack_world.current_messages(stack.slack_world.dm_channel_for(OLA))[-1]
    for block in dm["blocks"]:
        for element in block.get("elements", []):
            if element.get("url"):
                return str(element["url"])
    raise AssertionError("no approval link in the DM")


async def approve(stack: Stack, link: str, *, company_org: str = "988077917") -> Any:
    """Ola follows the link through Visma's login, picker and consent; returns the final page."""
    browser = stack.browser
    page = await browser.get(link)
    assert page.status == 200, page.text
    page = await browser.submit(page)
    page = await browser.submit(page, values={"email": "ola@nordlysbakeri.no", "password": "demo"})
    if any("company_id" in form.fields for form in page.forms):
        page = await browser.submit(page, values={"company_id": stack.eaccounting.company_id_by_org(company_org)})
    page = await browser.submit(page, button=("decision", "accept"))
    await stack.settle()
    return page


def button(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    """The button with this action id on a message, as a click payload carries it."""
    for block in message.get("blocks", []):
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return {"type": "button", "block_id": block.get("block_id", ""), **element}
    raise AssertionError(f"no {action_id} button in {block_text(message)}")


async def press(stack: Stack, action_id: str, message: dict[str, Any] | None = None) -> None:
    """Kari clicks a button on a message (the newest card unless told) and the bot finishes what it started."""
    message = message or cards(stack)[-1]
    response = await stack.slack.click(
        user=KARI, action=button(message, action_id), channel=ALERT_CHANNEL, message=message
    )
    assert response.status_code == 200
    await stack.settle()
