"""The Slack fake answers a real AsyncWebClient like Slack does."""

from __future__ import annotations

import time

import httpx
import pytest
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.simulators.serving import LoopbackServer
from bot.simulators.slack import STAFF_GROUP, SlackWorld, create_slack_app

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


async def test_the_bot_posts_only_where_it_is_a_member(slack):
    world, client = slack
    world.add_channel("C0QUIET", bot_member=False)
    world.add_channel("C0CLIENT", members={"U0KARI"})
    with pytest.raises(SlackApiError) as outside:
        await client.chat_postMessage(channel="C0QUIET", text="x")
    assert outside.value.response["error"] == "not_in_channel"
    assert "C0QUIET" not in world.messages
    posted = await client.chat_postMessage(channel="C0CLIENT", text="x")
    world.bot_channels.discard("C0CLIENT")
    with pytest.raises(SlackApiError) as removed:
        await client.chat_update(channel="C0CLIENT", ts=posted["ts"], text="y")
    assert removed.value.response["error"] == "not_in_channel"
    with pytest.raises(SlackApiError) as unknown:
        await client.chat_update(channel="C0NOPE", ts=posted["ts"], text="y")
    assert unknown.value.response["error"] == "channel_not_found"


async def test_ephemerals_need_the_bot_and_the_user_in_the_channel(slack):
    world, client = slack
    world.add_channel("C0QUIET", bot_member=False)
    world.add_channel("C0CLIENT", members={"U0KARI"})
    assert (await client.chat_postEphemeral(channel="C0ALERTS", user="U0KARI", text="x"))["ok"]
    assert (await client.chat_postEphemeral(channel="D0KARI", user="U0KARI", text="x"))["ok"]
    errors = {}
    for channel, user in (("C0QUIET", "U0KARI"), ("C0CLIENT", "U0OLA"), ("D0KARI", "U0OLA"), ("C0NOPE", "U0KARI")):
        with pytest.raises(SlackApiError) as caught:
            await client.chat_postEphemeral(channel=channel, user=user, text="x")
        errors[channel] = caught.value.response["error"]
    assert errors == {
        "C0QUIET": "channel_not_found",
        "C0CLIENT": "user_not_in_channel",
        "D0KARI": "user_not_in_channel",
        "C0NOPE": "channel_not_found",
    }


async def test_conversations_info_says_whether_the_bot_is_a_member(slack):
    world, client = slack
    world.add_channel("C0QUIET", bot_member=False)
    assert (await client.conversations_info(channel="C0ALERTS"))["channel"] == {
        "id": "C0ALERTS",
        "name": "c0alerts",
        "is_member": True,
    }
    assert (await client.conversations_info(channel="C0QUIET"))["channel"]["is_member"] is False
    with pytest.raises(SlackApiError) as unknown:
        await client.conversations_info(channel="C0NOPE")
    assert unknown.value.response["error"] == "channel_not_found"


async def test_the_staff_group_and_a_guest(slack):
    _world, client = slack
    assert (await client.usergroups_users_list(usergroup=STAFF_GROUP))["users"] == ["U0KARI", "U0PER"]
    with pytest.raises(SlackApiError) as unknown:
        await client.usergroups_users_list(usergroup="S0NOPE")
    assert unknown.value.response["error"] == "no_such_subteam"
    guest = (await client.users_info(user="U0GUEST"))["user"]
    assert (guest["real_name"], guest["profile"]["email"], guest["is_restricted"]) == (
        "Gro Gjest",
        "gro@klient.no",
        True,
    )
    assert (await client.users_info(user="U0KARI"))["user"]["is_restricted"] is False


async def test_a_flaky_slack_fails_that_fraction_of_calls_and_changes_nothing(slack):
    world, client = slack
    world.switches.flaky, world.switches.flaky_seed = 0.5, 7
    outcomes = []
    for n in range(200):
        try:
            await client.chat_postMessage(channel="C0ALERTS", text=f"m{n}")
            outcomes.append("ok")
        except SlackApiError as exc:
            # A 500 page that is not JSON reaches the client with no `error` at all.
            outcomes.append(f"{exc.response.status_code} {exc.response.get('error')}")
    failed = [outcome for outcome in outcomes if outcome != "ok"]
    assert 70 <= len(failed) <= 130
    assert set(failed) == {"429 ratelimited", "500 None", "200 internal_error", "200 fatal_error"}
    assert len(world.current_messages("C0ALERTS")) == outcomes.count("ok")
    limited = next(call for call in world.calls if call.status == 429)
    assert limited.response == {"ok": False, "error": "ratelimited"}
    for _ in range(20):
        assert (await client.auth_test())["ok"]


async def test_the_flaky_switch_over_http_and_its_seed(slack):
    world, client = slack
    async with httpx.AsyncClient(base_url=client.base_url.removesuffix("api/")) as http:
        answered = (await http.post("/_sim/switches", json={"flaky": 1.0, "flaky_seed": 3})).json()
        assert (answered["flaky"], answered["flaky_seed"]) == (1.0, 3)
        page = await http.post("/api/users.info", data={"user": "U0KARI"}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert page.status_code in {200, 429, 500}
        assert page.status_code != 200 or page.json()["ok"] is False
        if page.status_code == 429:
            assert page.headers["retry-after"] == "1"
        if page.status_code == 500:
            assert not page.headers["content-type"].startswith("application/json")

    def failures(seed: int) -> list[str]:
        world.switches.flaky, world.switches.flaky_seed = 0.3, seed
        world._flaky = None
        return [str(world.flaky_failure("chat.postMessage")) for _ in range(50)]

    assert failures(11) == failures(11)
    assert failures(11) != failures(12)
    world.switches.flaky = 0.0
    assert (await client.users_info(user="U0KARI"))["ok"]


def png(width: int = 3, height: int = 2) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (0, 114, 178)).save(out, format="PNG")
    return out.getvalue()


async def test_files_upload_v2_puts_a_png_in_a_thread(slack):
    world, client = slack
    parent = await client.chat_postMessage(channel="C0ALERTS", text="digest")
    done = await client.files_upload_v2(
        channel="C0ALERTS",
        thread_ts=parent["ts"],
        file=png(40, 30),
        filename="chart.png",
        title="Sync health",
        alt_txt="a bar chart",
        initial_comment="the chart",
    )
    [asked] = world.calls_to("files.getUploadURLExternal")
    assert (asked.args["filename"], int(asked.args["length"])) == ("chart.png", len(png(40, 30)))
    upload_url = asked.response["upload_url"]
    assert upload_url.startswith(client.base_url.removesuffix("api/"))  # the fake itself
    assert upload_url.endswith(done["file"]["id"])
    [completed] = world.calls_to("files.completeUploadExternal")
    assert completed.args["channel_id"] == "C0ALERTS"
    file = done["file"]
    assert (file["title"], file["mimetype"], file["original_w"], file["original_h"]) == (
        "Sync health",
        "image/png",
        40,
        30,
    )
    assert world.files[file["id"]]["content"] == png(40, 30)
    reply = world.current_messages("C0ALERTS")[-1]
    assert (reply["thread_ts"], reply["text"], reply["files"][0]["id"]) == (parent["ts"], "the chart", file["id"])


async def test_an_upload_is_checked_at_each_step(slack):
    world, client = slack
    with pytest.raises(SlackApiError) as empty:
        await client.files_getUploadURLExternal(filename="chart.png", length=0)
    assert empty.value.response["error"] == "missing_argument"
    ticket = await client.files_getUploadURLExternal(filename="chart.png", length=len(png()))
    with pytest.raises(SlackApiError) as early:
        await client.files_completeUploadExternal(files=[{"id": ticket["file_id"]}], channel_id="C0ALERTS")
    assert early.value.response["error"] == "file_not_found"  # nothing was uploaded yet
    async with httpx.AsyncClient() as http:
        assert (await http.post(ticket["upload_url"], content=b"GIF89a" + b"\0" * (len(png()) - 6))).status_code == 400
        assert (await http.post(ticket["upload_url"], content=png()[:-1])).status_code == 400  # not the length given
        assert (await http.post(ticket["upload_url"] + "X", content=png())).status_code == 404
        accepted = await http.post(ticket["upload_url"], content=png())
        assert (accepted.status_code, accepted.text) == (200, f"OK - {len(png())}")
    world.add_channel("C0QUIET", bot_member=False)
    for channel, error in (("C0QUIET", "not_in_channel"), ("C0NOPE", "channel_not_found")):
        with pytest.raises(SlackApiError) as refused:
            await client.files_completeUploadExternal(files=[{"id": ticket["file_id"]}], channel_id=channel)
        assert refused.value.response["error"] == error
    await client.files_completeUploadExternal(files=[{"id": ticket["file_id"], "title": "t"}], channel_id="C0ALERTS")
    assert world.current_messages("C0ALERTS")[-1]["files"][0]["title"] == "t"
    with pytest.raises(SlackApiError) as again:
        await client.files_completeUploadExternal(files=[{"id": ticket["file_id"]}], channel_id="C0ALERTS")
    assert again.value.response["error"] == "file_not_found"  # an upload ticket is used once


async def test_the_file_service_can_fail_and_refuses_what_is_not_a_png(slack):
    world, client = slack
    world.switches.upload_failures = 1
    with pytest.raises(SlackRequestError):
        await client.files_upload_v2(channel="C0ALERTS", file=png(), filename="chart.png")
    with pytest.raises(SlackRequestError):
        await client.files_upload_v2(channel="C0ALERTS", file=b"not a picture", filename="chart.png")
    assert world.current_messages("C0ALERTS") == []
    assert not world.calls_to("files.completeUploadExternal")
    done = await client.files_upload_v2(channel="C0ALERTS", file=png(), filename="chart.png")
    assert world.current_messages("C0ALERTS")[0]["files"][0]["id"] == done["file"]["id"]
