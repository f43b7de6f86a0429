"""The Slack fake answers a real AsyncWebClient like Slack does."""

from __future__ import annotations

import time

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.simulators.serving import LoopbackServer
from bot.simulators.slack import SlackWorld, create_slack_app

TOKEN = "xoxb-fake"
MODAL = {"type": "modal", "title": {"type": "plain_text", "text": "Add a company"}, "blocks": []}


@pytest.fixture
async def slack():
    world = SlackWorld(tokens={TOKEN})
    async with LoopbackServer(create_slack_app(world)) as server:
        yield world, AsyncWebClient(token=TOKEN, base_url=f"{server.url}/api/")


async def test_auth_and_a_wrong_token(slack):
    _world, client = slack
    assert (await client.auth_test())["user_id"] == "U0BOT"
    bad = AsyncWebClient(token="xoxb-wrong", base_url=client.base_url)
    with pytest.raises(SlackApiError) as caught:
        await bad.auth_test()
    assert caught.value.response["error"] == "invalid_auth"


async def test_views_open_update_and_the_hash_race(slack):
    world, client = slack
    opened = (await client.views_open(trigger_id="1.2.abc", view=MODAL))["view"]
    updated = (await client.views_update(view_id=opened["id"], hash=opened["hash"], view=MODAL))["view"]
    assert updated["hash"] != opened["hash"]
    with pytest.raises(SlackApiError) as caught:
        await client.views_update(view_id=opened["id"], hash=opened["hash"], view=MODAL)
    assert caught.value.response["error"] == "hash_conflict"
    world.expire_trigger("9.9.old")
    with pytest.raises(SlackApiError) as expired:
        await client.views_open(trigger_id="9.9.old", view=MODAL)
    assert expired.value.response["error"] == "expired_trigger_id"
    with pytest.raises(SlackApiError) as too_long:
        await client.views_open(trigger_id="1.2.x", view={**MODAL, "title": {"type": "plain_text", "text": "x" * 25}})
    assert too_long.value.response["error"] == "invalid_arguments"


async def test_messages_are_posted_updated_and_threaded(slack):
    world, client = slack
    posted = await client.chat_postMessage(channel="C0ALERTS", text="card v1")
    await client.chat_update(channel="C0ALERTS", ts=posted["ts"], text="card v2")
    await client.chat_postMessage(channel="C0ALERTS", thread_ts=posted["ts"], text="a note")
    messages = world.current_messages("C0ALERTS")
    assert [m["text"] for m in messages] == ["card v2", "a note"]
    assert messages[1]["thread_ts"] == posted["ts"]
    with pytest.raises(SlackApiError) as missing:
        await client.chat_update(channel="C0ALERTS", ts="1.2", text="x")
    assert missing.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as nowhere:
        await client.chat_postMessage(channel="C0NOPE", text="x")
    assert nowhere.value.response["error"] == "channel_not_found"


async def test_dms_and_users(slack):
    world, client = slack
    channel = (await client.conversations_open(users="U0OLA"))["channel"]["id"]
    await client.chat_postMessage(channel=channel, text="hello")
    assert world.current_messages(world.dm_channel_for("U0OLA"))[0]["text"] == "hello"
    assert (await client.users_info(user="U0KARI"))["user"]["profile"]["real_name"] == "Kari Nordmann"
    assert (await client.users_lookupByEmail(email="ola@nordlysbakeri.no"))["user"]["id"] == "U0OLA"
    with pytest.raises(SlackApiError) as unknown:
        await client.users_lookupByEmail(email="nobody@example.test")
    assert unknown.value.response["error"] == "users_not_found"


async def test_failure_switches(slack):
    world, client = slack
    world.switches.fail = {"chat.postMessage": "is_archived"}
    with pytest.raises(SlackApiError) as failed:
        await client.chat_postMessage(channel="C0ALERTS", text="x")
    assert failed.value.response["error"] == "is_archived"
    world.switches.fail = {}
    world.switches.rate_limit = {"auth.test": 1}
    plain = AsyncWebClient(token=TOKEN, base_url=client.base_url)
    with pytest.raises(SlackApiError) as limited:
        await plain.auth_test()
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["retry-after"] == "1"
    world._limited.clear()
    patient = AsyncWebClient(
        token=TOKEN, base_url=client.base_url, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)]
    )
    assert (await patient.auth_test())["ok"]


async def test_latency_switch_delays_answers(slack):
    world, client = slack
    world.switches.latency_ms = 100
    started = time.monotonic()
    await client.auth_test()
    assert time.monotonic() - started >= 0.1
    assert world.calls_to("auth.test")[-1].response["ok"]
