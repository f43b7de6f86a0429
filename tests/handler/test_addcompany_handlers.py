"""Listeners called directly, with a recording ack and a real Web API client against the Slack fake."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.app import build_deps
from bot.simulators.serving import LoopbackServer
from bot.simulators.slack import SlackWorld, create_slack_app
from commands.addcompany import handlers
from commands.addcompany.state import AddCompanyState
from commands.addcompany.views import company_view
from tests.conftest import make_settings
from tests.scenario.flow import STEP1

NOW = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)


class Ack:
    """Records what the listener answered Slack, and what the fake had been asked before that."""

    def __init__(self, world: SlackWorld) -> None:
        self.world = world
        self.calls: list[dict] = []
        self.slack_calls_before: int | None = None

    async def __call__(self, **kwargs) -> None:
        self.slack_calls_before = len(self.world.calls)
        self.calls.append(kwargs)


@pytest.fixture
async def env(tmp_path):
    world = SlackWorld(tokens={"xoxb-test-bot-token-0000"})
    async with LoopbackServer(create_slack_app(world)) as server:
        settings = make_settings(slack_api_url=f"{server.url}/api/", database_url=f"sqlite:///{tmp_path}/h.db")
        deps = build_deps(settings, clock=lambda: NOW)
        await deps.store.migrate()
        yield world, deps
        await deps.store.close()


async def test_open_modal_acks_before_any_slack_call(env):
    world, deps = env
    ack = Ack(world)
    await handlers.open_modal(ack=ack, body={"trigger_id": "1.2.t", "channel_id": "C0ALERTS"}, client=deps.slack)
    assert ack.calls == [{}]
    assert ack.slack_calls_before == 0
    [call] = world.calls_to("views.open")
    assert call.args["view"]["callback_id"] == "addcompany_company"
    assert AddCompanyState.load(call.args["view"]["private_metadata"]).channel_id == "C0ALERTS"


async def test_a_stale_system_choice_is_dropped_quietly(env):
    world, deps = env
    opened = (await deps.slack.views_open(trigger_id="1.2.t", view=company_view(AddCompanyState())))["view"]
    await deps.slack.views_update(view_id=opened["id"], view=company_view(AddCompanyState()))  # the user moved on
    body = {"view": {**opened, "state": {"values": STEP1}}}
    await handlers.system_chosen(ack=Ack(world), body=body, client=deps.slack)
    assert world.calls_to("views.update")[-1].response["error"] == "hash_conflict"


async def test_step_one_errors_come_back_in_the_ack_without_touching_slack(env):
    world, deps = env
    ack = Ack(world)
    bad = {**STEP1, "org_number": {"org_number": {"type": "plain_text_input", "value": "123"}}}
    view = {"id": "V1", "private_metadata": "", "state": {"values": bad}}
    await handlers.company_submitted(ack=ack, view=view, context={"deps": deps, "user_id": "U0KARI"})
    [answer] = ack.calls
    assert answer["response_action"] == "errors"
    assert "9 digits" in answer["errors"]["org_number"]
    assert world.calls == []
