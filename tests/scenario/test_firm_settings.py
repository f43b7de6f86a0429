"""The firm's settings from Slack: staff open them from App Home, mistakes show inline, nothing half-saved."""

from __future__ import annotations

from bot.services import firm
from bot.simulators.slack_requests import input_values, typed
from tests.scenario.flow import KARI, button


async def open_settings(stack, user=KARI):
    await stack.slack.event({"type": "app_home_opened", "user": user, "channel": "D0KARI", "tab": "home"})
    await stack.settle()
    home = stack.slack_world.home[user]
    await stack.slack.click(user=user, action=button(home, "firm_settings_open"), view={**home, "id": "VHOME"})
    await stack.settle()
    return stack.slack_world.last_view()


async def test_customer_ids_are_checked_inline_then_kept(stack):
    view = await open_settings(stack)
    assert view is not None
    assert view["callback_id"] == "firm_settings"
    bad = await stack.submit_view(user=KARI, view=view, values=input_values(nxt_customer_ids=typed("12a, 34")))
    assert bad["response_action"] == "errors"
    assert "digits" in bad["errors"]["nxt_customer_ids"]
    async with stack.deps.store.session() as session:
        assert firm.customer_ids(await firm.settings(session)) == []
    good = await stack.submit_view(
        user=KARI, view=view, values=input_values(nxt_customer_ids=typed("1234567, 7654321 1234567"))
    )
    assert good == {}
    async with stack.deps.store.session() as session:
        assert firm.customer_ids(await firm.settings(session)) == [1234567, 7654321]
    again = await open_settings(stack)
    assert "1234567, 7654321" in str(again)


async def test_the_first_business_nxt_company_can_set_them_from_the_modal(stack):
    from tests.scenario.flow import open_modal

    view = await open_modal(stack)
    button = {"type": "button", "action_id": "firm_settings_open", "text": {"type": "plain_text", "text": "Firm"}}
    await stack.slack.click(user=KARI, action=button, view=view)
    await stack.settle()
    [pushed] = stack.slack_world.calls_to("views.push")
    assert pushed.args["view"]["callback_id"] == "firm_settings"
