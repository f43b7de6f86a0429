"""A company looked after by a team with its own channel: its card and alerts go there, not to ALERT_CHANNEL; a
channel the bot cannot post in is refused in the modal, before anything is saved."""

from __future__ import annotations

from sqlmodel import select

from bot.simulators.slack_requests import input_values, picked_channel
from bot.store.models import Company
from commands.addcompany.ids import Field
from commands.card.ids import CardAction
from tests.scenario.flow import (
    ALERT_CHANNEL,
    KARI,
    STEP1,
    STEP2,
    STEP3,
    approval_link,
    approve,
    block_text,
    button,
    open_modal,
    submit,
)

TEAM = "C0TEAMNORD"


def with_channel(channel: str) -> dict:
    values = {key: dict(value) for key, value in STEP2.items()}
    values.update(input_values(team_channel=picked_channel(channel)))
    return values


async def settings_step(stack) -> dict:
    view = await open_modal(stack)
    assert (await submit(stack, view, STEP1))["response_action"] == "update"
    return stack.slack_world.view(view["id"])


async def test_a_channel_the_bot_is_not_in_is_refused_inline_and_nothing_is_saved(stack):
    stack.slack_world.add_channel(TEAM, bot_member=False)
    view = await settings_step(stack)
    answer = await submit(stack, view, with_channel(TEAM))
    assert answer["response_action"] == "errors"
    assert "invite it there first" in answer["errors"][Field.CHANNEL]
    answer = await submit(stack, view, with_channel("D0KARI"))
    assert "Choose a channel" in answer["errors"][Field.CHANNEL]
    async with stack.deps.store.session() as session:
        assert (await session.exec(select(Company))).all() == []


async def test_the_card_and_its_alerts_go_to_the_teams_channel(stack):
    stack.slack_world.add_channel(TEAM, bot_member=True)
    view = await settings_step(stack)
    assert (await submit(stack, view, with_channel(TEAM)))["response_action"] == "update"
    view = stack.slack_world.view(view["id"])
    assert await submit(stack, view, STEP3) == {}
    await stack.settle()
    assert not [m for m in stack.slack_world.current_messages(ALERT_CHANNEL) if "Nordlys" in block_text(m)]
    [card] = [m for m in stack.slack_world.current_messages(TEAM) if not m.get("thread_ts")]
    assert "Awaiting approval" in block_text(card)

    await approve(stack, approval_link(stack))
    stack.eaccounting.switches.no_full_permission = True
    card = next(m for m in stack.slack_world.current_messages(TEAM) if not m.get("thread_ts"))
    response = await stack.slack.click(user=KARI, action=button(card, CardAction.SYNC_NOW), channel=TEAM, message=card)
    assert response.status_code == 200
    await stack.settle()
    thread = [m for m in stack.slack_world.current_messages(TEAM) if m.get("thread_ts") == card["ts"]]
    assert any("Who can fix it" in block_text(m) for m in thread)
    assert not [m for m in stack.slack_world.current_messages(ALERT_CHANNEL) if "Nordlys" in block_text(m)]
